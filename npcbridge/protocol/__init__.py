"""Protocol v1, sans-I/O: message models, canonical msgpack codec, error codes, version check.

This package imports neither asyncio nor websockets, so any transport (or a test) can use it.
"""

from .codec import (
    canonical,
    decode_client,
    decode_map,
    decode_server,
    encode,
    encode_reply_delta,
    pack,
    unpack,
)
from .errors import CloseCode, DecodeError, ErrorCode, ProtocolError
from .messages import (
    CLIENT_MESSAGES,
    PROTOCOL_VERSION,
    SERVER_MESSAGES,
    SUPPORTED_VERSIONS,
    Message,
    Persona,
)
from .version import check_version

__all__ = [
    "CLIENT_MESSAGES",
    "PROTOCOL_VERSION",
    "SERVER_MESSAGES",
    "SUPPORTED_VERSIONS",
    "CloseCode",
    "DecodeError",
    "ErrorCode",
    "Message",
    "Persona",
    "ProtocolError",
    "canonical",
    "check_version",
    "decode_client",
    "decode_map",
    "decode_server",
    "encode",
    "encode_reply_delta",
    "pack",
    "unpack",
]
