//! RSA signature verification — RSASSA-PKCS1-v1_5 (RS256/384/512) and RSASSA-PSS
//! (PS256/384/512) — with 32-bit limbs.
//!
//! The `rsa` crate's big integers use 64-bit limbs whose 128-bit products Wasm must
//! emulate; a public-key operation with `e = 65537` is only 17 modular multiplications,
//! so a Montgomery multiplier over `u32` limbs (whose `u64` products Wasm has natively)
//! is several times faster there. PKCS#1 v1.5 builds the expected encoded message from
//! the hash and compares it whole with `s^e mod n` (RFC 8017 §8.2.2): nothing in the
//! decrypted block is parsed, so there is no padding parser to fool. PSS has to be
//! decoded (RFC 8017 §9.1.2, salt length = hash length as RFC 7518 §3.5 requires); every
//! step of it is a length-checked comparison. Only public values are involved, so
//! constant time is not needed.

use sha2::{Digest, Sha256, Sha384, Sha512};

/// DER `DigestInfo` prefixes of RFC 8017 §9.2, note 1.
const SHA256_PREFIX: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
const SHA384_PREFIX: [u8; 19] = [
    0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05,
    0x00, 0x04, 0x30,
];
const SHA512_PREFIX: [u8; 19] = [
    0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05,
    0x00, 0x04, 0x40,
];

/// The hash of an RS* algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaHash {
    Sha256,
    Sha384,
    Sha512,
}

/// An RSA public key prepared for Montgomery arithmetic (done once, at key load).
#[derive(Debug, Clone)]
pub struct RsaVerifier {
    /// Modulus, little-endian 32-bit limbs, no high zero limb.
    n: Vec<u32>,
    /// `-n^-1 mod 2^32`.
    n0_inv: u32,
    /// `R^2 mod n` with `R = 2^(32 * limbs)`.
    r_squared: Vec<u32>,
    /// Public exponent.
    e: u64,
    /// Modulus length in bytes (the signature length).
    modulus_bytes: usize,
    /// Modulus length in bits.
    modulus_bits: usize,
}

