"""The bearer-token check in front of every service, as a gRPC server interceptor.

It runs before a request body is decoded, so a refused call costs no
parsing and reaches no servicer. What each method needs and what each
token grants is `access.AccessPolicy`'s call; the status comes from the
one error table (`grpc_service.status_of`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import grpc

from entrel.logs import LogThrottle
from entrel.service import metrics
from entrel.service.access import AccessPolicy
from entrel.service.grpc_service import status_of

__all__ = ["BearerTokenInterceptor", "authorization_of"]

log = logging.getLogger(__name__)


def authorization_of(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """The "authorization" value of a call's metadata, or None."""
    for key, value in metadata or ():
        if key == "authorization":
            return value if isinstance(value, str) else None
    return None


def _refusal(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, details: str) -> grpc.RpcMethodHandler:
    """A handler of the same shape as `handler` that only aborts with `code`."""

    def abort(_request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(code, details)

    make: Callable[..., grpc.RpcMethodHandler]
    if handler.request_streaming and handler.response_streaming:
        make = grpc.stream_stream_rpc_method_handler
    elif handler.request_streaming:
        make = grpc.stream_unary_rpc_method_handler
    elif handler.response_streaming:
        make = grpc.unary_stream_rpc_method_handler
    else:
        make = grpc.unary_unary_rpc_method_handler
    return make(abort)


class BearerTokenInterceptor(grpc.ServerInterceptor):
    """Lets a call through when its "authorization: Bearer <token>" metadata suffices for its method."""

    def __init__(self, policy: AccessPolicy, log_interval_s: float = 10.0) -> None:
        self.policy = policy
        self._refused = LogThrottle(log, log_interval_s)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        try:
            self.policy.check(method, authorization_of(handler_call_details.invocation_metadata))
        except Exception as exc:
            handler = continuation(handler_call_details)
            if handler is None:  # no such method: UNIMPLEMENTED, as without the interceptor
                return None
            code = status_of(exc)
            metrics.AUTH_REFUSED.labels(code.name).inc()
            # Causes from a fixed set (code x method of a registered service), never request text.
            self._refused.warning(f"{code.name} {method}", "call refused", method=method, code=code.name)
            return _refusal(handler, code, str(exc))
        return continuation(handler_call_details)
