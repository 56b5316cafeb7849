"""The `entrel` row on a dataset nothing was trained on (cross-domain, e.g. ``--dataset chorus-icecat``).

Nothing is trained or chosen here: the entity model the ESCI run saved
(``<data_dir>/models/entrel-esci``) scores the dataset's judged products
through the product's own path, as ESCI's `entrel` row does: the catalog
written as an entrel catalog, the nightly LMDB snapshot, ``entrel serve``,
every judged item scored over gRPC.
"""

from __future__ import annotations

from entrel.errors import EntrelError
from entrel.scoring import MODEL_INFO_FILE, model_fingerprint
from offline.evaluate import EvalContext, MethodResult, cross_domain_method
from offline.methods import entity_model

__all__ = ["entrel_cross_domain"]


@cross_domain_method("entrel")
def entrel_cross_domain(ctx: EvalContext) -> MethodResult:
    """The ESCI-trained entity model, served, on every judged pair of the dataset."""
    model_dir = ctx.models_dir / entity_model._MODEL_DIR
    if not (model_dir / MODEL_INFO_FILE).is_file():
        raise EntrelError(
            f"no ESCI entity model at {model_dir}: run `entrel eval --methods entrel` on ESCI first "
            f"(with the same data_dir); the cross-domain row only scores with it"
        )
    # TODO: the lead renames entity_model._served to entity_model.served; call that then.
    served, serving_report = entity_model._served(ctx, model_dir, ctx.test_labels)
    return MethodResult.of(
        served.item_scores,
        model=str(model_dir),
        fingerprint=model_fingerprint(str(model_dir)),
        trained_on="esci-us",
        **serving_report,
    )
