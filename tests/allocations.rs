//! Issue 22: the heap allocations of one decision on the cached path (a repeated token,
//! the request as Envoy hands it over: a serialized header map), counted by a global
//! allocator that counts on this test's thread only. The counts are exact, like the host
//! calls of `src/filter/tests/host_calls.rs`: a change that allocates more on this path
//! fails here and must say why; one that allocates less updates the numbers.
//!
//! What is left, and why: the token's locations (a `Vec` per configured location while
//! looking, and the found token's list), and the decision's own strings — the rule and the
//! reason, the provider's name and the subject — which the `Decision` owns for its
//! callers (the CLI, logs, the filter state).
#![allow(
    unsafe_code,
    reason = "a counting allocator implements the unsafe GlobalAlloc"
)]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test setup")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use claimgate::mint::SigningKey;
use claimgate::request::{serialize_pairs, SerializedHeaders};
use claimgate::{decide, Config, Environment, Input, RequestView, TokenCache, UnixSeconds};
use serde_json::json;

struct CountingAllocator;

thread_local! {
    /// Allocations made on this thread while counting; `None` when not counting.
    static ALLOCATIONS: Cell<Option<usize>> = const { Cell::new(None) };
}

fn count_one() {
    // `try_with`: never touch a thread-local being torn down.
    let _ = ALLOCATIONS.try_with(|count| count.set(count.get().map(|n| n + 1)));
}

// SAFETY: every call is passed to the system allocator unchanged; counting touches only a
// thread-local `Cell` without a destructor, which does not allocate.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// How many allocations `work` makes on this thread.
fn allocations_of<T>(work: impl FnOnce() -> T) -> (usize, T) {
    ALLOCATIONS.with(|count| count.set(Some(0)));
    let result = work();
    let made = ALLOCATIONS.with(|count| count.replace(None)).unwrap_or(0);
    (made, result)
}

const AETHERMARKET: &str = include_str!("../filter-config/aethermarket.json");
const DEMO_KEY: &str = include_str!("../filter-config/demo/private-demo-only.jwk.json");
const NOW: i64 = 1_800_000_000;

#[test]
fn a_repeated_token_is_decided_with_a_fixed_small_number_of_allocations() {
    let config = Config::from_json(AETHERMARKET.as_bytes()).unwrap();
    let keys = config.initial_keys();
    let key = SigningKey::from_jwk(&serde_json::from_str(DEMO_KEY).unwrap()).unwrap();
    let token = key
        .sign(&json!({
            "iss": "https://aethermarket.auth0.com/",
            "aud": "https://api.aethermarket.com",
            "sub": "auth0|user-1",
            "exp": NOW + 3600,
            "https://aethermarket.com/loyalty_tier": "Gold",
        }))
        .unwrap();
    let pairs: Vec<(String, Vec<u8>)> = vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), b"/deals/exclusive".to_vec()),
        (":authority".into(), b"shop.aethermarket.com".to_vec()),
        (":scheme".into(), b"https".to_vec()),
        (
            "authorization".into(),
            format!("Bearer {token}").into_bytes(),
        ),
        ("user-agent".into(), b"wrk".to_vec()),
        ("x-forwarded-proto".into(), b"https".to_vec()),
        (
            "x-request-id".into(),
            b"6b1c2f4e-2d6a-4f7e-9f0a-1a2b3c4d5e6f".to_vec(),
        ),
    ];
    let headers = SerializedHeaders::parse(serialize_pairs(&pairs)).unwrap();
    let mut cache = TokenCache::new(config.token_cache);
    let mut decide_once = || {
        let decision = decide(
            Input::new(RequestView::new(&headers)),
            Environment::new(&config, &keys, UnixSeconds(NOW)).with_cache(&mut cache),
        );
        let edits = decision.header_edits(&headers).map(|edits| edits.add.len());
        (decision.status(), edits)
    };
    let (first, answer) = allocations_of(&mut decide_once);
    assert_eq!(answer, (200, Some(3)));
    let (repeated, answer) = allocations_of(&mut decide_once);
    assert_eq!(answer, (200, Some(3)));
    let (again, _) = allocations_of(&mut decide_once);
    assert!(
        first > 40,
        "a new token parses and verifies: {first} allocations"
    );
    assert_eq!(
        repeated, again,
        "the cached path allocates the same every time"
    );
    assert_eq!(repeated, 6, "allocations of a decision on a cached token");
}
