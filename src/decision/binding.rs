//! Sender-constrained tokens: a token bound to a DPoP key (`cnf.jkt`, RFC 9449) must come
//! as `Authorization: DPoP` with a valid proof by that key, used once; a token bound to a
//! TLS client certificate (`cnf.x5t#S256`, RFC 8705) must come over a connection with that
//! certificate. Checked after the token is verified (from the cache or not: a cached token
//! only skips its own signature check, never its proof) and before any rule.

use serde_json::Value;

use super::input::Step;
use super::response::Refusal;
use crate::config::Config;
use crate::dpop::{
    verify_proof, ProofContext, ProofError, ReplayError, ReplayGuard, VerifiedProof,
};
use crate::provider::Binding;
use crate::time::UnixSeconds;
use crate::token::{FoundToken, TokenError, VerifiedToken};

/// Whether the token was sent as `Authorization: DPoP` (and nowhere else).
pub(super) fn presented_as_dpop(config: &Config, found: &FoundToken<'_>) -> bool {
    config.dpop_location.is_some_and(|dpop| {
        !found.locations.is_empty() && found.locations.iter().all(|index| *index == dpop)
    })
}

/// What the token's `cnf` claim (RFC 7800) binds it to.
#[derive(Default)]
struct Confirmation<'t> {
    /// `cnf.jkt`: a DPoP key's thumbprint (RFC 9449 §6).
    jkt: Option<&'t str>,
    /// `cnf.x5t#S256`: a client certificate's thumbprint (RFC 8705 §3.1).
    certificate: Option<&'t str>,
    /// Any other confirmation method (`jwk`, `jku`, `kid`, `jwe`, …): claimgate checks none.
    other: bool,
}

