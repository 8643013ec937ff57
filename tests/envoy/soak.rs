//! A bounded soak on loopback: valid, expired, forged, policy-denied, path-trick,
//! anonymous and every-time-new-token requests from several client threads against an
//! Envoy with two workers. Every answer must be the expected one (zero wrong decisions,
//! zero 5xx), and Envoy's memory must stay flat once the token caches are full.
//!
//! `CLAIMGATE_SOAK_SECONDS` sets the measured time (default 20, the short form the test
//! command runs); `scripts/soak.sh` runs the long form (120 s).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support;
use crate::support::{demo_key, now, Envoy, EnvoyOptions, DEMO_AUDIENCE, DEMO_ISSUER};
use serde_json::{json, Value};

const CONFIG: &str = include_str!("../../filter-config/aethermarket.json");
const NS: &str = "https://aethermarket.com/";
/// A small cache so it is full (and evicting) early in the run.
const CACHE_ENTRIES: usize = 128;
/// Distinct valid tokens cycled through: several times the cache.
const POOL: usize = 512;
const CLIENTS: usize = 4;

struct Requests {
    pool: Vec<String>,
    expired: String,
    forged: String,
    silver: String,
}

impl Requests {
    fn new() -> Requests {
        let key = demo_key();
        // Valid for an hour, for long soaks (scripts/soak.sh).
        let sign = |extra: Value| {
            let mut claims = json!({"exp": now() + 3600});
            support::merge(&mut claims, extra);
            key.sign(&support::tokens::claims(DEMO_ISSUER, DEMO_AUDIENCE, claims))
                .unwrap()
        };
        let pool = (0..POOL)
            .map(|n| sign(json!({"sub": format!("auth0|soak{n}")})))
            .collect();
        let valid = sign(json!({"sub": "auth0|forged"}));
        let swap = if valid.ends_with('A') { 'Q' } else { 'A' };
        Requests {
            pool,
            expired: sign(json!({"sub": "auth0|old", "iat": now() - 7200, "exp": now() - 3600})),
            forged: format!("{}{swap}", &valid[..valid.len() - 1]),
            silver: sign(json!({"sub": "auth0|silver", format!("{NS}loyalty_tier"): "Silver"})),
        }
    }

    /// Request number `n`: (path, bearer token, expected status).
    fn nth(&self, n: usize) -> (&'static str, Option<&str>, u16) {
        let pooled = self.pool[n / 8 % self.pool.len()].as_str();
        match n % 8 {
            0 | 1 => ("/products/1", Some(pooled), 200),
            2 => ("/products/1", Some(self.expired.as_str()), 401),
            3 => ("/products/1", Some(self.forged.as_str()), 401),
            4 => ("/deals/exclusive", Some(self.silver.as_str()), 403),
            5 => ("/public/%2e%2e;/admin/users", None, 400),
            6 => ("/admin/users", None, 401),
            _ => ("/public/catalog", None, 200),
        }
    }
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn a_mixed_load_gets_every_answer_right_with_flat_memory() {
    let seconds: u64 = std::env::var("CLAIMGATE_SOAK_SECONDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(20);
    let mut config: Value = serde_json::from_str(CONFIG).unwrap();
    config["token_cache"] = json!({"max_entries": CACHE_ENTRIES});
    let envoy = Arc::new(
        Envoy::start_with(
            &config.to_string(),
            EnvoyOptions {
                concurrency: 2,
                ..EnvoyOptions::default()
            },
        )
        .unwrap_or_else(|log| panic!("Envoy did not start:\n{log}")),
    );
    let requests = Arc::new(Requests::new());
    let sent = Arc::new(AtomicUsize::new(0));
    let wrong = Arc::new(Mutex::new(Vec::<String>::new()));
    let server_errors = Arc::new(AtomicUsize::new(0));
    // Warm-up: one pass over the pool fills every worker's cache.
    let warm_until = POOL * 8;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds) + Duration::from_secs(60);
    let stop_after = Arc::new(Mutex::new(None::<Instant>));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (envoy, requests, sent, wrong, server_errors, stop_after) = (
                Arc::clone(&envoy),
                Arc::clone(&requests),
                Arc::clone(&sent),
                Arc::clone(&wrong),
                Arc::clone(&server_errors),
                Arc::clone(&stop_after),
            );
            std::thread::spawn(move || loop {
                let stop = *stop_after.lock().unwrap();
                if stop.is_some_and(|stop| Instant::now() >= stop) || Instant::now() >= deadline {
                    return;
                }
                let n = sent.fetch_add(1, Ordering::Relaxed);
                let (path, token, expected) = requests.nth(n);
                let bearer = token.map(|token| format!("Bearer {token}"));
                let headers: Vec<(&str, &str)> = bearer
                    .iter()
                    .map(|b| ("authorization", b.as_str()))
                    .collect();
                match support::http(envoy.port, "GET", path, &headers) {
                    Ok(response) if response.status == expected => {}
                    Ok(response) => {
                        if response.status >= 500 {
                            server_errors.fetch_add(1, Ordering::Relaxed);
                        }
                        wrong.lock().unwrap().push(format!(
                            "#{n} {path}: {} instead of {expected}",
                            response.status
                        ));
                    }
                    Err(err) => wrong.lock().unwrap().push(format!("#{n} {path}: {err}")),
                }
            })
        })
        .collect();
    // Memory: sampled every 500 ms once the warm-up pass is done.
    let mut samples: Vec<u64> = Vec::new();
    let mut measuring_since = None;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        if measuring_since.is_none() && sent.load(Ordering::Relaxed) >= warm_until {
            let since = Instant::now();
            measuring_since = Some(since);
            *stop_after.lock().unwrap() = Some(since + Duration::from_secs(seconds));
        }
        match measuring_since {
            Some(since) if since.elapsed() <= Duration::from_secs(seconds) => {
                samples.extend(envoy.rss_kib());
            }
            Some(_) => break,
            None => {}
        }
    }
    for client in clients {
        client.join().unwrap();
    }
    let wrong = wrong.lock().unwrap();
    let total = sent.load(Ordering::Relaxed);
    assert!(
        measuring_since.is_some(),
        "the warm-up pass ({warm_until} requests) did not finish: {total} sent"
    );
    assert_eq!(
        server_errors.load(Ordering::Relaxed),
        0,
        "5xx answers: {wrong:?}"
    );
    assert!(
        wrong.is_empty(),
        "{} wrong answers of {total}: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(20)]
    );
    let window = (samples.len() / 4).max(1);
    let mean = |part: &[u64]| part.iter().sum::<u64>() / part.len().max(1) as u64;
    let first = mean(&samples[..window]);
    let last = mean(&samples[samples.len() - window..]);
    println!(
        "soak: {total} requests in {:.0} s, {} RSS samples, first quarter {first} KiB, last quarter {last} KiB",
        start.elapsed().as_secs_f64(),
        samples.len()
    );
    // Flat: at most 5 % plus 4 MiB of allocator slack between the first and last quarter.
    assert!(
        last <= first + first / 20 + 4096,
        "Envoy grew from {first} KiB to {last} KiB: {samples:?}"
    );
}
