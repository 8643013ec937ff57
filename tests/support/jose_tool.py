"""Tokens, DPoP proofs and key thumbprints made with an independent JOSE stack (PyJWT on
`cryptography`), for the tests (through tests/support/pyjwt.rs): nothing here uses
claimgate's own signing, so the tests check claimgate against the standards' text, not
against itself.

Reads one JSON request on stdin and prints one JSON answer:
  {"op": "keys"}
      -> {"issuer": {"jwk": public JWK with kid, "pem": private PEM},
          "client": {"jwk": public JWK, "pem": private PEM, "jkt": RFC 7638 thumbprint}}
  {"op": "token", "pem": ..., "kid": ..., "claims": {...},
   "header": {extra header members, optional}}                       -> {"token": ...}
  {"op": "proof", "pem": ..., "claims": {...}, "token": ... or null,
   "header": {extra header members, optional}}                       -> {"proof": ...}
     (ath is the RFC 9449 §4.2 hash of "token" unless claims carry their own)
  {"op": "sign_all", "jwk": private JWK with alg (and kid), "claims": [{...}, ...]}
                                                                     -> {"tokens": [...]}
  {"op": "thumbprint", "jwk": {...}}                                 -> {"jkt": ...}
  {"op": "batch", "requests": [...]}                                 -> {"answers": [...]}
"""

import base64
import hashlib
import json
import sys

import jwt
from jwt.algorithms import get_default_algorithms
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(private_key) -> dict:
    numbers = private_key.public_key().public_numbers()
    size = (private_key.curve.key_size + 7) // 8
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url(numbers.x.to_bytes(size, "big")),
        "y": b64url(numbers.y.to_bytes(size, "big")),
    }


def thumbprint(jwk: dict) -> str:
    """RFC 7638 §3: the required members in lexicographic order, no white space."""
    required = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}
    members = {name: jwk[name] for name in required[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


def new_key() -> dict:
    private_key = ec.generate_private_key(ec.SECP256R1())
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    jwk = public_jwk(private_key)
    return {"jwk": jwk, "pem": pem, "jkt": thumbprint(jwk)}


def answer(request: dict) -> dict:
    op = request["op"]
    if op == "keys":
        issuer = new_key()
        issuer["jwk"] = dict(issuer["jwk"], kid="conformance-issuer", alg="ES256", use="sig")
        return {"issuer": issuer, "client": new_key()}
    if op == "token":
        headers = {"kid": request["kid"]}
        headers.update(request.get("header") or {})
        token = jwt.encode(request["claims"], request["pem"], algorithm="ES256", headers=headers)
        return {"token": token}
    if op == "proof":
        private_key = serialization.load_pem_private_key(request["pem"].encode(), None)
        header = {"typ": "dpop+jwt", "jwk": public_jwk(private_key)}
        header.update(request.get("header") or {})
        claims = dict(request["claims"])
        if request.get("token") is not None and "ath" not in claims:
            claims["ath"] = b64url(hashlib.sha256(request["token"].encode("ascii")).digest())
        return {"proof": jwt.encode(claims, private_key, algorithm="ES256", headers=header)}
    if op == "sign_all":
        key = dict(request["jwk"])
        key.pop("_comment", None)
        alg = key["alg"]
        signing_key = get_default_algorithms()[alg].from_jwk(json.dumps(key))
        tokens = [
            jwt.encode(claims, signing_key, algorithm=alg, headers={"kid": key.get("kid")})
            for claims in request["claims"]
        ]
        return {"tokens": tokens}
    if op == "thumbprint":
        return {"jkt": thumbprint(request["jwk"])}
    if op == "batch":
        return {"answers": [answer(item) for item in request["requests"]]}
    raise SystemExit(f"unknown op {op!r}")


if __name__ == "__main__":
    json.dump(answer(json.load(sys.stdin)), sys.stdout)
