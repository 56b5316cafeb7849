"""The three ranking failures of the product-t-norm model, pinned end to end (real model, real server).

1. An item whose only entity is another product type ("sprayer") must not
   fit "acoustic guitar clamp": it covers nothing the query asks for.
2. For "yellow office chair", a chair mat (an accessory) never outranks an
   office chair, whatever the chair's color.
3. A well-described matching item is not ranked below a sparse one for
   having more entities the query says nothing about.
"""

from __future__ import annotations

import math

from entrel.v1 import relevance_pb2 as pb


def _scores(response: pb.ScoreItemsResponse) -> dict[str, float]:
    return {item.item_id: item.score for item in response.items}


def test_another_product_type_never_fits_the_query(client):
    items = [
        pb.InlineItem(item_id="sprayer", title="25 Gallon Spot Sprayer", category_path=["Garden", "Sprayers"]),
        pb.InlineItem(item_id="capo", title="Acoustic Guitar Clamp Capo", category_path=["Music", "Guitar Clamps"]),
    ]
    response = client.score("acoustic guitar clamp", items, explain=True)
    scores = _scores(response)
    sprayer = next(item for item in response.items if item.item_id == "sprayer")
    assert scores["sprayer"] < 0.5 <= scores["capo"], scores
    assert sprayer.coverage < 0.2, "nothing of the sprayer is what the query asks for"
    assert not any(e.role == pb.ENTITY_ROLE_MATCHES for e in sprayer.entities)


def test_a_chair_mat_never_outranks_an_office_chair(server, client):
    snap = server.watcher.current()
    product_type = {}
    for item_id, row in snap.item_rows.items():
        for i in snap.item_entities[row, : snap.item_counts[row]]:
            if snap.entities[i].type.value == "product_type":
                product_type[item_id] = snap.entities[i].text
    mats = [i for i, t in product_type.items() if t == "chair mat"]
    chairs = [i for i, t in product_type.items() if t == "office chair"]
    assert mats and chairs, "the test catalog should hold chair mats and office chairs"
    response = client.score("yellow office chair", mats + chairs, explain=True)
    scores = _scores(response)
    assert max(scores[i] for i in mats) < min(scores[i] for i in chairs)
    covering = {e.text for item in response.items if item.item_id in chairs for e in item.entities if e.covers}
    assert "office chair" in covering


def test_more_neutral_entities_do_not_lower_a_matching_item(client):
    """Extra entities lower an item only by their own contradiction: with the product t-norm, the
    described item scores at least the sparse one times the extras' (1 - contradiction) terms, so
    entities the model finds neutral or matching cost nothing (the old t-norm halved it per neutral)."""
    sparse = pb.InlineItem(item_id="sparse", title="Red Office Chair", category_path=["Furniture", "Office Chairs"])
    described = pb.InlineItem(
        item_id="described",
        title="Red Office Chair",
        brand="Acme",
        category_path=["Furniture", "Office Chairs"],
        attributes={"material": "mesh", "style": "modern", "size": "large"},
    )
    response = client.score("red office chair", [sparse, described], explain=True)
    by_id = {item.item_id: item for item in response.items}
    shared = {(e.type, e.text) for e in by_id["sparse"].entities}
    extra = [e for e in by_id["described"].entities if (e.type, e.text) not in shared]
    assert len(extra) >= 2, [(e.type, e.text) for e in by_id["described"].entities]
    penalty = math.prod(1.0 - max(1.0 - 2.0 * e.score, 0.0) for e in extra)
    assert by_id["described"].score >= by_id["sparse"].score * penalty - 1e-4
