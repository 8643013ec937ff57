//! Envoy's BoringSSL as the signature checker for new RS*/ES* tokens, through the
//! `verify_signature` foreign function, once the core's self-test
//! ([`crate::jwks::HostCrypto::probe`]) trusts it.

use std::rc::Rc;

use crate::jwks::{ForeignVerifier, HostCrypto, KeyRing};

use super::host::Host;
use super::stats::Counter;

/// The foreign function, counted in `claimgate.signatures.checked_by_envoy` (the
/// start-up self-test makes eight calls).
struct EnvoyCrypto {
    host: Rc<dyn Host>,
    calls: Counter,
}

impl ForeignVerifier for EnvoyCrypto {
    fn verify_signature(&self, arguments: &[u8]) -> Option<Vec<u8>> {
        self.calls.increment(self.host.as_ref());
        // Any failure reads as "no answer": the module then checks the signature itself.
        self.host
            .call_foreign_function("verify_signature", arguments)
            .ok()
            .map(Option::unwrap_or_default)
    }
}

/// Probes Envoy's signature checks and lets `ring` use the ones that pass the self-test.
pub fn install(host: &Rc<dyn Host>, ring: &mut KeyRing) {
    let calls = Counter::define(host.as_ref(), "claimgate.signatures.checked_by_envoy");
    let crypto = HostCrypto::probe(Box::new(EnvoyCrypto {
        host: Rc::clone(host),
        calls,
    }));
    let algorithms = crypto.algorithms();
    if algorithms.is_empty() {
        log::info!("claimgate: Envoy's verify_signature is missing or failed its self-test: every signature is checked in the module");
        return;
    }
    let names: Vec<&str> = algorithms.iter().map(|alg| alg.name()).collect();
    log::info!(
        "claimgate: {} signatures checked by Envoy's crypto library (self-test passed); others in the module",
        names.join(", ")
    );
    ring.set_host_crypto(Rc::new(crypto));
}
