//! A per-VM cache of verified tokens, so a repeated token skips signature verification
//! and claim parsing. Every hit still checks expiry against `now`; the cache is bounded
//! by entries and bytes and is emptied whenever a key set changes.

use std::cell::Cell;
use std::collections::VecDeque;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::rc::Rc;

use hashbrown::{Equivalent, HashMap};

use crate::policy::RouteVerdict;
use crate::time::UnixSeconds;
use crate::token::VerifiedToken;

/// Limits of a [`TokenCache`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Most tokens kept; 0 turns the cache off.
    pub max_entries: usize,
    /// Most bytes kept (token text plus an estimate of the claims).
    pub max_bytes: usize,
    /// Longest a token stays cached, whatever its `exp`.
    pub ttl_seconds: i64,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            max_entries: 4096,
            max_bytes: 8 * 1024 * 1024,
            ttl_seconds: 300,
        }
    }
}

struct Entry {
    verified: Rc<VerifiedToken>,
    /// Unix seconds after which the entry is not used (token expiry + skew, or TTL).
    valid_until: i64,
    bytes: usize,
}

/// Hashes only a token's length and last 32 bytes — the end of its signature — instead of
/// all of it. Collisions are possible and harmless: the map compares whole keys, so a
/// collision costs a comparison, never a wrong hit. Only verified tokens are stored, so
/// crowding one bucket with stored entries would take many tokens whose signatures end
/// alike, which only the issuer could sign.
#[derive(Default)]
struct TokenTailHasher {
    state: u64,
}

impl Hasher for TokenTailHasher {
    fn write(&mut self, bytes: &[u8]) {
        let tail = bytes.get(bytes.len().saturating_sub(32)..).unwrap_or(bytes);
        self.write_u64(bytes.len() as u64);
        for chunk in tail.chunks(8) {
            let mut word = [0u8; 8];
            for (slot, byte) in word.iter_mut().zip(chunk) {
                *slot = *byte;
            }
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.write_u64(u64::from(byte));
    }

    fn write_u64(&mut self, word: u64) {
        // FxHash's step: rotate, mix in, multiply by an odd constant.
        self.state = (self.state.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn finish(&self) -> u64 {
        self.state
    }
}

/// A cached token's text, the map's key.
#[derive(Clone)]
struct TokenKey(Rc<str>);

/// A token's text to look up, without making a key of it.
struct TokenText<'t>(&'t str);

impl Hash for TokenKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.0.as_bytes());
    }
}

impl Hash for TokenText<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.0.as_bytes());
    }
}

impl PartialEq for TokenKey {
    fn eq(&self, other: &TokenKey) -> bool {
        same_text(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl Eq for TokenKey {}

impl Equivalent<TokenKey> for TokenText<'_> {
    fn equivalent(&self, key: &TokenKey) -> bool {
        same_text(self.0.as_bytes(), key.0.as_bytes())
    }
}

/// Whole-text equality, eight bytes at a time. On wasm32 `==` on byte slices calls
/// wasi-libc's `memcmp`, a loop over single bytes, and every cache hit compares the whole
/// token (hundreds of bytes); comparing words instead measured faster in Envoy
/// (`benches/results/breakdown.md`, sixth round).
fn same_text(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    let (words, other_words) = (left.chunks_exact(8), right.chunks_exact(8));
    let tails_equal = words.remainder() == other_words.remainder();
    let word = |chunk: &[u8]| <[u8; 8]>::try_from(chunk).ok().map(u64::from_ne_bytes);
    tails_equal && words.zip(other_words).all(|(a, b)| word(a) == word(b))
}

/// Verified tokens keyed by their full text: a hit needs the whole token to be equal.
/// Eviction is first-in first-out, which bounds memory without per-hit bookkeeping.
pub struct TokenCache {
    limits: CacheLimits,
    entries: HashMap<TokenKey, Entry, BuildHasherDefault<TokenTailHasher>>,
    order: VecDeque<TokenKey>,
    bytes: usize,
    hits: Cell<u64>,
    misses: Cell<u64>,
    evictions: u64,
}

/// What a cache has done since it was made, for metrics (the adapter turns differences
/// into Envoy counter increments).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounters {
    pub hits: u64,
    pub misses: u64,
    /// Entries pushed out to stay within the bounds (not those dropped by `clear`).
    pub evictions: u64,
    pub entries: u64,
}

impl TokenCache {
    pub fn new(limits: CacheLimits) -> TokenCache {
        TokenCache {
            limits,
            entries: HashMap::default(),
            order: VecDeque::new(),
            bytes: 0,
            hits: Cell::new(0),
            misses: Cell::new(0),
            evictions: 0,
        }
    }