impl RsaVerifier {
    /// From big-endian `n` and `e`; `None` for an even or tiny modulus or an unusable
    /// exponent (even, 1, or wider than 64 bits).
    pub fn new(modulus: &[u8], exponent: &[u8]) -> Option<RsaVerifier> {
        let modulus = strip_leading_zeros(modulus);
        let exponent = strip_leading_zeros(exponent);
        if modulus.len() < 64 || exponent.is_empty() || exponent.len() > 8 {
            return None;
        }
        let e = exponent
            .iter()
            .fold(0_u64, |acc, byte| (acc << 8) | u64::from(*byte));
        let n = limbs_from_be(modulus);
        let low = *n.first()?;
        if low & 1 == 0 || e < 3 || e & 1 == 0 {
            return None;
        }
        // Newton iteration for the inverse of an odd number mod 2^32.
        let mut inv: u32 = 1;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2_u32.wrapping_sub(low.wrapping_mul(inv)));
        }
        let r_squared = r_squared_mod(&n);
        let modulus_bits = modulus.len() * 8
            - modulus
                .first()
                .map_or(8, |top| top.leading_zeros() as usize);
        Some(RsaVerifier {
            n0_inv: inv.wrapping_neg(),
            r_squared,
            e,
            modulus_bytes: modulus.len(),
            modulus_bits,
            n,
        })
    }

    /// Whether `signature` is a valid RSASSA-PKCS1-v1_5 signature of `message`.
    pub fn verify(&self, hash: RsaHash, message: &[u8], signature: &[u8]) -> bool {
        let (Some(decrypted), Some(expected)) =
            (self.recover(signature), self.encoded_message(hash, message))
        else {
            return false;
        };
        decrypted == expected
    }

    /// Whether `signature` is a valid RSASSA-PSS signature of `message` with MGF1 over the
    /// same hash and a salt as long as the hash (RFC 8017 §9.1.2 with RFC 7518 §3.5).
    pub fn verify_pss(&self, hash: RsaHash, message: &[u8], signature: &[u8]) -> bool {
        self.recover(signature)
            .is_some_and(|block| self.pss_consistent(hash, message, &block))
    }

    /// EMSA-PSS-VERIFY on the recovered block (`modulus_bytes` long).
    fn pss_consistent(&self, hash: RsaHash, message: &[u8], block: &[u8]) -> bool {
        let em_bits = self.modulus_bits - 1;
        let em_len = em_bits.div_ceil(8);
        // The block has one more leading byte than EM when the modulus bit length is
        // 1 mod 8; that byte must be zero.
        let Some((leading, em)) = block.split_at_checked(block.len().saturating_sub(em_len)) else {
            return false;
        };
        let hash_len = digest(hash, b"").len();
        if leading.iter().any(|byte| *byte != 0) || em_len < 2 * hash_len + 2 {
            return false;
        }
        let Some((&0xbc, rest)) = em.split_last() else {
            return false;
        };
        let Some((masked_db, h)) = rest.split_at_checked(em_len - hash_len - 1) else {
            return false;
        };
        // The bits of EM above emBits must be zero.
        let top_mask = 0xff_u8 >> (8 * em_len - em_bits);
        if masked_db.first().is_none_or(|first| first & !top_mask != 0) {
            return false;
        }
        let mut db = mgf1(hash, h, masked_db.len());
        for (byte, mask) in db.iter_mut().zip(masked_db) {
            *byte ^= mask;
        }
        if let Some(first) = db.first_mut() {
            *first &= top_mask;
        }
        // DB = PS (zeros) || 0x01 || salt, with salt as long as the hash.
        let padding_len = em_len - 2 * hash_len - 2;
        let Some((padding, rest)) = db.split_at_checked(padding_len) else {
            return false;
        };
        let Some((&0x01, salt)) = rest.split_first() else {
            return false;
        };
        if padding.iter().any(|byte| *byte != 0) {
            return false;
        }
        let mut prime = vec![0_u8; 8];
        prime.extend(digest(hash, message));
        prime.extend_from_slice(salt);
        digest(hash, &prime) == h
    }

    /// `s^e mod n` as `modulus_bytes` big-endian bytes; `None` for a signature of the
    /// wrong length or not below `n`.
    fn recover(&self, signature: &[u8]) -> Option<Vec<u8>> {
        if signature.len() != self.modulus_bytes {
            return None;
        }
        let s = pad_limbs(limbs_from_be(signature), self.n.len());
        if compare(&s, &self.n) != std::cmp::Ordering::Less {
            return None;
        }
        Some(limbs_to_be(&self.public_op(&s), self.modulus_bytes))
    }

    /// `EM = 0x00 || 0x01 || PS (0xff...) || 0x00 || DigestInfo || H`.
    fn encoded_message(&self, hash: RsaHash, message: &[u8]) -> Option<Vec<u8>> {
        let prefix: &[u8] = match hash {
            RsaHash::Sha256 => &SHA256_PREFIX,
            RsaHash::Sha384 => &SHA384_PREFIX,
            RsaHash::Sha512 => &SHA512_PREFIX,
        };
        let digest = digest(hash, message);
        let padding = self
            .modulus_bytes
            .checked_sub(3 + prefix.len() + digest.len())?;
        if padding < 8 {
            return None;
        }
        let mut em = Vec::with_capacity(self.modulus_bytes);
        em.extend_from_slice(&[0x00, 0x01]);
        em.resize(2 + padding, 0xff);
        em.push(0x00);
        em.extend_from_slice(prefix);
        em.extend_from_slice(&digest);
        Some(em)
    }

    /// `s^e mod n` by left-to-right square-and-multiply in Montgomery form.
    fn public_op(&self, s: &[u32]) -> Vec<u32> {
        let k = self.n.len();
        let mut scratch = vec![0_u32; k + 2];
        let mut base = vec![0_u32; k];
        self.mont_mul(s, &self.r_squared, &mut scratch, &mut base);
        let mut acc = base.clone();
        let mut product = vec![0_u32; k];
        let top = 63 - self.e.leading_zeros();
        for bit in (0..top).rev() {
            self.mont_mul(&acc, &acc, &mut scratch, &mut product);
            std::mem::swap(&mut acc, &mut product);
            if (self.e >> bit) & 1 == 1 {
                self.mont_mul(&acc, &base, &mut scratch, &mut product);
                std::mem::swap(&mut acc, &mut product);
            }
        }
        let mut one = vec![0_u32; k];
        if let Some(first) = one.first_mut() {
            *first = 1;
        }
        self.mont_mul(&acc, &one, &mut scratch, &mut product);
        product
    }

    /// Montgomery product `out = a * b * R^-1 mod n` (CIOS with the multiplication and
    /// the reduction in one pass over the limbs), inputs below `n`; `t` is scratch of
    /// `limbs + 2`, `out` has `limbs` limbs. No allocation.
    #[expect(
        clippy::indexing_slicing,
        reason = "every slice is cut to its exact length (k or k + 1) by the `get`s below and                   `j` runs over 1..k, so no index can be out of range; this is the inner loop                   of every RSA check, where `get` would add a branch per limb"
    )]
    fn mont_mul(&self, a: &[u32], b: &[u32], t: &mut [u32], out: &mut [u32]) {
        let k = self.n.len();
        // Slices of exactly the lengths the loops use, so the bounds checks go.
        let (Some(n), Some(a), Some(b), Some(t), Some(out)) = (
            self.n.get(..k),
            a.get(..k),
            b.get(..k),
            t.get_mut(..=k),
            out.get_mut(..k),
        ) else {
            return;
        };
        let (Some(&n_0), Some(&a_0)) = (n.first(), a.first()) else {
            return;
        };
        t.fill(0);
        for &b_i in b {
            let b_i = u64::from(b_i);
            // Column 0 fixes m so that the low limb of t + a*b_i + m*n is zero.
            let first = u64::from(t[0]) + u64::from(a_0) * b_i;
            let m = u64::from((first as u32).wrapping_mul(self.n0_inv));
            let mut carry_product = first >> 32;
            let mut carry_reduce = (u64::from(first as u32) + m * u64::from(n_0)) >> 32;
            for j in 1..k {
                let product = u64::from(t[j]) + u64::from(a[j]) * b_i + carry_product;
                carry_product = product >> 32;
                let reduced = u64::from(product as u32) + m * u64::from(n[j]) + carry_reduce;
                carry_reduce = reduced >> 32;
                t[j - 1] = reduced as u32;
            }
            let top = u64::from(t[k]) + carry_product + carry_reduce;
            t[k - 1] = top as u32;
            t[k] = (top >> 32) as u32;
        }
        let overflow = t[k] != 0;
        out.copy_from_slice(&t[..k]);
        if overflow || compare(out, n) != std::cmp::Ordering::Less {
            subtract_in_place(out, n);
        }
    }
}

