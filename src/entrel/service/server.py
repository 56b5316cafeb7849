"""Assembles and runs the gRPC server: model, snapshot watcher, batcher, overrides, health, reflection, admin, TLS and tokens."""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from entrel.cache import SnapshotReader, SnapshotStore
from entrel.cache.misslog import MissLogWriter
from entrel.config import Settings
from entrel.overrides import OverrideStore, OverrideTable
from entrel.scoring import CrossEncoderScorer, Scorer, TakingTurns, TextEncoder
from entrel.service import metrics
from entrel.service.access import AccessPolicy, Tokens
from entrel.service.admin import ADMIN_SERVICE_NAME, AdminServicer
from entrel.service.auth import BearerTokenInterceptor, authorization_of
from entrel.service.batcher import MicroBatcher
from entrel.service.engine import RelevanceEngine
from entrel.service.grpc_service import SERVICE_NAME, RelevanceServicer, add_to_server
from entrel.service.snapshots import SnapshotWatcher
from entrel.service.stats import ServingStats
from entrel.service.tls import server_credentials
from entrel.v1 import admin_pb2_grpc

__all__ = ["RelevanceServer", "SERVICE_NAME"]

log = logging.getLogger(__name__)

_MAX_BATCH_PAIRS = 128
# Threads of a separate admin server: its calls are few and short.
_ADMIN_WORKERS = 2


def _listen(server: grpc.Server, address: str, credentials: grpc.ServerCredentials | None) -> int:
    """Bind `address` (TLS when `credentials`); the port bound (address may ask for port 0)."""
    port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {address} (in use?)")
    return port


