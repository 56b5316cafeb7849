"""entrel over gRPC as a load target: prebuilt requests, replies read from the response metadata."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import grpc

from entrel.bench.stats import Reply
from entrel.bench.workload import BenchRequest
from entrel.v1 import relevance_pb2 as pb
from entrel.v1 import relevance_pb2_grpc as pb_grpc

__all__ = ["GrpcTarget"]


def _reply(response: pb.ScoreItemsResponse) -> Reply:
    meta = response.metadata
    return Reply("OK", meta.total_ms, meta.cache_hits, meta.cache_misses, meta.live_scored_pairs, meta.prior_pairs)


class GrpcTarget:
    """Sends request ``i % len(requests)`` to one server; one channel shared by every client thread."""

    def __init__(self, address: str, requests: Sequence[BenchRequest], timeout_s: float) -> None:
        # Built once, so the load generator spends its CPU on sending, not on protobuf.
        self._requests = [
            pb.ScoreItemsRequest(query=r.query, items=[pb.ItemRef(item_id=i) for i in r.item_ids]) for r in requests
        ]
        self._timeout_s = timeout_s
        self._channel = grpc.insecure_channel(address)
        self._stub = pb_grpc.RelevanceStub(self._channel)

    def call(self, index: int) -> Reply:
        try:
            return _reply(self._stub.ScoreItems(self._requests[index % len(self._requests)], timeout=self._timeout_s))
        except grpc.RpcError as exc:
            return Reply(exc.code().name)

    def send(self, index: int, on_reply: Callable[[Reply], None]) -> None:
        future = self._stub.ScoreItems.future(self._requests[index % len(self._requests)], timeout=self._timeout_s)

        def finished(f: grpc.Future) -> None:
            error = f.exception()
            if error is None:
                on_reply(_reply(f.result()))
            else:  # an RPC's error is also its Call, which holds the status
                on_reply(Reply(error.code().name if isinstance(error, grpc.Call) else "UNKNOWN"))

        future.add_done_callback(finished)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> GrpcTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
