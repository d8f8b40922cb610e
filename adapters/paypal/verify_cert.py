"""Offline PayPal verification: CRC32 + SHA256withRSA against PayPal's certificate.

The certificate named by ``PAYPAL-CERT-URL`` is only ever fetched over https
from PayPal's own API hosts, without redirects, under a size limit and a
timeout; it must chain to the configured trust roots, be valid now and name
a ``paypal.com`` host. Verified chains are cached in memory by URL (bounded)
and may be pre-seeded from a directory, so an air-gapped gateway never fetches.
A URL whose fetch or chain failed is remembered for FAILURE_SECONDS (bounded too):
a flood of deliveries naming it costs one outbound request a minute, not one each.
Fetches of URLs not seen before are capped at FETCHES_PER_MINUTE per endpoint; past
the cap a delivery is answered 503 (PayPal retries), never with a fetch.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time
import zlib
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import verification
from cryptography.x509.oid import NameOID

from gateway.core.errors import ConfigurationError, UpstreamUnavailable, VerificationError

# PayPal's REST API hosts, live and sandbox: the only places a certificate comes from.
CERT_HOSTS: Final = frozenset(
    {"api.paypal.com", "api-m.paypal.com", "api.sandbox.paypal.com", "api-m.sandbox.paypal.com"}
)
_CERT_PATH: Final = re.compile(r"/v1/notifications/certs/([A-Za-z0-9_.-]{1,128})")
# A PEM chain of a few certificates is a few kilobytes.
MAX_CERT_BYTES: Final = 64 * 1024
# (connect, read) seconds: a delivery must be answered well inside PayPal's own timeout.
FETCH_TIMEOUT: Final = (1.5, 1.5)
CACHE_SIZE: Final = 32
# How long a failed certificate URL answers with its failure without a new fetch.
FAILURE_SECONDS: Final = 60.0
# PayPal rotates its signing certificate rarely: a handful of new URLs a minute is plenty.
FETCHES_PER_MINUTE: Final = 10
AUTH_ALGO: Final = "SHA256withRSA"


def signed_message(
    transmission_id: str, transmission_time: str, webhook_id: str, body: bytes
) -> bytes:
    """Return the text PayPal signs: ids, time and the body's unsigned CRC32."""
    # zlib.crc32 is unsigned in Python 3, which is what PayPal signs.
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body)}".encode()


def cert_name(url: str) -> str:
    """Return the certificate's name (last path segment) of an allowed URL, else raise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise VerificationError("PAYPAL-CERT-URL is not a valid URL") from exc
    if parts.scheme != "https":
        raise VerificationError("PAYPAL-CERT-URL is not https")
    if parts.username is not None or parts.password is not None or port not in (None, 443):
        raise VerificationError("PAYPAL-CERT-URL is not a PayPal certificate URL")
    if parts.hostname not in CERT_HOSTS:
        raise VerificationError("PAYPAL-CERT-URL is not on a PayPal API host")
    match = _CERT_PATH.fullmatch(parts.path)
    if match is None or parts.query or parts.fragment:
        raise VerificationError("PAYPAL-CERT-URL is not a PayPal certificate URL")
    return match.group(1)


def load_trust_roots(source: str) -> list[x509.Certificate]:
    """Load the trust roots from a PEM bundle path (or ``certifi`` for its bundle)."""
    if source == "certifi":
        import certifi

        source = certifi.where()
    try:
        data = Path(source).read_bytes()
        roots = x509.load_pem_x509_certificates(data)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read PayPal trust roots from {source}") from exc
    if not roots:
        raise ConfigurationError(f"no certificates in PayPal trust roots {source}")
    return roots


def _paypal_names(leaf: x509.Certificate) -> list[str]:
    """Return the leaf's DNS names under paypal.com (SAN first, then the CN)."""
    names: list[str] = []
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names.extend(san.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        pass
    names.extend(str(a.value) for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME))
    return [
        n
        for n in names
        if (n.lower() == "paypal.com" or n.lower().endswith(".paypal.com")) and "*" not in n
    ]


@dataclass(frozen=True, slots=True)
class _Chain:
    leaf: x509.Certificate
    intermediates: tuple[x509.Certificate, ...]


