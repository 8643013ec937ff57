//! Proofs used once across a fleet (issue 21): three claimgate Envoys sharing a once-only
//! record in a 3-member etcd cluster started by the test (loopback, temp data dirs).
//!
//! A proof used on one replica is refused on every other, also when the same proof is
//! sent to all replicas at once (exactly one 2xx); with one member killed, still exactly
//! once; with quorum lost, 503 (or, on the replica configured `on_unavailable: local`,
//! its own record's verdict) and never a proof accepted twice; with quorum back, service
//! resumes without a restart; keys expire with their leases, so the store stays bounded.

use std::time::{Duration, Instant};

use crate::support::etcd::EtcdCluster;
use crate::support::{now, Envoy, EnvoyOptions, Response};
use claimgate::jwks::Alg;
use claimgate::mint::{ProofRequest, SigningKey};
use serde_json::json;

const ISSUER: &str = "https://idp.example/";
const AUDIENCE: &str = "https://api.example";
const HOST: &str = "api.example";
const URL: &str = "http://api.example/orders";
const PREFIX: &str = "claimgate/test/";

struct Client {
    client: SigningKey,
    token: String,
}

impl Client {
    fn proof(&self, jti: &str) -> String {
        self.client
            .dpop_proof(&ProofRequest {
                method: "GET",
                url: URL,
                access_token: Some(&self.token),
                nonce: None,
                iat: now(),
                jti,
            })
            .unwrap()
    }

    fn send(&self, envoy: &Envoy, proof: &str) -> Response {
        let authorization = format!("DPoP {}", self.token);
        envoy.request(
            "GET",
            "/orders",
            &[
                ("host", HOST),
                ("authorization", &authorization),
                ("dpop", proof),
            ],
        )
    }

    /// The same proof sent to every replica at once: the statuses, in replica order.
    fn send_everywhere(&self, replicas: &[Envoy], proof: &str) -> Vec<u16> {
        std::thread::scope(|scope| {
            let sends: Vec<_> = replicas
                .iter()
                .map(|replica| scope.spawn(move || self.send(replica, proof).status))
                .collect();
            sends.into_iter().map(|send| send.join().unwrap()).collect()
        })
    }
}

fn config(issuer: &SigningKey, on_unavailable: &str) -> String {
    json!({
        "providers": [{
            "name": "idp", "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["ES256"],
            "jwks": {"inline": {"keys": [issuer.public_jwk()]}}, "dpop": "required"
        }],
        "rules": [{"match": {"prefix": "/"}, "access": "authenticated"}],
        "dpop_proofs": {
            "max_age_seconds": 5, "clock_skew_seconds": 1,
            "shared_record": {"cluster": "etcd", "authority": "etcd.local", "timeout_ms": 1000,
                "key_prefix": PREFIX, "on_unavailable": on_unavailable}
        }
    })
    .to_string()
}