    pub fn counters(&self) -> CacheCounters {
        CacheCounters {
            hits: self.hits.get(),
            misses: self.misses.get(),
            evictions: self.evictions,
            entries: u64::try_from(self.entries.len()).unwrap_or(u64::MAX),
        }
    }

    /// Whether tokens are kept at all (a cache of no entries keeps none).
    pub fn keeps_tokens(&self) -> bool {
        self.limits.max_entries > 0
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Forgets everything (a key set changed: a removed key must stop verifying).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
        self.bytes = 0;
    }

    /// The verified token, if cached and still valid at `now`.
    /// Shared, not copied: a hit must not pay for cloning the claims.
    pub fn get(&self, token: &str, now: UnixSeconds) -> Option<Rc<VerifiedToken>> {
        let now = now.0;
        let hit = self
            .entries
            .get(&TokenText(token))
            .filter(|entry| now < entry.valid_until)
            .map(|entry| Rc::clone(&entry.verified));
        let counter = if hit.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.set(counter.get().saturating_add(1));
        hit
    }

    /// Caches a freshly verified token. `expires_at` is its `exp` plus the allowed skew.
    pub fn insert(
        &mut self,
        token: &str,
        verified: &Rc<VerifiedToken>,
        expires_at: Option<i64>,
        now: UnixSeconds,
    ) {
        let now = now.0;
        let longest = now.saturating_add(self.limits.ttl_seconds);
        let valid_until = expires_at.map_or(longest, |exp| exp.min(longest));
        let bytes = entry_bytes(token, verified);
        if valid_until <= now
            || self.limits.max_entries == 0
            || bytes > self.limits.max_bytes
            || self.entries.contains_key(&TokenText(token))
        {
            return;
        }
        while self.entries.len() >= self.limits.max_entries
            || self.bytes + bytes > self.limits.max_bytes
        {
            if !self.evict_oldest() {
                break;
            }
        }
        let key = TokenKey(Rc::from(token));
        self.order.push_back(key.clone());
        self.bytes += bytes;
        self.entries.insert(
            key,
            Entry {
                verified: Rc::clone(verified),
                valid_until,
                bytes,
            },
        );
    }

