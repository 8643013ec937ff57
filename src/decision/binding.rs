//! Sender-constrained tokens: a token bound to a DPoP key (`cnf.jkt`, RFC 9449) must come
//! as `Authorization: DPoP` with a valid proof by that key, used once; a token bound to a
//! TLS client certificate (`cnf.x5t#S256`, RFC 8705) must come over a connection with that
//! certificate. Checked after the token is verified (from the cache or not: a cached token
//! only skips its own signature check, never its proof) and before any rule.

use serde_json::Value;

use super::response::Refusal;
use crate::config::Config;
use crate::dpop::{
    verify_proof, MemoryReplayGuard, NonceKey, ProofContext, ProofError, ReplayError, ReplayGuard,
};
use crate::jwks::KeyRing;
use crate::provider::Binding;
use crate::request::RequestView;
use crate::token::{FoundToken, TokenError, VerifiedToken};

/// What checking DPoP proofs needs besides the request: the key server nonces are made
/// with (when `use_dpop_nonce` is on) and the once-only record of used proofs. The Envoy
/// filter keeps both in shared data, so every worker agrees.
pub struct ProofEnvironment<'a> {
    pub nonce_key: Option<&'a NonceKey>,
    pub replay: &'a dyn ReplayGuard,
}

/// Whether the token was sent as `Authorization: DPoP` (and nowhere else).
pub(super) fn presented_as_dpop(config: &Config, found: &FoundToken) -> bool {
    config.dpop_location.is_some_and(|dpop| {
        !found.locations.is_empty() && found.locations.iter().all(|index| *index == dpop)
    })
}

/// Checks the token's bindings against the request.
pub(super) fn check_binding(
    config: &Config,
    keys: &KeyRing,
    request: &RequestView<'_>,
    found: &FoundToken,
    verified: &VerifiedToken,
    now: i64,
    proofs: Option<&ProofEnvironment<'_>>,
) -> Result<(), Refusal> {
    let Some(provider) = config
        .providers
        .get(verified.provider())
        .filter(|provider| provider.dpop != Binding::Off || provider.mtls_binding != Binding::Off)
    else {
        // A bearer-only provider: nothing more to check (and nothing more done).
        return Ok(());
    };
    let cnf = verified.claims().get("cnf");
    let bound_to = |member: &str| cnf.and_then(|cnf| cnf.get(member)).and_then(Value::as_str);
    if provider.dpop != Binding::Off {
        let as_dpop = presented_as_dpop(config, found);
        match bound_to("jkt") {
            Some(_) if !as_dpop => return Err(Refusal::BadToken(TokenError::BoundTokenAsBearer)),
            Some(jkt) => check_proof(config, keys, request, found, jkt, now, proofs)?,
            None if as_dpop => return Err(Refusal::BadToken(TokenError::NotDpopBound)),
            None if provider.dpop == Binding::Required => {
                return Err(Refusal::BadToken(TokenError::DpopBindingRequired))
            }
            None => {}
        }
    }
    if provider.mtls_binding != Binding::Off {
        match (bound_to("x5t#S256"), request.client_certificate()) {
            (Some(_), None) => return Err(Refusal::BadToken(TokenError::CertificateRequired)),
            (Some(bound), Some(presented)) if bound != presented => {
                return Err(Refusal::BadToken(TokenError::CertificateMismatch))
            }
            (None, _) if provider.mtls_binding == Binding::Required => {
                return Err(Refusal::BadToken(TokenError::CertificateBindingRequired))
            }
            _ => {}
        }
    }
    Ok(())
}

/// The request's DPoP proof: valid, by the key `jkt` names, and not seen before.
fn check_proof(
    config: &Config,
    keys: &KeyRing,
    request: &RequestView<'_>,
    found: &FoundToken,
    jkt: &str,
    now: i64,
    proofs: Option<&ProofEnvironment<'_>>,
) -> Result<(), Refusal> {
    // Without an environment (the CLI, tests): a record for this one decision, and a
    // nonce key of its own.
    let local_replay;
    let local_nonce;
    let (nonce_key, replay): (Option<&NonceKey>, &dyn ReplayGuard) = match proofs {
        Some(proofs) => (proofs.nonce_key, proofs.replay),
        None => {
            local_replay = MemoryReplayGuard::default();
            local_nonce = config.dpop.use_dpop_nonce.then(NonceKey::random).flatten();
            (local_nonce.as_ref(), &local_replay)
        }
    };
    if config.dpop.use_dpop_nonce && nonce_key.is_none() {
        return Err(Refusal::ProofsUnavailable);
    }
    let context = ProofContext {
        request,
        access_token: &found.token,
        now,
        nonce_key: nonce_key.filter(|_| config.dpop.use_dpop_nonce),
        host: keys.host_crypto(),
    };
    let proof = match verify_proof(&config.dpop, &context) {
        Ok(proof) => proof,
        Err(ProofError::NonceRequired) => {
            return Err(match nonce_key {
                Some(key) => Refusal::NonceRequired(key.issue(now)),
                None => Refusal::ProofsUnavailable,
            })
        }
        Err(err) => return Err(Refusal::BadProof(err)),
    };
    if proof.jkt() != jkt {
        return Err(Refusal::BadProof(ProofError::KeyMismatch));
    }
    replay
        .first_use(proof.id(), proof.expires_at(), now)
        .map_err(|err| match err {
            ReplayError::Replayed => Refusal::BadProof(ProofError::Replayed),
            ReplayError::KeyQuota { retry_after } => Refusal::ProofKeyQuota(retry_after),
            ReplayError::Full | ReplayError::Unavailable => Refusal::ProofsUnavailable,
        })
}

