//! claimgate in front of an MCP server, through a real Envoy: the MCP authorization flow's
//! protected-resource metadata discovery (RFC 9728) answered by the filter, challenges that
//! point to it, tokens whose audience is the server's resource URL, and the shipped
//! policy cases (`filter-config/mcp-server.cases.yaml`).

use crate::support::{demo_key, now, tokens, Envoy, DEMO_ISSUER};
use claimgate::cases::{CaseFile, Observed};
use serde_json::{json, Value};

const CONFIG: &str = include_str!("../../filter-config/mcp-server.json");
const CASES: &str = include_str!("../../filter-config/mcp-server.cases.yaml");
const RESOURCE: &str = "https://mcp.aethermarket.com/mcp";
const METADATA_URL: &str = "https://mcp.aethermarket.com/.well-known/oauth-protected-resource/mcp";

/// The shipped MCP configuration with the demo key inline instead of discovery (no
/// identity provider to fetch from here).
fn config() -> String {
    let mut config: Value = serde_json::from_str(CONFIG).unwrap();
    config["providers"][0]["jwks"] = json!({"inline": {"keys": [demo_key().public_jwk()]}});
    config.to_string()
}

fn token(claims: &Value) -> String {
    demo_key()
        .sign(&tokens::claims(DEMO_ISSUER, RESOURCE, claims.clone()))
        .unwrap()
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn mcp_clients_discover_the_authorization_server_and_get_in_with_a_scoped_token() {
    let envoy = Envoy::start(&config());
    // RFC 9728 §3.1: the resource's path after the well-known path. The bare URL is the
    // metadata of https://mcp.aethermarket.com/, another resource: not served here.
    let bare = envoy.request("GET", "/.well-known/oauth-protected-resource", &[]);
    assert_ne!(bare.status, 200, "{}", bare.body);
    assert!(
        !bare.body.contains("authorization_servers"),
        "{}",
        bare.body
    );
    {
        let path = "/.well-known/oauth-protected-resource/mcp";
        let response = envoy.request("GET", path, &[("authorization", "Bearer not-even-a-jwt")]);
        assert_eq!(response.status, 200, "{path}: {}", response.body);
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(
            response.header("cache-control"),
            Some("public, max-age=3600")
        );
        let metadata: Value = serde_json::from_str(&response.body).unwrap();
        assert_eq!(
            metadata,
            json!({
                "resource": RESOURCE,
                "authorization_servers": ["https://aethermarket.auth0.com/"],
                "scopes_supported": ["mcp:tools", "mcp:resources"],
                "bearer_methods_supported": ["header"],
                "resource_name": "AetherMarket MCP server",
                "resource_documentation": "https://mcp.aethermarket.com/docs"
            })
        );
    }
    // The first MCP request has no token: the challenge says where to look.
    let response = envoy.request("POST", "/mcp", &[]);
    assert_eq!(response.status, 401);
    assert_eq!(
        response.header("www-authenticate"),
        Some(format!("Bearer realm=\"mcp\", resource_metadata=\"{METADATA_URL}\"").as_str())
    );
    // A token for another resource (audience) is refused, with the pointer too.
    let other = demo_key()
        .sign(
            &json!({"iss": "https://aethermarket.auth0.com/", "aud": "https://api.aethermarket.com",
            "sub": "auth0|alice", "scope": "mcp:tools", "iat": now(), "exp": now() + 600}),
        )
        .unwrap();
    let response = envoy.request(
        "POST",
        "/mcp",
        &[("authorization", &format!("Bearer {other}"))],
    );
    assert_eq!(response.status, 401);
    let challenge = response.header("www-authenticate").unwrap_or_default();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(
        challenge.ends_with(&format!("resource_metadata=\"{METADATA_URL}\"")),
        "{challenge}"
    );
    let good = token(&json!({"sub": "auth0|alice", "azp": "claude-desktop", "scope": "mcp:tools"}));
    let response = envoy.request(
        "POST",
        "/mcp",
        &[("authorization", &format!("Bearer {good}"))],
    );
    assert_eq!(response.status, 200, "{}", response.body);
    let echo: Value = serde_json::from_str(&response.body).unwrap();
    assert_eq!(echo["headers"]["x-user-id"], "auth0|alice");
    assert_eq!(echo["headers"]["x-mcp-client"], "claude-desktop");
    let stats = envoy.admin("/stats?filter=requests.resource_metadata").body;
    assert!(
        stats.contains("claimgate.requests.resource_metadata: 1"),
        "{stats}"
    );
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn every_shipped_mcp_policy_case_holds_through_envoy() {
    let envoy = Envoy::start(&config());
    let cases = CaseFile::from_value(serde_yaml_ng::from_str(CASES).unwrap()).unwrap();
    let mut failures = Vec::new();
    let mut responses = Vec::new();
    for case in &cases.cases {
        let bearer = case
            .claims
            .as_ref()
            .map(|claims| format!("Bearer {}", token(&Value::Object(claims.clone()))));
        let mut headers: Vec<(&str, &str)> = case
            .request
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        if let Some(bearer) = &bearer {
            headers.push(("authorization", bearer));
        }
        let response = envoy.request(&case.request.method, &case.request.path, &headers);
        let upstream = (response.status == 200 && case.request.path == "/mcp").then(|| {
            let echo: Value = serde_json::from_str(&response.body).unwrap();
            echo["headers"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(name, value)| (name.clone(), value.as_str().unwrap_or_default().to_owned()))
                .collect()
        });
        responses.push((response.status, upstream));
    }
    // The deciding rule, dry-run verdict and reason come from the access log's
    // explanation: every case is compared in full.
    let lines = envoy.access_log(cases.cases.len());
    for ((case, (status, upstream)), line) in cases.cases.iter().zip(responses).zip(&lines) {
        let explanation = line
            .explanation
            .as_ref()
            .unwrap_or_else(|| panic!("{}: no explanation in the access log", case.name));
        let observed = Observed {
            status,
            rule: Some(explanation["rule"].as_str().map(str::to_owned)),
            upstream_headers: upstream,
            dry_run_status: Some(explanation["dry_run"]["status"].as_u64().map(|s| s as u16)),
            reason: explanation["reason"].as_str().map(str::to_owned),
        };
        for problem in case.expect.mismatches(&observed) {
            failures.push(format!("{}: {problem}", case.name));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// RFC 9728 §2 through Envoy: with one provider checking certificate bindings only
/// optionally and one checking DPoP optionally, the resource *supports* certificate-bound
/// tokens (`tls_client_certificate_bound_access_tokens: true`) and DPoP (the proof
/// algorithms), but does not always require DPoP-bound tokens.
#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn the_metadata_says_which_bound_tokens_the_resource_supports() {
    let mut config: Value = serde_json::from_str(&config()).unwrap();
    config["providers"][0]["mtls_binding"] = json!("optional");
    config["providers"][0]["dpop"] = json!("optional");
    config["dpop_proofs"] = json!({"algorithms": ["ES256", "EdDSA"]});
    let envoy = Envoy::start(&config.to_string());
    let response = envoy.request("GET", "/.well-known/oauth-protected-resource/mcp", &[]);
    assert_eq!(response.status, 200, "{}", response.body);
    let metadata: Value = serde_json::from_str(&response.body).unwrap();
    assert_eq!(metadata["tls_client_certificate_bound_access_tokens"], true);
    assert_eq!(
        metadata["dpop_signing_alg_values_supported"],
        json!(["ES256", "EdDSA"])
    );
    assert_eq!(metadata["dpop_bound_access_tokens_required"], false);
    assert_eq!(metadata["bearer_methods_supported"], json!(["header"]));
}
