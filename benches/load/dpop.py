"""DPoP proofs for the load harness: many fresh proofs (unique jti, iat now) by one ES256
client key for one access token and URL, signed with `cryptography` (the CLI mints one
proof per process, far too slow for tens of thousands)."""
import base64
import hashlib
import json
import os
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Client:
    def __init__(self, jwk_path):
        jwk = json.loads(open(jwk_path).read())
        self.key = ec.derive_private_key(int.from_bytes(unb64(jwk["d"]), "big"), ec.SECP256R1())
        public = {"kty": "EC", "crv": "P-256", "x": jwk["x"], "y": jwk["y"]}
        self.header = b64(json.dumps({"typ": "dpop+jwt", "alg": "ES256", "jwk": public},
                                     separators=(",", ":")).encode())

    def proofs(self, token, url, count, method="GET"):
        ath = b64(hashlib.sha256(token.encode()).digest())
        now = int(time.time())
        prefix = b64(os.urandom(9))
        out = []
        for index in range(count):
            claims = json.dumps({"jti": f"{prefix}-{index}", "htm": method, "htu": url, "iat": now, "ath": ath},
                                separators=(",", ":")).encode()
            signing_input = f"{self.header}.{b64(claims)}"
            r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
            out.append(f"{signing_input}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}")
        return out
