"""The item-level similarity term over a real nightly snapshot and a real bi-encoder (all-MiniLM-L6-v2).

score = (1 - w) * entity score + w * cosine(query, item text), with item and
frequent-query vectors precomputed by the nightly job, other queries and
inline items encoded live to the same vectors.
"""

from __future__ import annotations

import pytest

from entrel.catalog import item_text, iter_items, read_catalog
from entrel.v1 import relevance_pb2 as pb


def _of_type(server, product_type: str) -> list[str]:
    snap = server.watcher.current()
    wanted = {snap.entity_ids[e] for e in snap.entity_ids if e.type.value == "product_type" and product_type in e.text}
    return [i for i, row in snap.item_rows.items() if wanted & set(snap.item_entities[row, : snap.item_counts[row]].tolist())]


def test_score_is_the_stated_blend_and_similarity_follows_the_item_text(server, client):
    snap = server.watcher.current()
    query = next(q for q in sorted(snap.queries()) if "bottle" in q)
    bottles, chairs = _of_type(server, "bottle")[:6], _of_type(server, "office chair")[:6]
    assert bottles and chairs
    response = client.score(query, bottles + chairs, explain=True)
    weight = response.metadata.similarity_weight
    assert weight == pytest.approx(server.settings.similarity.weight) and 0 < weight < 1
    assert response.metadata.query_vector_cached, "a precomputed query's vector comes from the snapshot"
    for item in response.items:
        assert item.status == pb.ITEM_STATUS_OK
        assert 0.0 <= item.similarity <= 1.0
        assert item.score == pytest.approx((1 - weight) * item.entity_score + weight * item.similarity, abs=1e-5)
    similarity = {item.item_id: item.similarity for item in response.items}
    assert min(similarity[i] for i in bottles) > max(similarity[i] for i in chairs), query


def test_live_query_and_inline_item_match_the_nightly_vectors(server, client):
    snap = server.watcher.current()
    item = next(i for i in iter_items(read_catalog(server.settings.catalog)) if i.item_id in _of_type(server, "bottle"))
    inline = pb.InlineItem(title=item.title, brand=item.brand, color=item.color)
    query = "leak proof bottle to carry at the gym"
    assert snap.row(query) is None and snap.query_vector(query) is None
    response = client.score(query, [item.item_id, inline, "NOPE"], explain=True)
    assert not response.metadata.query_vector_cached and response.metadata.similarity_weight > 0
    by_catalog, by_inline, unknown = response.items
    assert by_catalog.similarity > 0.3
    assert by_inline.similarity == pytest.approx(by_catalog.similarity, abs=1e-6), "same text, same vector"
    assert unknown.status == pb.ITEM_STATUS_UNKNOWN_ITEM and unknown.score == 0.0 and unknown.similarity == 0.0
    # Encoded once, then served from the process's query cache: the same answer again.
    again = client.score(query, [item.item_id])
    assert again.items[0].score == pytest.approx(by_catalog.score, abs=1e-6)


def test_weight_zero_scores_by_entities_alone(server):
    from entrel.service.engine import RelevanceEngine
    from entrel.service.requests import ItemRequest

    engine = server.engine
    settings = server.settings.replace(**{"similarity.weight": "0"})
    alone = RelevanceEngine(settings, engine.fingerprint, server.watcher, server.batcher, None, None)
    items = [ItemRequest(i) for i in _of_type(server, "office chair")[:5]]
    result = alone.score("red leather office chair", items)
    assert result.similarity_weight == 0.0 and not result.query_vector_cached
    assert all(i.score == i.entity_score and i.similarity == 0.0 for i in result.items)
    blended = engine.score("red leather office chair", items)
    assert [i.entity_score for i in blended.items] == pytest.approx([i.entity_score for i in result.items], abs=1e-6)
    assert [i.score for i in blended.items] != pytest.approx([i.score for i in result.items], abs=1e-3)


def test_a_missing_encoder_is_a_clear_error_naming_the_way_out(tmp_path):
    from entrel.config import SimilaritySettings
    from entrel.errors import EntrelError
    from entrel.scoring import TextEncoder

    with pytest.raises(EntrelError, match=r"similarity encoder .*absent.* not found.*similarity\.weight=0"):
        TextEncoder(SimilaritySettings(encoder=str(tmp_path / "absent")))


