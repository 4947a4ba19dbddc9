"""Protocol version negotiation."""

from __future__ import annotations

from .errors import ErrorCode, ProtocolError
from .messages import SUPPORTED_VERSIONS


def check_version(requested: int) -> int:
    """Return the version to speak, or raise ``unsupported_protocol`` naming the supported ones."""
    if requested in SUPPORTED_VERSIONS:
        return requested
    supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
    raise ProtocolError(
        ErrorCode.UNSUPPORTED_PROTOCOL,
        f"protocol {requested} is not supported; supported versions: {supported}",
        retryable=False,
    )