/// Waits until every replica's Envoy sees `port` (an etcd member) as `healthy` or not.
fn wait_member_health(replicas: &[Envoy], port: u16, healthy: bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let needle = format!("etcd::127.0.0.1:{port}::health_flags::");
    loop {
        let seen = replicas.iter().all(|replica| {
            let clusters = replica.admin("/clusters").body;
            clusters
                .lines()
                .find_map(|line| line.strip_prefix(&needle))
                .is_some_and(|flags| (flags == "healthy") == healthy)
        });
        if seen {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "member {port} not seen healthy={healthy}:\n{}",
            replicas[0]
                .admin("/clusters")
                .body
                .lines()
                .filter(|line| line.starts_with("etcd::"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn counter(envoy: &Envoy, name: &str) -> u64 {
    let stats = envoy.admin(&format!("/stats?filter={name}")).body;
    stats
        .lines()
        .find_map(|line| {
            let (stat, value) = line.split_once(": ")?;
            stat.ends_with(name).then(|| value.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("no stat {name} in:\n{stats}"))
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn proofs_are_used_once_across_the_fleet_through_member_loss_and_quorum_loss() {
    let started = Instant::now();
    let mut etcd = EtcdCluster::start(3);
    let issuer = SigningKey::generate(Alg::Es256, Some("idp")).unwrap();
    let client = SigningKey::generate(Alg::Es256, None).unwrap();
    let claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now(),
        "exp": now() + 600, "cnf": {"jkt": client.thumbprint().unwrap()}});
    let token = issuer.sign(&claims).unwrap();
    let client = Client { client, token };
    let cluster = etcd.envoy_cluster("etcd");
    let start = |mode: &str| {
        Envoy::start_with_clusters(&config(&issuer, mode), EnvoyOptions::default(), &cluster)
            .unwrap_or_else(|log| panic!("replica did not start:\n{log}"))
    };
    // Three replicas that fail closed, and one Envoy whose operator chose the per-Envoy
    // record when etcd cannot answer (used in the quorum-lost phase only: during an
    // election, too, it may accept a proof another replica accepted).
    let replicas: Vec<Envoy> = (0..3).map(|_| start("refuse")).collect();
    let fallback = start("local");
    // An Envoy whose etcd cluster has no health checks: it keeps sending calls to a dead
    // member, and the module's one retry (Envoy's round robin picks the next member) is
    // what keeps its proofs passing.
    let unchecked = Envoy::start_with_clusters(
        &config(&issuer, "refuse"),
        EnvoyOptions::default(),
        &etcd.envoy_cluster_without_health_checks("etcd"),
    )
    .unwrap_or_else(|log| panic!("replica did not start:\n{log}"));
    for member in &etcd.members {
        wait_member_health(&replicas, member.client_port, true);
    }

    // Used on one replica, refused on every other (and on itself).
    let proof = client.proof("once");
    assert_eq!(client.send(&replicas[0], &proof).status, 200);
    for replica in &replicas {
        let response = client.send(replica, &proof);
        assert_eq!(response.status, 401, "{response:?}");
    }

    // The added latency of one DPoP request with the shared record (leases known),
    // beside an Envoy with the per-Envoy record only; same client, same loop.
    let mut local_config: serde_json::Value =
        serde_json::from_str(&config(&issuer, "refuse")).unwrap();
    local_config["dpop_proofs"]
        .as_object_mut()
        .unwrap()
        .remove("shared_record");
    let local_only = Envoy::start(&local_config.to_string());
    let rounds = 30;
    let timed = |envoy: &Envoy, label: &str| {
        let begun = Instant::now();
        for round in 0..rounds {
            let status = client
                .send(envoy, &client.proof(&format!("{label}{round}")))
                .status;
            assert_eq!(status, 200);
        }
        begun.elapsed() / rounds
    };
    let _warm = timed(&replicas[1], "w");
    let shared = timed(&replicas[0], "t");
    let per_envoy = timed(&local_only, "l");
    eprintln!(
        "DPoP request on loopback, mean of {rounds}: per-Envoy record {per_envoy:?}, \
         with the etcd record {shared:?} (added {:?})",
        shared.saturating_sub(per_envoy)
    );
    // What the shared record prevents: an Envoy with only its own record accepts a
    // proof another replica accepted.
    let proof = client.proof("both");
    assert_eq!(client.send(&replicas[0], &proof).status, 200);
    assert_eq!(client.send(&local_only, &proof).status, 200);
    drop(local_only);

    // The same proof to all replicas at once: exactly one 2xx, the others a replay.
    // Safety: never more than one 2xx for a proof, and nothing but 200, 401 (a replay) or
    // 503 (etcd could not answer: fail closed). Liveness: all but at most `allowed_503`
    // rounds get exactly one 200 and 401s (right after a failover, etcd may refuse a
    // transaction or two while the new leader settles).
    let exactly_once = |label: &str, rounds: usize, allowed_503: usize| {
        let mut unavailable = 0;
        for round in 0..rounds {
            let proof = client.proof(&format!("{label}{round}"));
            let statuses = client.send_everywhere(&replicas, &proof);
            let ok = statuses.iter().filter(|status| **status == 200).count();
            assert!(
                ok <= 1,
                "{label} round {round}: accepted twice: {statuses:?}"
            );
            assert!(
                statuses
                    .iter()
                    .all(|status| [200, 401, 503].contains(status)),
                "{label} round {round}: {statuses:?}"
            );
            if statuses.contains(&503) || ok == 0 {
                unavailable += 1;
                for replica in &replicas {
                    if let Some(line) = replica
                        .log()
                        .lines()
                        .rev()
                        .find(|line| line.contains("shared record unavailable"))
                    {
                        eprintln!("{label} round {round} {statuses:?}: {line}");
                    }
                }
            }
        }
        assert!(
            unavailable <= allowed_503,
            "{label}: {unavailable} of {rounds} rounds without exactly one 200 and 401s"
        );
    };
    exactly_once("c", 10, 0);

    // One member killed (and skipped by the health checks; it may have been the leader:
    // the others elect one): still exactly once.
    let killed = etcd.members[2].client_port;
    etcd.kill_member(2);
    wait_member_health(&replicas, killed, false);
    etcd.wait_healthy(0, Duration::from_secs(15));
    etcd.wait_healthy(1, Duration::from_secs(15));
    // A new leader can report healthy before it commits transactions again (slowly on a
    // busy machine): wait until a fresh proof goes through on every replica once.
    let settle = |phase: &str| {
        for (index, replica) in replicas.iter().enumerate() {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            let mut attempt = 0;
            loop {
                let proof = client.proof(&format!("settle-{phase}-{index}-{attempt}"));
                let status = client.send(replica, &proof).status;
                if status == 200 {
                    break;
                }
                assert_eq!(status, 503, "settling: only 503 while etcd recovers");
                assert!(
                    std::time::Instant::now() < deadline,
                    "etcd did not recover ({phase})"
                );
                attempt += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    };
    settle("member lost");
    // Safety holds in every round (never two 2xx); liveness too: a call that meets the
    // dead member or an election is sent once more. One round in ten may still meet two
    // such answers in a row on a busy machine (503, fail closed).
    exactly_once("k", 10, 1);
    // Envoy without health checks sends every third call to the dead member: each is
    // retried on the next, so every fresh proof passes, and each passes only once.
    for round in 0..9 {
        let proof = client.proof(&format!("u{round}"));
        let response = client.send(&unchecked, &proof);
        assert_eq!(
            response.status,
            200,
            "round {round}: {response:?}\n{}",
            unchecked.log()
        );
        assert_eq!(client.send(&replicas[0], &proof).status, 401);
    }
    assert!(
        counter(&unchecked, "claimgate.dpop.shared_record.retries") >= 2,
        "the dead member was met and the call retried"
    );
    drop(unchecked);

    // Quorum lost: 503 on the fail-closed replicas and never a proof accepted by them;
    // the `local` Envoy decides on its own record (counted).
    let second = etcd.members[1].client_port;
    etcd.kill_member(1);
    wait_member_health(&replicas, second, false);
    for round in 0..3 {
        let proof = client.proof(&format!("q{round}"));
        for replica in &replicas {
            let response = client.send(replica, &proof);
            assert_eq!(response.status, 503, "{response:?}");
            assert!(response.header("retry-after").is_some(), "{response:?}");
        }
        assert_eq!(client.send(&fallback, &proof).status, 200);
        let again = client.send(&fallback, &proof).status;
        assert_eq!(again, 401, "twice on one Envoy");
    }
    assert!(counter(&fallback, "claimgate.dpop.shared_record.fallbacks") >= 3);
    assert!(counter(&replicas[0], "claimgate.dpop.shared_record.failures") >= 3);

    // Quorum back: service resumes without restarting anything.
    etcd.start_member(1);
    etcd.start_member(2);
    for member in 0..3 {
        etcd.wait_healthy(member, Duration::from_secs(30));
    }
    for member in &etcd.members {
        wait_member_health(&replicas, member.client_port, true);
    }
    settle("back");
    exactly_once("b", 10, 5);

    // A short soak: keys live on time-bucketed leases (10 s buckets here, each lease up
    // to 30 s), so after the proofs stop the store empties; leases stay a handful.
    let soak = Instant::now();
    let mut sent = 0;
    let mut peak_leases = 0;
    while soak.elapsed() < Duration::from_secs(6) {
        let proof = client.proof(&format!("s{sent}"));
        let status = client.send(&replicas[sent % 3], &proof).status;
        assert_eq!(status, 200);
        sent += 1;
        if sent % 10 == 0 {
            peak_leases = peak_leases.max(etcd.leases());
        }
    }
    let keys = etcd.count(PREFIX);
    eprintln!("soak: {sent} proofs in 6 s, {keys} keys, at most {peak_leases} leases");
    assert!(
        keys >= sent as u64,
        "every proof of the soak is recorded: {keys} < {sent}"
    );
    assert!(peak_leases <= 4, "{peak_leases} leases");
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let left = etcd.count(PREFIX);
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{left} keys did not expire");
        std::thread::sleep(Duration::from_secs(1));
    }
    eprintln!("the whole test took {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(120));
}
