"""Interventions: operators' overrides of (query, entity) scores, kept in their own durable store.

An override says "for query Q (or every query, `*`), entity E scores S" or
"for query Q, entity type T is ignored" (it counts as neutral). They live
in a small LMDB beside the snapshots, so they survive snapshot swaps,
restarts and rollbacks, and every replica sharing the store picks up a
change within `overrides.poll_interval_s`.
"""

from entrel.overrides.drift import OverrideDrift
from entrel.overrides.model import (
    ANY_QUERY,
    InvalidOverride,
    Override,
    OverrideKey,
    OverrideNotFound,
    make_override,
    override_key,
    override_query,
    utc_now,
)
from entrel.overrides.store import OverrideStore
from entrel.overrides.table import OverrideLayer, OverrideTable, QueryOverrides

__all__ = [
    "ANY_QUERY",
    "InvalidOverride",
    "Override",
    "OverrideDrift",
    "OverrideKey",
    "OverrideLayer",
    "OverrideNotFound",
    "OverrideStore",
    "OverrideTable",
    "QueryOverrides",
    "make_override",
    "override_key",
    "override_query",
    "utc_now",
]
