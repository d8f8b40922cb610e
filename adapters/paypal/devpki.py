"""A local stand-in for PayPal's certificates, so cert mode works offline in development.

``write_dev_pki`` makes a private root, a leaf certificate naming a
sandbox paypal.com host and its signing key. The gateway trusts only that
root in the development configuration; ``paysieve simulate`` signs with the
key. Nothing here is used by a production endpoint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEV_CERT_NAME: Final = "CERT-dev"
DEV_CERT_URL: Final = f"https://api.sandbox.paypal.com/v1/notifications/certs/{DEV_CERT_NAME}"
DEV_CERT_HOST: Final = "messageverificationcerts.sandbox.paypal.com"


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: rsa.RSAPrivateKey

    def cert_pem(self) -> bytes:
        """Return the certificate as PEM."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        """Return the private key as unencrypted PKCS#8 PEM."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "paysieve development"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_ca(
    common_name: str,
    *,
    issuer: Issued | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> Issued:
    """Return a CA certificate, self-signed unless an issuer is given."""
    now = datetime.now(UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = _name(common_name)
    signer_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), False
        )
    return Issued(builder.sign(signer_key, hashes.SHA256()), key)


def make_leaf(
    issuer: Issued,
    names: list[str],
    *,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> Issued:
    """Return a leaf certificate for DNS names, as PayPal's message-verification cert is."""
    now = datetime.now(UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), False
        )
        .sign(issuer.key, hashes.SHA256())
    )
    return Issued(cert, key)


@dataclass(frozen=True)
class DevPki:
    """Where the development trust root, certificate cache and signing key were written."""

    trust_roots: Path
    cert_cache_dir: Path
    signing_key: Path


def write_dev_pki(directory: Path) -> DevPki:
    """Write a fresh root, a leaf cert pre-seeded for DEV_CERT_URL and its key under directory."""
    root = make_ca("paysieve development PayPal root")
    leaf = make_leaf(root, [DEV_CERT_HOST])
    certs = directory / "certs"
    certs.mkdir(parents=True, exist_ok=True)
    roots_path = directory / "trust-roots.pem"
    roots_path.write_bytes(root.cert_pem())
    (certs / f"{DEV_CERT_NAME}.pem").write_bytes(leaf.cert_pem())
    key_path = directory / "signing-key.pem"
    # The key signs simulated deliveries: readable by this user only.
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(leaf.key_pem())
    return DevPki(trust_roots=roots_path, cert_cache_dir=certs, signing_key=key_path)
