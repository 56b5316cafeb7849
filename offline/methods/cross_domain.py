"""The `entrel` row on a dataset nothing was trained on (cross-domain, e.g. ``--dataset chorus-icecat``).

Nothing is trained or chosen here: the entity models the ESCI run saved
(``<data_dir>/models/entrel-esci``, and ``entrel-esci-seed-N`` for its other
seeds; ``entrel-esci-quick`` for a quick run) score the dataset's judged
products through the product's own path, as ESCI's `entrel` row does: the
catalog written as an entrel catalog, the nightly LMDB snapshot, ``entrel
serve`` with the aggregation settings in the model's card and the
similarity weight and encoder (fine-tuned per seed, or zero-shot) the ESCI run chose, every judged item scored over gRPC.
One run per seed, so the row reports mean ± sd over seeds; the variant
``entity_aggregate`` is the first seed's entity score alone, and
``pure_entities`` the pure entity model as the ESCI run chose it (similarity
from entity bags, exclusions read in entity texts), served from its own
snapshot with the first seed's model.
"""

from __future__ import annotations

import logging
from pathlib import Path

from entrel.errors import EntrelError
from entrel.offline.evaluate import EvalContext, MethodResult, cross_domain_method
from entrel.offline.methods import entity_model
from entrel.scoring import MODEL_INFO_FILE, model_fingerprint

__all__ = ["entrel_cross_domain", "esci_models"]

log = logging.getLogger(__name__)


def esci_models(models_dir: Path, quick: bool) -> list[Path]:
    """The saved ESCI entity models, first seed first; an error says how to get them when there is none."""
    # Named as entrel.offline.methods.entity_model saves them.
    first = models_dir / (f"{entity_model.ESCI_MODEL_DIR}-quick" if quick else entity_model.ESCI_MODEL_DIR)
    if not (first / MODEL_INFO_FILE).is_file():
        how = "entrel eval --quick --methods entrel" if quick else "entrel eval --methods entrel"
        raise EntrelError(
            f"no ESCI entity model at {first}: run `{how}` on ESCI first (with the same data_dir); "
            f"the cross-domain row only scores with it"
        )
    seeds = [] if quick else sorted(models_dir.glob(f"{entity_model.ESCI_MODEL_DIR}-seed-*"))
    return [first, *(d for d in seeds if (d / MODEL_INFO_FILE).is_file())]


@cross_domain_method("entrel")
def entrel_cross_domain(ctx: EvalContext) -> MethodResult:
    """The ESCI-trained entity models, served, on every judged pair of the dataset."""
    runs, reports = [], []
    models = esci_models(ctx.models_dir, ctx.quick)
    first: entity_model.Explained | None = None
    for model_dir in models:
        serving = entity_model.saved_serving_settings(ctx, model_dir)
        explained, serving_report = entity_model.served(ctx, model_dir, ctx.test_labels, serving)
        runs.append(explained.item_scores)
        reports.append(
            {
                "model": str(model_dir),
                "fingerprint": model_fingerprint(str(model_dir)),
                **serving,
                **serving_report,
            }
        )
        first = first or explained
    assert first is not None
    info: dict[str, object] = {"trained_on": "esci-us", "served": reports}
    variants = {"entity_aggregate": first.entity_scores}
    pure = entity_model.saved_entity_similarity_choice(ctx)
    if pure is None:
        log.warning("no pure entity model chosen by the ESCI run: its row is left out (run `entrel eval --methods entrel`)")
    else:
        # The zero-shot encoder the pure model's choice was made with (never the fine-tuned one).
        pure_run, pure_report = entity_model.served(
            ctx, models[0], ctx.test_labels, entity_model.pure_serving_settings(pure, ctx.settings.similarity.encoder)
        )
        variants["pure_entities"] = pure_run.item_scores
        info["pure_entities"] = {**{k: v for k, v in pure.items() if k != "config"}, "served_run": pure_report}
    return MethodResult(tuple(runs), info, variants)