#[cfg(test)]
mod tests {
    use super::super::{decide_with_proofs, Decision, Outcome};
    use super::*;
    use crate::cache::TokenCache;
    use crate::jwks::Alg;
    use crate::mint::{ProofRequest, SigningKey};
    use crate::request::request_headers;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;
    const ISS: &str = "https://idp.example/";

    struct Setup {
        config: Config,
        issuer_key: SigningKey,
        client_key: SigningKey,
    }

    fn setup(dpop: &str, extra: Value) -> Setup {
        let issuer_key = SigningKey::generate(Alg::Es256, Some("i")).unwrap();
        let mut config = json!({
            "realm": "api",
            "providers": [{
                "name": "idp", "issuer": ISS, "audiences": ["api"], "algorithms": ["ES256"],
                "jwks": {"inline": {"keys": [issuer_key.public_jwk()]}},
                "dpop": dpop
            }],
            "rules": [{"match": {"prefix": "/"}, "access": "authenticated"}]
        });
        if let (Some(config), Value::Object(mut extra)) = (config.as_object_mut(), extra) {
            // "provider": fields for the provider rather than the top level.
            if let (Some(provider), Some(Value::Object(fields))) = (
                config["providers"][0].as_object_mut(),
                extra.remove("provider"),
            ) {
                provider.extend(fields);
            }
            config.extend(extra);
        }
        Setup {
            config: Config::from_json(config.to_string().as_bytes()).unwrap(),
            issuer_key,
            client_key: SigningKey::generate(Alg::Es256, None).unwrap(),
        }
    }

    impl Setup {
        fn token(&self, cnf: Option<Value>) -> String {
            let mut claims = json!({"iss": ISS, "aud": "api", "sub": "alice", "exp": NOW + 600});
            if let Some(cnf) = cnf {
                claims["cnf"] = cnf;
            }
            self.issuer_key.sign(&claims).unwrap()
        }

        fn bound_token(&self) -> String {
            self.token(Some(json!({"jkt": self.client_key.thumbprint().unwrap()})))
        }

        fn proof(&self, token: &str, jti: &str, nonce: Option<&str>) -> String {
            self.client_key
                .dpop_proof(&ProofRequest {
                    method: "GET",
                    url: "https://api.example/orders",
                    access_token: Some(token),
                    nonce,
                    iat: NOW,
                    jti,
                })
                .unwrap()
        }

        fn decide(
            &self,
            authorization: &str,
            proofs_sent: &[&str],
            cache: Option<&mut TokenCache>,
            environment: &ProofEnvironment<'_>,
        ) -> Decision {
            let mut headers: Vec<(&str, &[u8])> = vec![("authorization", authorization.as_bytes())];
            headers.extend(proofs_sent.iter().map(|proof| ("dpop", proof.as_bytes())));
            let headers =
                request_headers("GET", "/orders?x=1", "api.example", Some("https"), headers);
            decide_with_proofs(
                &self.config,
                &self.config.initial_keys(),
                cache,
                &RequestView::new(&headers),
                NOW,
                environment,
            )
        }
    }