    fn evict_oldest(&mut self) -> bool {
        match self.order.pop_front() {
            Some(key) => {
                if let Some(entry) = self.entries.remove(&key) {
                    self.bytes = self.bytes.saturating_sub(entry.bytes);
                }
                self.evictions = self.evictions.saturating_add(1);
                true
            }
            None => false,
        }
    }
}

/// An estimate of an entry's heap size: the token twice (key and order) is shared, so
/// once; claims at their JSON length plus per-entry overhead, which includes the policy
/// evaluation the token may come to remember (at most [`RouteVerdict::MAX_BYTES`]).
fn entry_bytes(token: &str, verified: &VerifiedToken) -> usize {
    const OVERHEAD: usize = 256 + RouteVerdict::MAX_BYTES;
    let claims: usize = verified
        .claims()
        .iter()
        .map(|(name, value)| name.len() + value.to_string().len() + 48)
        .sum();
    token.len() + claims + OVERHEAD
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwks::Alg;
    use crate::provider_id::ProviderId;
    use serde_json::json;

    fn verified(sub: &str) -> Rc<VerifiedToken> {
        Rc::new(VerifiedToken::assume_verified_for_tests(
            ProviderId::from_index(0),
            Alg::Rs256,
            json!({"sub": sub}).as_object().cloned().unwrap_or_default(),
            Some(2000),
        ))
    }

    #[test]
    fn hits_stop_at_expiry_and_ttl() {
        let mut cache = TokenCache::new(CacheLimits {
            ttl_seconds: 100,
            ..CacheLimits::default()
        });
        cache.insert("a", &verified("a"), Some(1050), UnixSeconds(1000));
        assert!(cache.get("a", UnixSeconds(1049)).is_some());
        assert!(cache.get("a", UnixSeconds(1050)).is_none());
        cache.insert("b", &verified("b"), Some(5000), UnixSeconds(1000));
        assert!(cache.get("b", UnixSeconds(1099)).is_some());
        assert!(cache.get("b", UnixSeconds(1100)).is_none());
        cache.insert("c", &verified("c"), Some(900), UnixSeconds(1000));
        assert!(cache.get("c", UnixSeconds(1000)).is_none());
        assert!(cache.get("zzz", UnixSeconds(1000)).is_none());
    }

    #[test]
    fn entries_are_bounded_and_oldest_go_first() {
        let mut cache = TokenCache::new(CacheLimits {
            max_entries: 2,
            ..CacheLimits::default()
        });
        for token in ["a", "b", "c"] {
            cache.insert(token, &verified(token), Some(2000), UnixSeconds(1000));
        }
        assert_eq!(cache.len(), 2);
        assert!(cache.get("a", UnixSeconds(1000)).is_none());
        assert!(cache.get("c", UnixSeconds(1000)).is_some());
    }

    #[test]
    fn bytes_are_bounded() {
        let one = entry_bytes(&"t".repeat(1000), &verified("x"));
        let mut cache = TokenCache::new(CacheLimits {
            max_bytes: one * 3,
            ..CacheLimits::default()
        });
        for index in 0..10 {
            let token = format!("{index}{}", "t".repeat(999));
            cache.insert(&token, &verified("x"), Some(2000), UnixSeconds(1000));
            assert!(cache.bytes() <= one * 3);
        }
        assert_eq!(cache.len(), 3);
        cache.clear();
        assert_eq!((cache.len(), cache.bytes()), (0, 0));
    }

    #[test]
    fn hits_misses_and_evictions_are_counted() {
        let mut cache = TokenCache::new(CacheLimits {
            max_entries: 2,
            ..CacheLimits::default()
        });
        assert!(cache.get("a", UnixSeconds(0)).is_none());
        for token in ["a", "b", "c"] {
            cache.insert(token, &verified(token), None, UnixSeconds(0));
        }
        assert!(cache.get("c", UnixSeconds(1)).is_some());
        assert!(cache.get("a", UnixSeconds(1)).is_none(), "evicted");
        assert_eq!(
            cache.counters(),
            CacheCounters {
                hits: 1,
                misses: 2,
                evictions: 1,
                entries: 2
            }
        );
    }

    /// The word-wise comparison a hit relies on: any one byte differing anywhere, in the
    /// whole words or the tail, or a length differing, is a miss.
    #[test]
    fn a_hit_needs_every_byte_of_the_token_equal() {
        let token: String = (0..83).map(|index| char::from(b'a' + index % 26)).collect();
        assert!(same_text(token.as_bytes(), token.clone().as_bytes()));
        for index in 0..token.len() {
            let mut other = token.clone().into_bytes();
            other[index] ^= 1;
            assert!(!same_text(token.as_bytes(), &other), "byte {index}");
        }
        assert!(!same_text(token.as_bytes(), &token.as_bytes()[..82]));
        assert!(same_text(b"", b""));
        let mut cache = TokenCache::new(CacheLimits::default());
        cache.insert(&token, &verified("a"), Some(2000), UnixSeconds(1000));
        let mut last_changed = token.clone().into_bytes();
        last_changed[82] = b'!';
        let last_changed = String::from_utf8(last_changed).unwrap();
        assert!(cache.get(&last_changed, UnixSeconds(1000)).is_none());
        assert!(cache.get(&token[..80], UnixSeconds(1000)).is_none());
        assert!(cache.get(&token, UnixSeconds(1000)).is_some());
    }

    #[test]
    fn a_zero_sized_cache_keeps_nothing() {
        let mut cache = TokenCache::new(CacheLimits {
            max_entries: 0,
            ..CacheLimits::default()
        });
        cache.insert("a", &verified("a"), Some(2000), UnixSeconds(1000));
        assert!(cache.is_empty());
    }
}
