"""Shared PayPal test helpers: a test PKI made at test time and endpoint tables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