    fn without_nonces(replay: &MemoryReplayGuard) -> ProofEnvironment<'_> {
        ProofEnvironment {
            nonce_key: None,
            replay,
        }
    }

    fn challenge(decision: &Decision) -> String {
        match &decision.outcome {
            Outcome::Deny(denial) => denial
                .headers
                .iter()
                .find(|(name, _)| name == "www-authenticate")
                .map(|(_, value)| value.clone())
                .unwrap_or_default(),
            Outcome::Allow(_) => panic!("allowed: {}", decision.reason),
        }
    }

    #[test]
    fn a_bound_token_with_its_proof_passes_once_and_every_downgrade_is_refused() {
        let setup = setup("optional", json!({}));
        let replay = MemoryReplayGuard::default();
        let env = without_nonces(&replay);
        let token = setup.bound_token();
        let proof = setup.proof(&token, "p1", None);
        let dpop = format!("DPoP {token}");
        assert!(setup.decide(&dpop, &[&proof], None, &env).is_allowed());
        // The same proof again: replayed.
        let replayed = setup.decide(&dpop, &[&proof], None, &env);
        assert_eq!(replayed.status(), 401);
        assert_eq!(
            challenge(&replayed),
            "DPoP realm=\"api\", error=\"invalid_dpop_proof\", error_description=\"DPoP proof has been used before\", algs=\"ES256 ES384 ES512 EdDSA RS256 PS256\""
        );
        // The bound token as a bearer token, with or without its proof: a downgrade.
        let bearer = format!("Bearer {token}");
        let fresh = setup.proof(&token, "p2", None);
        for proofs in [vec![], vec![fresh.as_str()]] {
            let downgrade = setup.decide(&bearer, &proofs, None, &env);
            assert_eq!(downgrade.status(), 401);
            assert!(challenge(&downgrade).starts_with("Bearer realm=\"api\", error=\"invalid_token\", error_description=\"DPoP-bound token presented as a bearer token\", DPoP realm=\"api\", algs="), "{}", challenge(&downgrade));
        }
        // No proof, or a proof by another key.
        assert_eq!(
            setup.decide(&dpop, &[], None, &env).reason,
            "DPoP proof refused: a DPoP proof is required"
        );
        let thief = SigningKey::generate(Alg::Es256, None).unwrap();
        let stolen = thief
            .dpop_proof(&ProofRequest {
                method: "GET",
                url: "https://api.example/orders",
                access_token: Some(&token),
                nonce: None,
                iat: NOW,
                jti: "p3",
            })
            .unwrap();
        assert!(challenge(&setup.decide(&dpop, &[&stolen], None, &env))
            .contains("DPoP proof key does not match the token binding"));
        // An unbound token passes as a bearer token under "optional", not as DPoP.
        let plain = setup.token(None);
        assert!(setup
            .decide(&format!("Bearer {plain}"), &[], None, &env)
            .is_allowed());
        let not_bound = setup.decide(&format!("DPoP {plain}"), &[], None, &env);
        assert!(challenge(&not_bound).contains("token is not DPoP-bound"));
    }

    #[test]
    fn required_dpop_refuses_unbound_tokens_and_offers_only_dpop() {
        let setup = setup("required", json!({}));
        let replay = MemoryReplayGuard::default();
        let env = without_nonces(&replay);
        let plain = setup.token(None);
        let refused = setup.decide(&format!("Bearer {plain}"), &[], None, &env);
        assert_eq!(
            challenge(&refused),
            "DPoP realm=\"api\", error=\"invalid_token\", error_description=\"a DPoP-bound token is required\", algs=\"ES256 ES384 ES512 EdDSA RS256 PS256\""
        );
    }

    #[test]
    fn a_cached_token_skips_its_signature_check_but_never_its_proof() {
        let setup = setup("required", json!({}));
        let replay = MemoryReplayGuard::default();
        let env = without_nonces(&replay);
        let mut cache = TokenCache::new(setup.config.token_cache);
        let token = setup.bound_token();
        let dpop = format!("DPoP {token}");
        let first = setup.proof(&token, "a", None);
        assert!(setup
            .decide(&dpop, &[&first], Some(&mut cache), &env)
            .is_allowed());
        assert_eq!(cache.len(), 1);
        let second = setup.proof(&token, "b", None);
        assert!(setup
            .decide(&dpop, &[&second], Some(&mut cache), &env)
            .is_allowed());
        for proofs in [vec![], vec![first.as_str()]] {
            assert_eq!(
                setup
                    .decide(&dpop, &proofs, Some(&mut cache), &env)
                    .status(),
                401
            );
        }
    }

    #[test]
    fn with_nonces_a_proof_without_one_gets_use_dpop_nonce_and_a_nonce_to_retry_with() {
        let setup = setup("required", json!({"dpop_proofs": {"use_dpop_nonce": true}}));
        let replay = MemoryReplayGuard::default();
        let key = NonceKey::random().unwrap();
        let env = ProofEnvironment {
            nonce_key: Some(&key),
            replay: &replay,
        };
        let token = setup.bound_token();
        let dpop = format!("DPoP {token}");
        let first = setup.decide(&dpop, &[&setup.proof(&token, "n1", None)], None, &env);
        let Outcome::Deny(denial) = &first.outcome else {
            panic!("allowed without a nonce");
        };
        assert!(challenge(&first).contains("error=\"use_dpop_nonce\""));
        let nonce = denial
            .headers
            .iter()
            .find(|(name, _)| name == "dpop-nonce")
            .map(|(_, value)| value.clone())
            .unwrap();
        let retry = setup.proof(&token, "n2", Some(&nonce));
        assert!(setup.decide(&dpop, &[&retry], None, &env).is_allowed());
    }

    #[test]
    fn an_unforwarded_token_takes_its_proof_with_it() {
        let setup = setup("required", json!({"provider": {"forward_token": false}}));
        let replay = MemoryReplayGuard::default();
        let env = without_nonces(&replay);
        let token = setup.bound_token();
        let decision = setup.decide(
            &format!("DPoP {token}"),
            &[&setup.proof(&token, "f", None)],
            None,
            &env,
        );
        assert!(decision.is_allowed(), "{}", decision.reason);
        for header in ["authorization", "dpop"] {
            assert!(
                decision.remove_headers.iter().any(|name| name == header),
                "{header}: {:?}",
                decision.remove_headers
            );
        }
    }
}