fn digest(hash: RsaHash, data: &[u8]) -> Vec<u8> {
    match hash {
        RsaHash::Sha256 => Sha256::digest(data).to_vec(),
        RsaHash::Sha384 => Sha384::digest(data).to_vec(),
        RsaHash::Sha512 => Sha512::digest(data).to_vec(),
    }
}

/// MGF1 (RFC 8017 §B.2.1): `len` bytes of `Hash(seed || counter)` blocks.
fn mgf1(hash: RsaHash, seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut input = seed.to_vec();
    input.extend_from_slice(&[0; 4]);
    let mut counter = 0_u32;
    while out.len() < len {
        if let Some(tail) = input
            .len()
            .checked_sub(4)
            .and_then(|at| input.get_mut(at..))
        {
            tail.copy_from_slice(&counter.to_be_bytes());
        }
        out.extend(digest(hash, &input));
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    out
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|byte| *byte != 0)
        .unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or(&[])
}

fn limbs_from_be(bytes: &[u8]) -> Vec<u32> {
    bytes
        .rchunks(4)
        .map(|chunk| {
            chunk
                .iter()
                .fold(0_u32, |acc, byte| (acc << 8) | u32::from(*byte))
        })
        .collect()
}

fn pad_limbs(mut limbs: Vec<u32>, len: usize) -> Vec<u32> {
    limbs.resize(len.max(limbs.len()), 0);
    limbs
}

fn limbs_to_be(limbs: &[u32], len: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = limbs
        .iter()
        .rev()
        .flat_map(|limb| limb.to_be_bytes())
        .collect();
    let excess = bytes.len().saturating_sub(len);
    bytes.drain(..excess);
    bytes
}

/// Compares two little-endian numbers of any lengths (missing high limbs count as zero).
fn compare(a: &[u32], b: &[u32]) -> std::cmp::Ordering {
    let len = a.len().max(b.len());
    for index in (0..len).rev() {
        let x = a.get(index).copied().unwrap_or(0);
        let y = b.get(index).copied().unwrap_or(0);
        if x != y {
            return x.cmp(&y);
        }
    }
    std::cmp::Ordering::Equal
}

/// `a -= b` (mod 2^(32 * len)), for `a` at least `b` or `a` with a dropped carry limb.
fn subtract_in_place(a: &mut [u32], b: &[u32]) {
    let mut borrow = 0_u64;
    for (index, limb) in a.iter_mut().enumerate() {
        let subtrahend = u64::from(b.get(index).copied().unwrap_or(0)) + borrow;
        let value = u64::from(*limb);
        if value >= subtrahend {
            *limb = (value - subtrahend) as u32;
            borrow = 0;
        } else {
            *limb = ((1_u64 << 32) + value - subtrahend) as u32;
            borrow = 1;
        }
    }
}

