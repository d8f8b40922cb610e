"""Shared PayPal test helpers: a test PKI made at test time, endpoint tables, PayPal mocked."""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import responses
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from adapters.paypal.devpki import Issued, make_ca, make_leaf

API_BASE = "https://api-m.sandbox.paypal.com"
TOKEN_URL = API_BASE + "/v1/oauth2/token"
VERIFY_URL = API_BASE + "/v1/notifications/verify-webhook-signature"
CERT_URL = "https://api.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-test"
WEBHOOK_ID = "1JE4291016473214C"
CLIENT_ID = "AcTestClientId"
CLIENT_SECRET = "EcTestClientSecret"
LEAF_HOST = "messageverificationcerts.paypal.com"


@dataclass
class Pki:
    """A root, an intermediate and a PayPal-like leaf, with files written under a directory."""

    root: Issued
    intermediate: Issued
    leaf: Issued
    roots_path: Path
    key_path: Path

    def chain_pem(self, leaf: Issued | None = None) -> bytes:
        """Return leaf + intermediate as PayPal serves them at the cert URL."""
        return (leaf or self.leaf).cert_pem() + self.intermediate.cert_pem()


def make_pki(directory: Path) -> Pki:
    """Generate a fresh test PKI and write the trust roots and leaf key under directory."""
    directory.mkdir(parents=True, exist_ok=True)
    root = make_ca("Test Global Root G2")
    intermediate = make_ca("Test TLS RSA SHA256 2020 CA1", issuer=root)
    leaf = make_leaf(intermediate, [LEAF_HOST])
    roots_path = directory / "roots.pem"
    roots_path.write_bytes(root.cert_pem())
    key_path = directory / "leaf-key.pem"
    key_path.write_bytes(leaf.key_pem())
    return Pki(root, intermediate, leaf, roots_path, key_path)


def api_endpoint(pki: Pki, **extra: Any) -> dict[str, Any]:
    """Return an api-mode endpoint table (signing key only so tests can make headers)."""
    table: dict[str, Any] = {
        "provider": "paypal",
        "name": "default",
        "verify": "api",
        "webhook_id": WEBHOOK_ID,
        "api_base": API_BASE,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "dev_signing_key": str(pki.key_path),
        "dev_cert_url": CERT_URL,
    }
    table.update(extra)
    return table


def cert_endpoint(pki: Pki, **extra: Any) -> dict[str, Any]:
    """Return a cert-mode endpoint table trusting the test root."""
    table: dict[str, Any] = {
        "provider": "paypal",
        "name": "default",
        "verify": "cert",
        "webhook_id": WEBHOOK_ID,
        "trust_roots": str(pki.roots_path),
        "dev_signing_key": str(pki.key_path),
        "dev_cert_url": CERT_URL,
    }
    table.update(extra)
    return table


def paypal_verifies(pki: Pki) -> Callable[[Any], tuple[int, dict[str, str], bytes]]:
    """Return a verify-webhook-signature callback that checks signatures as PayPal does."""

    def callback(request: Any) -> tuple[int, dict[str, str], bytes]:
        body: bytes = request.body
        head, _, tail = body.partition(b',"webhook_event":')
        fields = orjson.loads(head + b"}")
        event_bytes = tail[:-1]
        message = (
            f"{fields['transmission_id']}|{fields['transmission_time']}|"
            f"{fields['webhook_id']}|{zlib.crc32(event_bytes)}"
        ).encode()
        key = pki.leaf.cert.public_key()
        assert isinstance(key, rsa.RSAPublicKey)
        try:
            key.verify(
                base64.b64decode(fields["transmission_sig"]),
                message,
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
            verdict = "SUCCESS"
        except InvalidSignature:
            verdict = "FAILURE"
        assert request.headers["Authorization"] == "Bearer A21AA-test"
        return 200, {}, orjson.dumps({"verification_status": verdict})

    return callback


def mock_paypal(servers: responses.RequestsMock, mode: str, pki: Pki) -> dict[str, Any]:
    """Mock PayPal's servers for one verification mode; return that mode's endpoint table.

    api mode: the token endpoint and a verify endpoint that checks CRC32 + RSA as PayPal
    does (so a CRC32-forged body verifies there too); cert mode: the certificate URL.
    """
    if mode == "api":
        servers.post(TOKEN_URL, json={"access_token": "A21AA-test", "expires_in": 32400})
        servers.add_callback(responses.POST, VERIFY_URL, callback=paypal_verifies(pki))
        return api_endpoint(pki)
    servers.get(CERT_URL, body=pki.chain_pem())
    return cert_endpoint(pki)
