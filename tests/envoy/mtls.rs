//! Certificate-bound access tokens (RFC 8705) through a real Envoy: a TLS listener that
//! asks for client certificates, a CA and certificates made at test time (openssl), tokens
//! whose `cnf.x5t#S256` is a client certificate's SHA-256 thumbprint. The right certificate
//! passes; another certificate (same CA), no certificate, and a token without `cnf` under
//! `required` are refused by claimgate; with `require_client_certificate` Envoy itself
//! refuses a connection without one.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support;
use crate::support::{Envoy, EnvoyOptions, ListenerTls};
use claimgate::dpop::sha256_base64url;
use claimgate::jwks::Alg;
use claimgate::mint::SigningKey;
use serde_json::json;

const ISSUER: &str = "https://idp.example/";
const AUDIENCE: &str = "https://api.example";

/// A CA, a server certificate for 127.0.0.1 and two client certificates, in a fresh
/// directory.
struct Pki {
    dir: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Pki {
    fn new() -> Pki {
        let dir = std::env::temp_dir().join(format!("claimgate-mtls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .unwrap();
        std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=claimgate test CA",
        ]);
        openssl(&dir, &ca);
        for (name, ext) in [
            ("server", "server.ext"),
            ("alice", "client.ext"),
            ("mallory", "client.ext"),
        ] {
            let key = format!("{name}.key");
            let csr = format!("{name}.csr");
            let pem = format!("{name}.pem");
            let subject = format!("/CN={name}");
            let mut request = vec!["req"];
            request.extend(ec);
            request.extend(["-keyout", &key, "-out", &csr, "-subj", &subject]);
            openssl(&dir, &request);
            openssl(
                &dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    &pem,
                    "-days",
                    "1",
                    "-extfile",
                    ext,
                ],
            );
        }
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The `cnf.x5t#S256` of a certificate: base64url SHA-256 of its DER.
    fn thumbprint(&self, name: &str) -> String {
        let output = Command::new("openssl")
            .args(["x509", "-in", &format!("{name}.pem"), "-outform", "DER"])
            .current_dir(&self.dir)
            .output()
            .unwrap();
        assert!(output.status.success());
        sha256_base64url(&output.stdout)
    }

    fn listener(&self, require_client_certificate: bool) -> ListenerTls {
        ListenerTls {
            certificate: self.path("server.pem"),
            private_key: self.path("server.key"),
            client_ca: self.path("ca.pem"),
            require_client_certificate,
        }
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One HTTPS request with curl, with `client` (a certificate name) or none; the status
/// (0 when the TLS handshake failed) and the `WWW-Authenticate` header.
fn https(pki: &Pki, envoy: &Envoy, client: Option<&str>, token: &str) -> (u16, String) {
    let mut command = Command::new("curl");
    command
        .args(["-s", "-i", "--max-time", "10", "--cacert"])
        .arg(pki.path("ca.pem"))
        .args(["-H", &format!("authorization: Bearer {token}")]);
    if let Some(client) = client {
        command
            .arg("--cert")
            .arg(pki.path(&format!("{client}.pem")))
            .arg("--key")
            .arg(pki.path(&format!("{client}.key")));
    }
    let output = command
        .arg(format!("https://127.0.0.1:{}/orders", envoy.port))
        .output()
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let status = text
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let challenge = text
        .lines()
        .find_map(|line| line.strip_prefix("www-authenticate: "))
        .unwrap_or_default()
        .trim()
        .to_owned();
    (status, challenge)
}

fn config(issuer: &SigningKey, binding: &str) -> String {
    json!({
        "realm": "api",
        "providers": [{
            "name": "idp", "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["ES256"],
            "jwks": {"inline": {"keys": [issuer.public_jwk()]}},
            "mtls_binding": binding
        }],
        "rules": [{"match": {"prefix": "/"}, "access": "authenticated"}]
    })
    .to_string()
}

/// A token signed by PyJWT (an independent JOSE library) with the issuer's private key,
/// bound to a certificate's thumbprint when given.
fn token(issuer: &SigningKey, bound_to: Option<&str>) -> String {
    let mut claims = support::tokens::claims(ISSUER, AUDIENCE, json!({"sub": "alice"}));
    if let Some(thumbprint) = bound_to {
        claims["cnf"] = json!({"x5t#S256": thumbprint});
    }
    support::pyjwt::sign(&issuer.private_jwk(), &claims)
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn certificate_bound_tokens_pass_only_over_a_connection_with_that_certificate() {
    let pki = Pki::new();
    let issuer = SigningKey::generate(Alg::Es256, Some("idp")).unwrap();
    let bound = token(&issuer, Some(&pki.thumbprint("alice")));
    let unbound = token(&issuer, None);
    // Certificates requested, not required by the handshake: claimgate decides.
    let options = EnvoyOptions {
        tls: Some(pki.listener(false)),
        ..EnvoyOptions::default()
    };
    let envoy = Envoy::start_with(&config(&issuer, "required"), options).unwrap();
    assert_eq!(
        https(&pki, &envoy, Some("alice"), &bound).0,
        200,
        "{}",
        envoy.log()
    );
    for (case, client, token, description) in [
        (
            "another certificate",
            Some("mallory"),
            &bound,
            "token is bound to another client certificate",
        ),
        (
            "no certificate",
            None,
            &bound,
            "token is bound to a client certificate; present it",
        ),
        (
            "a token without cnf",
            Some("alice"),
            &unbound,
            "a certificate-bound token is required",
        ),
    ] {
        let (status, challenge) = https(&pki, &envoy, client, token);
        assert_eq!(status, 401, "{case}");
        assert!(
            challenge.starts_with("Bearer realm=\"api\", error=\"invalid_token\""),
            "{case}: {challenge}"
        );
        assert!(challenge.contains(description), "{case}: {challenge}");
    }
    drop(envoy);

    // Optional binding: unbound tokens pass as before, bound ones still need their
    // certificate.
    let options = EnvoyOptions {
        tls: Some(pki.listener(false)),
        ..EnvoyOptions::default()
    };
    let envoy = Envoy::start_with(&config(&issuer, "optional"), options).unwrap();
    assert_eq!(https(&pki, &envoy, None, &unbound).0, 200);
    assert_eq!(https(&pki, &envoy, Some("mallory"), &bound).0, 401);
    assert_eq!(https(&pki, &envoy, Some("alice"), &bound).0, 200);
    drop(envoy);

    // A listener that requires client certificates: no certificate, no connection.
    let options = EnvoyOptions {
        tls: Some(pki.listener(true)),
        ..EnvoyOptions::default()
    };
    let envoy = Envoy::start_with(&config(&issuer, "required"), options).unwrap();
    assert_eq!(https(&pki, &envoy, Some("alice"), &bound).0, 200);
    assert_eq!(https(&pki, &envoy, None, &bound).0, 0);
}
