"""Generated protobuf/gRPC stubs for entrel.v1 (built from proto/ by `make proto`)."""

try:
    from entrel.v1 import relevance_pb2, relevance_pb2_grpc
except ImportError as exc:  # pragma: no cover - only on a checkout that skipped `make proto`
    raise ImportError(
        "entrel's gRPC stubs are missing: run `make proto` (or `python proto/generate.py`) to generate them from proto/"
    ) from exc

__all__ = ["relevance_pb2", "relevance_pb2_grpc"]