/// `R^2 mod n` by doubling 1 modulo n, 2 * 32 * limbs times.
fn r_squared_mod(n: &[u32]) -> Vec<u32> {
    let mut x = vec![0_u32; n.len()];
    if let Some(first) = x.first_mut() {
        *first = 1;
    }
    for _ in 0..(64 * n.len()) {
        let mut carry = 0_u32;
        for limb in x.iter_mut() {
            let next = *limb >> 31;
            *limb = (*limb << 1) | carry;
            carry = next;
        }
        if carry == 1 || compare(&x, n) != std::cmp::Ordering::Less {
            subtract_in_place(&mut x, n);
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwks::Alg;
    use crate::mint::SigningKey;
    use base64ct::{Base64UrlUnpadded, Encoding};

    fn verifier(key: &SigningKey) -> RsaVerifier {
        let jwk = key.public_jwk();
        let n = Base64UrlUnpadded::decode_vec(jwk["n"].as_str().unwrap()).unwrap();
        let e = Base64UrlUnpadded::decode_vec(jwk["e"].as_str().unwrap()).unwrap();
        RsaVerifier::new(&n, &e).unwrap()
    }

    #[test]
    fn agrees_with_the_rsa_crate_on_valid_and_tampered_signatures() {
        let rsa_algorithms: Vec<_> = Alg::ALL
            .into_iter()
            .filter_map(|alg| Some((alg, alg.rsa_scheme()?)))
            .collect();
        // RS256/384/512 and PS256/384/512: the loop below cannot pass by running zero times.
        assert_eq!(rsa_algorithms.len(), 6, "{rsa_algorithms:?}");
        for (alg, (hash, pss)) in rsa_algorithms {
            let key = SigningKey::generate(alg, None).unwrap();
            let fast = verifier(&key);
            let check = |hash, message: &[u8], signature: &[u8], pss: bool| {
                if pss {
                    fast.verify_pss(hash, message, signature)
                } else {
                    fast.verify(hash, message, signature)
                }
            };
            for index in 0..10 {
                let message = format!("header.payload-{index}");
                let message = message.as_bytes();
                let signature = key.sign_bytes(message);
                assert!(check(hash, message, &signature, pss), "{alg} {index}");
                // PSS and PKCS#1 v1.5 never accept each other's signatures.
                assert!(!check(hash, message, &signature, !pss), "{alg} {index}");
                let mut tampered = signature.clone();
                let position = (index * 29) % tampered.len();
                tampered[position] ^= 0x01 << (index % 8);
                assert!(!check(hash, message, &tampered, pss), "{alg} {index}");
                assert!(!check(hash, b"other", &signature, pss));
                let wrong_hash = if hash == RsaHash::Sha256 {
                    RsaHash::Sha512
                } else {
                    RsaHash::Sha256
                };
                assert!(!check(wrong_hash, message, &signature, pss));
            }
        }
    }

    #[test]
    fn mgf1_matches_its_definition() {
        let seed = b"seed";
        let mask = mgf1(RsaHash::Sha256, seed, 40);
        let block = |counter: u32| {
            let mut input = seed.to_vec();
            input.extend_from_slice(&counter.to_be_bytes());
            Sha256::digest(&input).to_vec()
        };
        assert_eq!(&mask[..32], block(0).as_slice());
        assert_eq!(&mask[32..], &block(1)[..8]);
    }

    #[test]
    fn refuses_wrong_lengths_and_out_of_range_signatures() {
        let key = SigningKey::generate(Alg::Rs256, None).unwrap();
        let fast = verifier(&key);
        let signature = key.sign_bytes(b"m");
        assert!(!fast.verify(RsaHash::Sha256, b"m", &signature[1..]));
        let mut longer = vec![0];
        longer.extend_from_slice(&signature);
        assert!(!fast.verify(RsaHash::Sha256, b"m", &longer));
        assert!(!fast.verify(RsaHash::Sha256, b"m", &vec![0xff; signature.len()]));
        assert!(!fast.verify(RsaHash::Sha256, b"m", &vec![0; signature.len()]));
    }

    #[test]
    fn refuses_unusable_keys() {
        assert!(RsaVerifier::new(&[0xff; 256], &[1, 0, 1]).is_some());
        assert!(RsaVerifier::new(&[0xfe; 256], &[1, 0, 1]).is_none());
        assert!(RsaVerifier::new(&[0xff; 256], &[1]).is_none());
        assert!(RsaVerifier::new(&[0xff; 256], &[2]).is_none());
        assert!(RsaVerifier::new(&[0xff; 256], &[]).is_none());
        assert!(RsaVerifier::new(&[0xff; 256], &[1; 9]).is_none());
        assert!(RsaVerifier::new(&[0xff; 16], &[3]).is_none());
    }
}