class CertVerifier:
    """Verify PayPal deliveries offline for one endpoint."""

    def __init__(
        self,
        *,
        trust_roots: list[x509.Certificate],
        cache_dir: Path | None = None,
        fetch: bool = True,
        clock: Callable[[], datetime] | None = None,
        session: requests.Session | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = verification.Store(trust_roots)
        self._cache_dir = cache_dir
        self._fetch = fetch
        self._clock = clock or (lambda: datetime.now(UTC))
        self._session = session or requests.Session()
        self._cache: OrderedDict[str, _Chain] = OrderedDict()
        # URL -> (when it may be tried again, the error it failed with).
        self._failed: OrderedDict[str, tuple[float, VerificationError | UpstreamUnavailable]] = (
            OrderedDict()
        )
        self._monotonic = monotonic
        self._fetched: deque[float] = deque()
        self._lock = threading.Lock()

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> CertVerifier:
        """Build a verifier from an endpoint's options (trust_roots, cert_cache_dir, ...)."""
        roots = options.get("trust_roots")
        if not isinstance(roots, str) or not roots:
            raise ConfigurationError("PayPal cert verification needs trust_roots")
        cache_dir = options.get("cert_cache_dir")
        return cls(
            trust_roots=load_trust_roots(roots),
            cache_dir=Path(cache_dir) if isinstance(cache_dir, str) and cache_dir else None,
            fetch=bool(options.get("fetch_certs", True)),
        )

    def verify(
        self,
        raw_body: bytes,
        *,
        transmission_id: str,
        transmission_time: str,
        webhook_id: str,
        signature: str,
        cert_url: str,
        auth_algo: str,
    ) -> None:
        """Raise VerificationError unless PayPal's certificate signed this delivery."""
        if auth_algo != AUTH_ALGO:
            raise VerificationError("PAYPAL-AUTH-ALGO is not SHA256withRSA")
        try:
            sig = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise VerificationError("PAYPAL-TRANSMISSION-SIG is not base64") from exc
        chain = self._chain(cert_url)
        key = self._checked(chain).public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise VerificationError("PayPal certificate key is not RSA")
        message = signed_message(transmission_id, transmission_time, webhook_id, raw_body)
        try:
            key.verify(sig, message, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature as exc:
            raise VerificationError("signature does not match") from exc

    def _checked(self, chain: _Chain) -> x509.Certificate:
        """Return the leaf once its chain, validity and name are good right now."""
        # Checked on every use, not only when cached: a cached certificate expires too.
        now = self._clock()
        leaf = chain.leaf
        if now < leaf.not_valid_before_utc:
            raise VerificationError("PayPal certificate is not yet valid")
        if now > leaf.not_valid_after_utc:
            raise VerificationError("PayPal certificate has expired")
        names = _paypal_names(leaf)
        if not names:
            raise VerificationError("PayPal certificate does not name a paypal.com host")
        verifier = (
            verification.PolicyBuilder()
            .store(self._store)
            .time(now.replace(tzinfo=None))
            .max_chain_depth(4)
            .build_server_verifier(x509.DNSName(names[0]))
        )
        try:
            verifier.verify(leaf, list(chain.intermediates))
        except verification.VerificationError as exc:
            raise VerificationError("PayPal certificate does not chain to a trusted root") from exc
        return leaf

    def _chain(self, url: str) -> _Chain:
        """Return the certificate chain for a URL: cache, then cache_dir, then https."""
        name = cert_name(url)
        with self._lock:
            cached = self._cache.get(url)
            if cached is not None:
                self._cache.move_to_end(url)
                return cached
            failed = self._failed.get(url)
            if failed is not None and self._monotonic() < failed[0]:
                raise type(failed[1])(str(failed[1]))
        try:
            pem = self._seeded(name)
            if pem is None:
                if not self._fetch:
                    raise VerificationError("PayPal certificate is not in the local cache")
                self._count_fetch()
                pem = self._download(url)
            chain = _parse_chain(pem)
            # Only a chain that verifies now is cached, so a bad URL is never remembered as good.
            self._checked(chain)
        except _Throttled:
            raise
        except (VerificationError, UpstreamUnavailable) as exc:
            with self._lock:
                self._failed[url] = (self._monotonic() + FAILURE_SECONDS, exc)
                self._failed.move_to_end(url)
                while len(self._failed) > CACHE_SIZE:
                    self._failed.popitem(last=False)
            raise
        with self._lock:
            self._failed.pop(url, None)
            self._cache[url] = chain
            self._cache.move_to_end(url)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return chain

    def _count_fetch(self) -> None:
        """Count one outbound fetch; refuse it past FETCHES_PER_MINUTE (not cached as failed)."""
        with self._lock:
            now = self._monotonic()
            while self._fetched and self._fetched[0] <= now - 60:
                self._fetched.popleft()
            if len(self._fetched) >= FETCHES_PER_MINUTE:
                raise _Throttled("too many PayPal certificate fetches; retry later")
            self._fetched.append(now)

    def _seeded(self, name: str) -> bytes | None:
        if self._cache_dir is None:
            return None
        path = self._cache_dir / f"{name}.pem"
        try:
            return path.read_bytes()[: MAX_CERT_BYTES + 1]
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise UpstreamUnavailable("cannot read the PayPal certificate cache") from exc

    def _download(self, url: str) -> bytes:
        try:
            with self._session.get(
                url, timeout=FETCH_TIMEOUT, allow_redirects=False, stream=True
            ) as response:
                if 300 <= response.status_code < 400:
                    raise VerificationError("PayPal certificate URL redirects; not followed")
                if response.status_code >= 500 or response.status_code == 429:
                    raise UpstreamUnavailable("PayPal certificate host is unavailable")
                if response.status_code != 200:
                    raise VerificationError("PayPal certificate URL does not serve a certificate")
                body = bytearray()
                for chunk in response.iter_content(8192):
                    body.extend(chunk)
                    if len(body) > MAX_CERT_BYTES:
                        raise VerificationError("PayPal certificate is too large")
                return bytes(body)
        except requests.RequestException as exc:
            raise UpstreamUnavailable("PayPal certificate host is unreachable") from exc


class _Throttled(UpstreamUnavailable):
    """The fetch cap is reached: say so, without remembering the URL as failed."""


def _parse_chain(pem: bytes) -> _Chain:
    if len(pem) > MAX_CERT_BYTES:
        raise VerificationError("PayPal certificate is too large")
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise VerificationError("PayPal certificate is not PEM") from exc
    return _Chain(leaf=certs[0], intermediates=tuple(certs[1:]))
