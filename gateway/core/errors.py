"""One error hierarchy, mapped to HTTP in one place (gateway.web.http)."""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway answers with a JSON body."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class BadRequest(GatewayError):
    status = 400
    code = "bad_request"


class VerificationError(BadRequest):
    """The delivery's signature, timestamp or required headers do not verify."""

    code = "verification_failed"


class MalformedBody(BadRequest):
    code = "malformed_body"


class CardDataRefused(BadRequest):
    """A value about to be stored holds what looks like card data; nothing was stored."""

    code = "card_data_refused"


class ReplayRefused(VerificationError):
    """Signed headers already seen with a different body: a forged or replayed delivery."""

    code = "replay_refused"


class NotFound(GatewayError):
    status = 404
    code = "not_found"


class Conflict(GatewayError):
    """The request names something that exists already (a subscriber's name)."""

    status = 409
    code = "conflict"


class PayloadTooLarge(GatewayError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(GatewayError):
    status = 415
    code = "unsupported_media_type"


class Unauthorized(GatewayError):
    status = 401
    code = "unauthorized"


class Forbidden(GatewayError):
    status = 403
    code = "forbidden"


class StorageUnavailable(GatewayError):
    """Storage cannot take the write now; the provider should retry."""

    status = 503
    code = "storage_unavailable"
    retry_after = 5


class UpstreamUnavailable(GatewayError):
    """A provider service needed for verification cannot be reached; retry later."""

    status = 503
    code = "upstream_unavailable"
    retry_after = 30


class ConfigurationError(Exception):
    """The settings cannot start a gateway; raised at startup, never answered."""