impl<'t> Confirmation<'t> {
    /// The token's confirmation methods; a `cnf` that is not a non-empty object, or whose
    /// `jkt`/`x5t#S256` is not a non-empty string, is refused rather than read as absent
    /// (a bound token must never pass as unbound because its binding is misspelled).
    fn of(claims: &'t serde_json::Map<String, Value>) -> Result<Confirmation<'t>, TokenError> {
        let Some(cnf) = claims.get("cnf") else {
            return Ok(Confirmation::default());
        };
        let methods = cnf
            .as_object()
            .filter(|methods| !methods.is_empty())
            .ok_or(TokenError::MalformedConfirmation)?;
        let text = |name: &str| match methods.get(name) {
            None => Ok(None),
            Some(value) => value
                .as_str()
                .filter(|text| !text.is_empty())
                .map(Some)
                .ok_or(TokenError::MalformedConfirmation),
        };
        Ok(Confirmation {
            jkt: text("jkt")?,
            certificate: text("x5t#S256")?,
            other: methods
                .keys()
                .any(|name| name != "jkt" && name != "x5t#S256"),
        })
    }
}

/// Checks the token's bindings against the request. A DPoP proof that passed every check
/// comes back to be recorded as used once the policy allows the request (so proofs of
/// refused requests never fill the once-only record); recording it is [`first_use`].
pub(super) fn check_binding(
    step: &Step<'_>,
    found: &FoundToken<'_>,
    verified: &VerifiedToken,
) -> Result<Option<VerifiedProof>, Refusal> {
    let Step {
        config, request, ..
    } = *step;
    let refuse = |err: TokenError| Err(Refusal::BadToken(err));
    let Some(provider) = config.providers.get(verified.provider()) else {
        return Ok(None);
    };
    let confirmation = match Confirmation::of(verified.claims()) {
        Ok(confirmation) => confirmation,
        Err(err) => return refuse(err),
    };
    let unchecked = confirmation.other
        || (confirmation.jkt.is_some() && provider.dpop == Binding::Off)
        || (confirmation.certificate.is_some() && provider.mtls_binding == Binding::Off);
    if unchecked && !provider.insecure_accept_unchecked_binding {
        return refuse(TokenError::UncheckedBinding);
    }
    let mut proof = None;
    if provider.dpop != Binding::Off {
        let as_dpop = presented_as_dpop(config, found);
        match confirmation.jkt {
            Some(_) if !as_dpop => return refuse(TokenError::BoundTokenAsBearer),
            Some(jkt) => proof = Some(check_proof(step, found, jkt)?),
            None if as_dpop => return refuse(TokenError::NotDpopBound),
            None if provider.dpop == Binding::Required => {
                return refuse(TokenError::DpopBindingRequired)
            }
            None => {}
        }
    }
    if provider.mtls_binding != Binding::Off {
        match (confirmation.certificate, request.client_certificate()) {
            (Some(_), None) => return refuse(TokenError::CertificateRequired),
            (Some(bound), Some(presented)) if bound != presented => {
                return refuse(TokenError::CertificateMismatch)
            }
            (None, _) if provider.mtls_binding == Binding::Required => {
                return refuse(TokenError::CertificateBindingRequired)
            }
            _ => {}
        }
    }
    Ok(proof)
}

/// The request's DPoP proof: valid, for this request, and by the key `jkt` names.
fn check_proof(
    step: &Step<'_>,
    found: &FoundToken<'_>,
    jkt: &str,
) -> Result<VerifiedProof, Refusal> {
    let Step { config, now, .. } = *step;
    let nonce_key = step.proofs.and_then(|proofs| proofs.nonce_key);
    if config.dpop.use_dpop_nonce && nonce_key.is_none() {
        return Err(Refusal::ProofsUnavailable);
    }
    let context = ProofContext {
        request: step.request,
        access_token: &found.token,
        bound_jkt: jkt,
        now,
        nonce_key: nonce_key.filter(|_| config.dpop.use_dpop_nonce),
        checks: step.checks,
    };
    verify_proof(&config.dpop, &context).map_err(|err| match (err, nonce_key) {
        (ProofError::NonceRequired, Some(key)) => Refusal::NonceRequired(key.issue(now)),
        (ProofError::NonceRequired, None) => Refusal::ProofsUnavailable,
        (err, _) => Refusal::BadProof(err),
    })
}

/// Records `proof` as used: refused when it was used before, unavailable when the record
/// cannot take it.
pub(super) fn first_use(
    proof: &VerifiedProof,
    replay: &dyn ReplayGuard,
    now: UnixSeconds,
) -> Result<(), Refusal> {
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
    use super::super::{decide, Decision, Environment, Input, Outcome, ProofEnvironment};
    use super::*;
    use crate::cache::TokenCache;
    use crate::dpop::{MemoryReplayGuard, NonceKey};
    use crate::jwks::Alg;
    use crate::mint::{ProofRequest, SigningKey};
    use crate::request::{request_headers, RequestView};
    use crate::test_support::merge;
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
        let mut extra = extra;
        // "provider": fields for the provider rather than the top level.
        if let Some(fields) = extra
            .as_object_mut()
            .and_then(|extra| extra.remove("provider"))
        {
            merge(&mut config["providers"][0], fields);
        }
        merge(&mut config, extra);
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
            let keys = self.config.initial_keys();
            let mut environment = Environment::new(&self.config, &keys, UnixSeconds(NOW))
                .with_proofs(ProofEnvironment {
                    nonce_key: environment.nonce_key,
                    replay: environment.replay,
                });
            environment.cache = cache;
            decide(Input::new(RequestView::new(&headers)), environment)
        }
    }

    /// A proof for the test request by a key the token is not bound to.
    fn thief_proof(token: &str, jti: &str) -> String {
        SigningKey::generate(Alg::Es256, None)
            .unwrap()
            .dpop_proof(&ProofRequest {
                method: "GET",
                url: "https://api.example/orders",
                access_token: Some(token),
                nonce: None,
                iat: NOW,
                jti,
            })
            .unwrap()
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
            Outcome::Reply(_) => panic!("answered: {}", decision.reason),
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
        let stolen = thief_proof(&token, "p3");
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

    fn refusal_text(decision: &Decision) -> (u16, String) {
        (decision.status(), challenge(decision))
    }

    #[test]
    fn rfc9449_7_2_and_rfc8705_3_a_binding_the_provider_does_not_check_refuses_the_token() {
        let setup = setup("off", json!({}));
        let replay = MemoryReplayGuard::default();
        let env = without_nonces(&replay);
        let unchecked = "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"token is bound to a key or certificate this resource does not check\"";
        for cnf in [
            json!({"jkt": setup.client_key.thumbprint().unwrap()}),
            json!({"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}),
            json!({"jwk": setup.client_key.public_jwk()}),
            json!({"kid": "k1"}),
            json!({"jkt": "x", "other": 1}),
        ] {
            let token = setup.token(Some(cnf.clone()));
            let decision = setup.decide(&format!("Bearer {token}"), &[], None, &env);
            assert_eq!(
                refusal_text(&decision),
                (401, unchecked.to_owned()),
                "{cnf}"
            );
        }
        let malformed = "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"token cnf claim is malformed\"";
        for cnf in [
            json!("jkt"),
            json!(["jkt"]),
            json!({}),
            json!(null),
            json!(1),
            json!({"jkt": 1}),
            json!({"jkt": ""}),
            json!({"jkt": ["a"]}),
            json!({"x5t#S256": null}),
        ] {
            let token = setup.token(Some(cnf.clone()));
            let decision = setup.decide(&format!("Bearer {token}"), &[], None, &env);
            assert_eq!(
                refusal_text(&decision),
                (401, malformed.to_owned()),
                "{cnf}"
            );
        }
        // The checks that are on still apply when a token also has other methods.
        let dpop = setup_with_opt_out("optional", false);
        let token = dpop.token(Some(
            json!({"jkt": dpop.client_key.thumbprint().unwrap(), "x5t#S256": "abc"}),
        ));
        let proof = dpop.proof(&token, "both", None);
        let decision = dpop.decide(&format!("DPoP {token}"), &[&proof], None, &env);
        assert_eq!(decision.status(), 401);
        assert!(
            challenge(&decision).contains("does not check"),
            "{}",
            challenge(&decision)
        );
    }

    fn setup_with_opt_out(dpop: &str, opt_out: bool) -> Setup {
        setup(
            dpop,
            json!({"provider": {"insecure_accept_unchecked_binding": opt_out}}),
        )
    }

    #[test]
    fn the_loudly_named_opt_out_accepts_unchecked_bindings_as_bearer_and_is_warned_about() {
        let setup = setup_with_opt_out("off", true);
        assert!(setup
            .config
            .warnings
            .iter()
            .any(|warning| warning.path == "providers[0].insecure_accept_unchecked_binding"));
        let replay = MemoryReplayGuard::default();
        let env = without_nonces(&replay);
        let token = setup.bound_token();
        assert!(setup
            .decide(&format!("Bearer {token}"), &[], None, &env)
            .is_allowed());
        // Malformed confirmations stay refused.
        let token = setup.token(Some(json!({"jkt": 7})));
        assert_eq!(
            setup
                .decide(&format!("Bearer {token}"), &[], None, &env)
                .status(),
            401
        );
        // Checked bindings stay checked: with dpop on, a bound token still needs its proof.
        let checked = setup_with_opt_out("optional", true);
        let token = checked.bound_token();
        assert_eq!(
            checked
                .decide(&format!("Bearer {token}"), &[], None, &env)
                .status(),
            401
        );
        assert!(!setup_with_opt_out("off", false)
            .config
            .warnings
            .iter()
            .any(|warning| warning.path.contains("insecure_accept_unchecked_binding")));
    }

    #[test]
    fn proofs_of_refused_requests_are_not_recorded_so_they_fill_nothing() {
        // Alice's token is valid but the only rule is for Bob: 403.
        let setup = setup(
            "required",
            json!({"rules": [{"match": {"prefix": "/"}, "when": {"claim": "sub", "equals": "bob"}}]}),
        );
        let replay = CountingGuard::default();
        let env = ProofEnvironment {
            nonce_key: None,
            replay: &replay,
        };
        let token = setup.bound_token();
        let dpop = format!("DPoP {token}");
        let proof = setup.proof(&token, "refused", None);
        for _ in 0..3 {
            assert_eq!(setup.decide(&dpop, &[&proof], None, &env).status(), 403);
        }
        assert_eq!(replay.calls.get(), 0);
        // An allowed request's proof is recorded (and then replayed).
        let allowed = setup_with_rules_allowing_alice();
        let token = allowed.bound_token();
        let dpop = format!("DPoP {token}");
        let proof = allowed.proof(&token, "allowed", None);
        assert!(allowed.decide(&dpop, &[&proof], None, &env).is_allowed());
        assert_eq!(replay.calls.get(), 1);
        assert_eq!(allowed.decide(&dpop, &[&proof], None, &env).status(), 401);
    }

    /// A record that counts what it is asked to record.
    #[derive(Default)]
    struct CountingGuard {
        inner: MemoryReplayGuard,
        calls: std::cell::Cell<usize>,
    }

    impl ReplayGuard for CountingGuard {
        fn first_use(
            &self,
            id: crate::dpop::ProofId,
            expires_at: i64,
            now: UnixSeconds,
        ) -> Result<(), ReplayError> {
            self.calls.set(self.calls.get() + 1);
            self.inner.first_use(id, expires_at, now)
        }
    }

    fn setup_with_rules_allowing_alice() -> Setup {
        setup(
            "required",
            json!({"rules": [{"match": {"prefix": "/"}, "when": {"claim": "sub", "equals": "alice"}}]}),
        )
    }

    #[test]
    fn rfc9449_7_1_a_proof_by_another_key_is_an_invalid_key_binding_checked_before_the_signature() {
        let setup = setup("required", json!({}));
        let replay = MemoryReplayGuard::default();
        let env = without_nonces(&replay);
        let token = setup.bound_token();
        let stolen = thief_proof(&token, "t");
        // A garbage signature under the thief's key: the key is compared first.
        let (signed, _) = stolen.rsplit_once('.').unwrap();
        let forged = format!("{signed}.AAAA");
        for proof in [stolen, forged] {
            let decision = setup.decide(&format!("DPoP {token}"), &[&proof], None, &env);
            assert_eq!(
                refusal_text(&decision),
                (401, "DPoP realm=\"api\", error=\"invalid_token\", error_description=\"DPoP proof key does not match the token binding\", algs=\"ES256 ES384 ES512 EdDSA RS256 PS256\"".to_owned())
            );
        }
    }
}
