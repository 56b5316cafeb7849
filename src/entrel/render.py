"""Readable tables of ScoreItems responses, for the CLI and the demo."""

from __future__ import annotations

from entrel.v1 import relevance_pb2 as pb

__all__ = ["render_explanation", "render_ranking"]

_SOURCE = {
    pb.SCORE_SOURCE_CACHED: "cached",
    pb.SCORE_SOURCE_LIVE: "live",
    pb.SCORE_SOURCE_PRIOR: "prior",
    pb.SCORE_SOURCE_OVERRIDE: "override",
}
_STATUS = {
    pb.ITEM_STATUS_OK: "ok",
    pb.ITEM_STATUS_UNKNOWN_ITEM: "unknown item",
    pb.ITEM_STATUS_NO_ENTITIES: "no entities",
    pb.ITEM_STATUS_DEGRADED: "degraded",
}


_ROLE = {pb.ENTITY_ROLE_MATCHES: "matches", pb.ENTITY_ROLE_NEUTRAL: "neutral", pb.ENTITY_ROLE_CONTRADICTS: "contradicts"}


def _entity_part(e: pb.EntityExplanation) -> str:
    """E.g. "covers product type: capo 0.95", "brand: dunlop neutral", "breaks: product type: sprayer 0.02"."""
    text = f"{e.type.replace('_', ' ')}: {e.text}"
    if e.role == pb.ENTITY_ROLE_NEUTRAL:
        return f"{text} neutral"
    prefix = "covers " if e.covers else "breaks: " if e.breaks_match else ""
    return f"{prefix}{text} {e.score:.2f}"


def _entity_line(item: pb.ItemScore) -> str:
    """The covering entity first, then what breaks the match, then the rest; sources summarised."""
    ordered = sorted(item.entities, key=lambda e: (not e.covers, not e.breaks_match))
    sources = sorted({_SOURCE.get(e.source, "?") for e in item.entities})
    return " · ".join(_entity_part(e) for e in ordered) + f"  [{'/'.join(sources)}]"


def _metadata_line(meta: pb.ResponseMetadata) -> str:
    return (
        f"snapshot {meta.snapshot_id or '(none: live only)'} · model {meta.model_fingerprint} · t-norm {meta.tnorm} · "
        f"query {'cached' if meta.query_cached else 'not cached'} · hits {meta.cache_hits} · "
        f"misses {meta.cache_misses} (live {meta.live_scored_pairs}, prior {meta.prior_pairs}) · "
        f"similarity weight {meta.similarity_weight:.2f} · {meta.total_ms:.1f} ms"
    )


def _score_formula(item: pb.ItemScore, meta: pb.ResponseMetadata) -> str:
    """E.g. "0.15 × entities 0.412 + 0.85 × similarity 0.631", or the entity score alone when the weight is 0;
    an item that could not be judged says so (its score is the configured `logic.unjudged_score`)."""
    if item.status in (pb.ITEM_STATUS_UNKNOWN_ITEM, pb.ITEM_STATUS_NO_ENTITIES):
        return "not judged (logic.unjudged_score)"
    entities = f"T(coverage {item.coverage:.3f}, compatibility {item.compatibility:.3f})"
    weight = meta.similarity_weight
    formula = entities
    if weight:
        formula = f"{1 - weight:.2f} × entities {item.entity_score:.3f} + {weight:.2f} × similarity {item.similarity:.3f}"
    if item.excluded:
        formula = f"({formula}) × {1 - meta.exclusion_penalty:.2f}: names '{item.excluded}', which the query excludes"
    return f"{formula}; entities = {entities}" if weight else formula


def render_ranking(query: str, response: pb.ScoreItemsResponse, limit: int | None = None) -> str:
    """Items best first, one line each, with their entities when the response has them."""
    ranked = sorted(response.items, key=lambda i: -i.score)[:limit]
    lines = [f'query: "{query}"', _metadata_line(response.metadata)]
    for rank, item in enumerate(ranked, 1):
        status = "" if item.status == pb.ITEM_STATUS_OK else f"  [{_STATUS.get(item.status, '?')}: {item.message}]"
        lines.append(f"{rank:>3}. {item.score:.3f}  {item.item_id}  {item.title[:70]}{status}")
        if item.entities:
            lines.append(f"       {_score_formula(item, response.metadata)}")
            lines.append(f"       {_entity_line(item)}")
    return "\n".join(lines)


def render_explanation(query: str, response: pb.ScoreItemsResponse) -> str:
    """One table per item: every entity with its score, role, type weight, source and lift."""
    blocks = [_metadata_line(response.metadata)]
    for item in response.items:
        blocks.append(
            f"\n{item.item_id}  score {item.score:.3f} = {_score_formula(item, response.metadata)}  "
            f'[{_STATUS.get(item.status, "?")}]  "{item.title}"\n'
            f'query: "{query}"' + (f"\n{item.message}" if item.message else "")
        )
        if not item.entities:
            blocks.append("  (no entities)")
            continue
        blocks.append(f"  {'type':<13} {'entity':<28} {'score':>6}  {'role':<11} {'weight':>6}  {'source':<8} {'lift':>6}")
        for e in item.entities:
            flag = "  ← covers the query" if e.covers else "  ← breaks the match" if e.breaks_match else ""
            note = f"  ({e.note})" if e.note else f"  (override: {e.override_reason})" if e.override_reason else ""
            blocks.append(
                f"  {e.type:<13} {e.text[:28]:<28} {e.score:>6.3f}  {_ROLE.get(e.role, '?'):<11} {e.weight:>6.2f}  "
                f"{_SOURCE.get(e.source, '?'):<8} {e.lift:>+6.3f}{flag}{note}"
            )
    return "\n".join(blocks)