def test_nightly_item_vectors_are_carried_over_by_text_and_encoder(tmp_path):
    import numpy as np

    from entrel.config import SimilaritySettings
    from entrel.offline.vectors import encode_items
    from entrel.scoring import TextEncoder

    encoder = TextEncoder(SimilaritySettings())
    first = encode_items(encoder, ["red chair", "blue mug", "red chair"], tmp_path)
    assert (first.reused, first.encoded) == (0, 2) and first.vectors.shape[0] == 3
    assert np.array_equal(first.vectors[0], first.vectors[2])
    second = encode_items(encoder, ["red chair", "green mug"], tmp_path)
    assert (second.reused, second.encoded) == (1, 1), "an unchanged text is not encoded again"
    assert np.array_equal(second.vectors[0], first.vectors[0])
    # Only the texts the last run used are kept: "blue mug" went with the second run.
    assert (encode_items(encoder, ["blue mug"], tmp_path).encoded) == 1
    (cache,) = tmp_path.glob(f"{encoder.fingerprint}.npz")
    cache.write_bytes(b"not an npz file")
    rebuilt = encode_items(encoder, ["red chair"], tmp_path)
    assert (rebuilt.reused, rebuilt.encoded) == (0, 1), "a damaged cache is rebuilt, not fatal"
    assert np.array_equal(rebuilt.vectors[0], first.vectors[0])


def test_float16_vectors_convert_exactly_as_numpy_casts_them():
    import numpy as np

    from entrel.scoring.similarity import as_float32

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((300, 384)).astype(np.float16)  # several chunks
    vectors[0, :5] = [np.inf, -np.inf, -0.0, 6e-8, 65504]  # infinities, signed zero, a subnormal, the largest
    vectors[1] = rng.integers(0, 2**16, 384, dtype=np.uint16).view(np.float16)  # every kind of bit pattern
    for sample in (vectors, vectors[:3], vectors[5:7, :9], vectors[::2]):
        converted, expected = as_float32(sample), sample.astype(np.float32)
        assert converted.dtype == np.float32 and converted.shape == expected.shape
        nan = np.isnan(expected)
        assert np.array_equal(nan, np.isnan(converted)), "NaN stays NaN (its payload bits may differ)"
        assert np.array_equal(converted.view(np.uint32)[~nan], expected.view(np.uint32)[~nan])
    assert as_float32(np.ones((2, 3), np.float32)).dtype == np.float32


def test_entity_bags_sum_per_entity_cosines_over_one_norm_per_item():
    import numpy as np

    from entrel.scoring import entity_bags

    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((3, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    texts = ["red", "chair", "steel"]
    bags = entity_bags([["chair", "red"], [], ["steel"]], texts, vectors.astype(np.float16))
    assert bags.dtype == np.float16 and bags.shape == (3, 8)
    assert not bags[1].any(), "an item without entities has no direction: similarity 0"
    query = vectors[0] * 0.6 + vectors[2] * 0.8
    share = vectors[[1, 0]] @ query / np.linalg.norm(vectors[0] + vectors[1])
    assert float(bags[0].astype(np.float32) @ query) == pytest.approx(share.sum(), abs=2e-3)
    assert np.linalg.norm(bags[2].astype(np.float32)) == pytest.approx(1.0, abs=1e-3)


def test_similarity_of_entities_is_served_for_catalog_and_inline_items_alike(tmp_path, served_settings, scorer):
    """similarity.source = "entities": the nightly's item vectors and an inline item's are bags of entity vectors."""
    import numpy as np

    from entrel.config import SimilaritySettings
    from entrel.offline import nightly
    from entrel.scoring import TextEncoder
    from entrel.service.client import RelevanceClient
    from entrel.service.server import RelevanceServer

    settings = served_settings.replace(**{"data_dir": str(tmp_path), "similarity.source": "entities"})
    report = nightly.run(settings, progress=False)
    assert report.item_vectors["encoded"] < report.counts["items"], "entity texts are shared: fewer to encode than items"
    running = RelevanceServer(settings, scorer=scorer).start()
    try:
        snap = running.watcher.current()
        item = next(i for i in iter_items(read_catalog(settings.catalog)) if "bottle" in i.title.lower())
        row = snap.item_rows[item.item_id]
        texts = [snap.entity(int(e)).text for e in snap.item_entities[row, : snap.item_counts[row]]]
        query = "leak proof bottle to carry at the gym"
        with RelevanceClient(f"127.0.0.1:{running.port}") as client:
            inline = pb.InlineItem(
                title=item.title,
                description=item.description,
                brand=item.brand,
                color=item.color,
                category_path=list(item.category),
                attributes=dict(item.attributes),
            )
            by_catalog, by_inline = client.score(query, [item.item_id, inline], explain=True).items
        encoder = TextEncoder(SimilaritySettings())
        bag = encoder.encode(texts).astype(np.float32).sum(axis=0)
        expected = float(encoder.encode([query])[0].astype(np.float32) @ bag / np.linalg.norm(bag))
        assert by_catalog.similarity == pytest.approx(expected, abs=5e-3)
        # The item's text alone encodes to another vector: the served one is made of its entities.
        text_cosine = float(
            encoder.encode([query])[0].astype(np.float32) @ encoder.encode([item_text(item)])[0].astype(np.float32)
        )
        assert abs(by_catalog.similarity - text_cosine) > 1e-3
        assert by_inline.similarity == pytest.approx(by_catalog.similarity, abs=1e-3), "same entities, same bag"
    finally:
        running.stop(grace=1)
