//! The fixtures of the integration tests. The Envoy test binary (`tests/envoy/main.rs`)
//! includes all of it as `support`; another test binary includes only the files it uses
//! (`#[path = "support/tokens.rs"] mod tokens;`), so that none compiles code it never
//! calls.
//!
//! - `envoy`: one launcher for a real Envoy with the built module, from any bootstrap
//!   template of `envoy/`; `front`: a plain Envoy balancing over several of them;
//! - `client`: an HTTP/1.1 client that can send repeated headers, free loopback ports;
//! - `tokens`: the clock and token claims; the demo's key and tokens are here;
//! - `idp`: an HTTP server the test scripts (JWKS, discovery, a module download);
//!   `etcd`: a local etcd cluster;
//! - `pyjwt`, `pyjwt_keys`: tokens and DPoP proofs made by an independent JOSE library.

pub mod client;
pub mod envoy;
pub mod etcd;
pub mod front;
pub mod idp;
pub mod pyjwt;
pub mod pyjwt_keys;
pub mod tokens;

pub use client::{free_port, http, Response};
pub use envoy::{
    envoy_checks, fault_module, repo_file, wasm_path, write_policy, Envoy, EnvoyOptions,
    ListenerTls,
};
pub use tokens::{merge, now};

use base64ct::{Base64UrlUnpadded, Encoding};
use claimgate::mint::SigningKey;
use serde_json::{json, Value};

/// The demo's private key (demo only; its public half is in the AetherMarket config).
pub const DEMO_KEY: &str = include_str!("../../filter-config/demo/private-demo-only.jwk.json");
/// The AetherMarket demo's issuer and audience.
pub const DEMO_ISSUER: &str = "https://aethermarket.auth0.com/";
pub const DEMO_AUDIENCE: &str = "https://api.aethermarket.com";

pub fn demo_key() -> SigningKey {
    SigningKey::from_jwk(&serde_json::from_str(DEMO_KEY).unwrap()).unwrap()
}

/// A token the AetherMarket demo accepts (its issuer and audience, a fixed subject,
/// valid for ten minutes), signed with the demo key, with `extra` claims merged in.
pub fn demo_token(extra: Value) -> String {
    let mut extra_claims = json!({"sub": "auth0|5f7c8ec7c33c6c004bbafe82"});
    merge(&mut extra_claims, extra);
    demo_key()
        .sign(&tokens::claims(DEMO_ISSUER, DEMO_AUDIENCE, extra_claims))
        .unwrap()
}

/// `token` with the bits `mask` of its signature's byte `byte` flipped: a forgery.
pub fn with_signature_bits_flipped(token: &str, byte: usize, mask: u8) -> String {
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let mut signature = Base64UrlUnpadded::decode_vec(signature).unwrap();
    signature[byte] ^= mask;
    format!("{signed}.{}", Base64UrlUnpadded::encode_string(&signature))
}

/// A configuration with one provider that verifies `keys` inline (each key's algorithm
/// allowed), a valid token on every path, and no token cache, so every request's
/// signature is checked — by Envoy's crypto or in the module, as `host_crypto` says.
pub fn uncached_keys_config(
    issuer: &str,
    audience: &str,
    keys: &[SigningKey],
    host_crypto: &str,
) -> String {
    json!({
        "providers": [{
            "name": "idp",
            "issuer": issuer,
            "audiences": [audience],
            "algorithms": keys.iter().map(|key| key.alg().name()).collect::<Vec<_>>(),
            "jwks": {"inline": {"keys": keys.iter().map(|key| key.public_jwk()).collect::<Vec<_>>()}}
        }],
        "rules": [{"match": {"prefix": "/"}, "access": "authenticated"}],
        "token_cache": {"max_entries": 0},
        "host_crypto": host_crypto
    })
    .to_string()
}

/// A STATIC Envoy cluster `name` (YAML list item for `Envoy::start_with_clusters`) with
/// one loopback endpoint on `port`: an identity provider the test runs.
pub fn loopback_cluster(name: &str, port: u16) -> String {
    format!(
        "- name: {name}
  type: STATIC
  connect_timeout: 0.5s
  load_assignment:
    cluster_name: {name}
    endpoints:
    - lb_endpoints:
      - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }} }}"
    )
}
