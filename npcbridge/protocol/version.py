"""Protocol version negotiation."""

from __future__ import annotations

from .errors import ErrorCode, ProtocolError

#: the version this server speaks first, and every version it speaks
PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = (1,)


def check_version(requested: int) -> int:
    """Return the version to speak, or raise ``unsupported_protocol`` listing the supported ones
    (in the message and as the ``supported`` field; the requested number is not echoed)."""
    if requested in SUPPORTED_VERSIONS:
        return requested
    supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
    exc = ProtocolError(
        ErrorCode.UNSUPPORTED_PROTOCOL,
        f"field 'protocol': this version is not supported; supported versions: {supported}",
        retryable=False,
        refused="hello",
    )
    exc.fields["supported"] = list(SUPPORTED_VERSIONS)
    raise exc
