"""Request decoding that cannot fail inside gRPC.

grpcio answers a request whose deserializer raises with INTERNAL and logs a
traceback per call, so random bytes or invalid UTF-8 in a string field
would look like a server fault and flood the log. The decoder here returns
an :class:`Undecodable` instead, and the servicer answers INVALID_ARGUMENT.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from google.protobuf.message import Message

__all__ = ["Undecodable", "lenient_decoder"]

M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class Undecodable:
    """A request body that is not a valid message of the expected type."""

    reason: str


def lenient_decoder(message_type: type[M]) -> Callable[[bytes], M | Undecodable]:
    """A gRPC request deserializer for `message_type` that never raises."""
    name = message_type.DESCRIPTOR.full_name

    def decode(body: bytes) -> M | Undecodable:
        try:
            return message_type.FromString(body)
        except Exception as exc:  # any failure here is the body's fault: DecodeError, bad UTF-8, ...
            why = f"bad protobuf or invalid UTF-8 in a string: {type(exc).__name__}"
            return Undecodable(f"request body is not a valid {name} ({why})")

    return decode
