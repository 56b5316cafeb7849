"""Readable tables of ScoreItems responses, for the CLI and the demo."""

from __future__ import annotations

from entrel.v1 import relevance_pb2 as pb

__all__ = ["render_explanation", "render_ranking"]

_SOURCE = {pb.SCORE_SOURCE_CACHED: "cached", pb.SCORE_SOURCE_LIVE: "live", pb.SCORE_SOURCE_PRIOR: "prior"}
_STATUS = {
    pb.ITEM_STATUS_OK: "ok",
    pb.ITEM_STATUS_UNKNOWN_ITEM: "unknown item",
    pb.ITEM_STATUS_NO_ENTITIES: "no entities",
    pb.ITEM_STATUS_DEGRADED: "degraded",
}


def _entity_line(item: pb.ItemScore) -> str:
    parts = []
    for e in item.entities:
        part = f"{e.type.replace('_', ' ')}: {e.text} {e.score:.2f} {_SOURCE.get(e.source, '?')}"
        if e.breaks_match:
            part += " ← breaks the match"
        parts.append(part)
    return " · ".join(parts)


def _metadata_line(meta: pb.ResponseMetadata) -> str:
    return (
        f"snapshot {meta.snapshot_id or '(none: live only)'} · model {meta.model_fingerprint} · t-norm {meta.tnorm} · "
        f"query {'cached' if meta.query_cached else 'not cached'} · hits {meta.cache_hits} · "
        f"misses {meta.cache_misses} (live {meta.live_scored_pairs}, prior {meta.prior_pairs}) · {meta.total_ms:.1f} ms"
    )


def render_ranking(query: str, response: pb.ScoreItemsResponse, limit: int | None = None) -> str:
    """Items best first, one line each, with their entities when the response has them."""
    ranked = sorted(response.items, key=lambda i: -i.score)[:limit]
    lines = [f'query: "{query}"', _metadata_line(response.metadata)]
    for rank, item in enumerate(ranked, 1):
        status = "" if item.status == pb.ITEM_STATUS_OK else f"  [{_STATUS.get(item.status, '?')}: {item.message}]"
        lines.append(f"{rank:>3}. {item.score:.3f}  {item.item_id}  {item.title[:70]}{status}")
        if item.entities:
            lines.append(f"       {_entity_line(item)}")
    return "\n".join(lines)


def render_explanation(query: str, response: pb.ScoreItemsResponse) -> str:
    """One table per item: every entity with its score, source and lift."""
    blocks = [_metadata_line(response.metadata)]
    for item in response.items:
        blocks.append(
            f'\n{item.item_id}  score {item.score:.3f}  [{_STATUS.get(item.status, "?")}]  "{item.title}"\n'
            f'query: "{query}"' + (f"\n{item.message}" if item.message else "")
        )
        if not item.entities:
            blocks.append("  (no entities)")
            continue
        blocks.append(f"  {'type':<13} {'entity':<28} {'score':>6}  {'source':<7} {'lift':>6}")
        for e in item.entities:
            flag = "  ← breaks the match" if e.breaks_match else ""
            note = f"  ({e.note})" if e.note else ""
            blocks.append(
                f"  {e.type:<13} {e.text[:28]:<28} {e.score:>6.3f}  {_SOURCE.get(e.source, '?'):<7} {e.lift:>+6.3f}{flag}{note}"
            )
    return "\n".join(blocks)