class RelevanceServer:
    """A running entrel server. ``start()``, then ``wait()`` or ``stop()``.

    Health reports NOT_SERVING until the model is warm and a snapshot is
    open; calls are still answered meanwhile, every pair scored live.
    """

    def __init__(self, settings: Settings, scorer: Scorer | None = None) -> None:
        self.settings = settings
        cfg = settings.server
        # Tokens and certificates are read first: a missing file stops start-up with one line, before any thread starts.
        policy = AccessPolicy(Tokens.from_settings(settings.auth))
        interceptor = BearerTokenInterceptor(policy, cfg.bad_request_log_interval_s)
        credentials = server_credentials(settings.tls)
        self.scorer = scorer if scorer is not None else CrossEncoderScorer(settings.model)
        # The cross-encoder and the similarity encoder take turns on the CPU (see TextEncoder).
        compute_lock = threading.Lock()
        self.batcher = MicroBatcher(
            TakingTurns(self.scorer, compute_lock), _MAX_BATCH_PAIRS, cfg.batch_wait_ms / 1000, cfg.queue_capacity_pairs
        )
        self.miss_log = (
            MissLogWriter(
                settings.miss_log_dir,
                window_s=cfg.miss_log_window_s,
                file_bytes=int(cfg.miss_log_file_mb * 2**20),
                total_bytes=int(cfg.miss_log_total_mb * 2**20),
                on_drop=lambda reason, amount: metrics.MISS_LOG_DROPPED.labels(reason).inc(amount),
            )
            if cfg.log_misses
            else None
        )
        self.health = health.HealthServicer()
        self._set_health(False)
        self.watcher = SnapshotWatcher(
            SnapshotStore(settings.snapshot_root),
            self.scorer.fingerprint,
            cfg.reload_interval_s,
            on_change=self._snapshot_changed,
        )
        self.encoder = (
            TextEncoder(settings.similarity, getattr(self.scorer, "device", "cpu"), compute_lock)
            if settings.similarity.weight > 0
            else None
        )
        self.overrides = OverrideTable(
            OverrideStore.open(settings.overrides_dir, settings.overrides.map_size_mb), settings.overrides.poll_interval_s
        )
        self.engine = RelevanceEngine(
            settings, self.scorer.fingerprint, self.watcher, self.batcher, self.miss_log, self.encoder, self.overrides
        )
        self.stats = ServingStats()
        options = [("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", cfg.max_request_bytes)]
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=cfg.max_workers, thread_name_prefix="entrel-rpc"),
            interceptors=[interceptor],
            options=options,
        )
        add_to_server(RelevanceServicer(self.engine, self.stats), self._server)
        admin = AdminServicer(
            self.watcher,
            self.scorer.fingerprint,
            self.stats,
            queue_depth=self.batcher.pending,
            serving=lambda: self.watcher.current() is not None and not self._stopping.is_set(),
            overrides=self.overrides,
            principal=lambda context: policy.principal(authorization_of(context.invocation_metadata())),
            max_query_chars=cfg.max_query_chars,
        )
        # The admin service on its own port has its own threads: it answers while scoring is saturated.
        self._admin_server = (
            grpc.server(
                futures.ThreadPoolExecutor(max_workers=_ADMIN_WORKERS, thread_name_prefix="entrel-admin"),
                interceptors=[interceptor],
                options=options,
            )
            if cfg.admin_address
            else None
        )
        admin_pb2_grpc.add_AdminServicer_to_server(admin, self._admin_server or self._server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        services = [SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME]
        reflection.enable_server_reflection((*services, *([] if self._admin_server else [ADMIN_SERVICE_NAME])), self._server)
        self.port = _listen(self._server, f"{cfg.host}:{cfg.port}", credentials)
        self.admin_port = self.port
        if self._admin_server is not None:
            reflection.enable_server_reflection((ADMIN_SERVICE_NAME, reflection.SERVICE_NAME), self._admin_server)
            self.admin_port = _listen(self._admin_server, cfg.admin_address, credentials)
        self.tls = credentials is not None
        self._stopping = threading.Event()
        self._stopped = threading.Event()

    def _set_health(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", SERVICE_NAME):
            self.health.set(name, status)

    def _snapshot_changed(self, reader: SnapshotReader | None) -> None:
        self.engine.prepare(reader)
        self._set_health(reader is not None)

    def warm_up(self) -> None:
        """One forward pass, so the first request does not pay for lazy initialisation."""
        started = time.perf_counter()
        self.scorer.score([("warm up", "product type: chair")])
        if self.encoder is not None:
            self.encoder.encode(["warm up"])
        log.info("model warm", extra={"seconds": round(time.perf_counter() - started, 3)})

    def start(self) -> RelevanceServer:
        self.warm_up()
        self.watcher.start()
        if self.settings.server.metrics_port:
            metrics.serve_metrics(self.settings.server.metrics_port, self.settings.server.host)
        self._server.start()
        if self._admin_server is not None:
            self._admin_server.start()
        # Everything loaded so far (model, tables, vocabularies: ~500k objects)
        # lives as long as the server; a full collection over it stalls every
        # thread for ~0.5 s, so it moves out of the collector's sight.
        gc.collect()
        gc.freeze()
        log.info(
            "serving",
            extra={
                "address": f"{self.settings.server.host}:{self.port}",
                "admin_port": self.admin_port,
                "tls": self.tls,
                "mutual_tls": bool(self.settings.tls.client_ca_file),
                "snapshot_id": (s.snapshot_id if (s := self.watcher.current()) else None),
                "model": self.scorer.fingerprint,
            },
        )
        return self

    def stop(self, grace: float | None = None) -> None:
        """Refuse new calls, let in-flight ones finish (up to `grace` seconds), release everything."""
        if self._stopping.is_set():
            self._stopped.wait()
            return
        self._stopping.set()
        self._set_health(False)
        grace = self.settings.server.grace_period_s if grace is None else grace
        if self._admin_server is not None:
            self._admin_server.stop(grace)
        self._server.stop(grace).wait()
        self.watcher.stop()
        self.batcher.close()
        self.engine.close()
        if self.miss_log is not None:
            self.miss_log.close()
        self._stopped.set()
        log.info("stopped")

    def wait(self) -> None:
        """Block until stopped; SIGTERM and SIGINT stop the server cleanly."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: threading.Thread(target=self.stop, daemon=True).start())
        # Wake up regularly: a signal handler only runs between bytecodes.
        while not self._stopped.wait(0.5):
            pass
