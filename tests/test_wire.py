"""The hand-written ItemScore encoding parses to exactly the messages the protobuf runtime builds."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf.descriptor import FieldDescriptor

from entrel.service.wire import item_scores_by_group, varint
from entrel.v1 import relevance_pb2 as pb

TEXTS = ("", "item id not in the serving snapshot", "some entities got the prior score; ünïcode ✓")


def _columns(n: int, seed: int, titles: bool, excluded: bool) -> dict:
    rng = np.random.default_rng(seed)
    floats = rng.random((5, n)).astype(np.float32)
    floats[:, rng.random(n) < 0.2] = 0.0  # zeros: the runtime leaves them out, the encoding writes them
    floats[0, rng.random(n) < 0.1] = -0.0
    ids = [f"item-{k}" for k in range(n)]
    if n > 3:  # a two-byte length, non-ASCII, empty
        ids[1], ids[2], ids[3] = "x" * 300, "stühl-✓", ""
    if n == 7:  # a NUL inside one id: the encoding that splits at NULs falls back to encoding each id alone
        ids[4] = "nul\x00id"
    return {
        "item_ids": ids,
        "scores": floats[0].astype(np.float64) / 3,  # float64 in: written as float32, as the runtime casts
        "statuses": rng.integers(1, 5, n).astype(np.uint8),
        "messages": rng.integers(0, len(TEXTS), n),
        "message_texts": TEXTS,
        "coverage": floats[1],
        "compatibility": floats[2],
        "entity_scores": floats[3],
        "similarity": floats[4],
        "titles": [("Tïtle " * int(k % 40)).strip() for k in range(n)] if titles else None,
        "excluded": [("straw" if k % 3 == 0 else "") for k in range(n)] if excluded else None,
    }


def _by_runtime(c: dict) -> pb.ScoreItemsResponse:
    response = pb.ScoreItemsResponse()
    n = len(c["item_ids"])
    for k in range(n):
        response.items.add(
            item_id=c["item_ids"][k],
            score=float(c["scores"][k]),
            status=int(c["statuses"][k]),
            message=c["message_texts"][c["messages"][k]],
            title=c["titles"][k] if c["titles"] else "",
            coverage=float(c["coverage"][k]),
            compatibility=float(c["compatibility"][k]),
            entity_score=float(c["entity_scores"][k]),
            similarity=float(c["similarity"][k]),
            excluded=c["excluded"][k] if c["excluded"] else "",
        )
    return response


@pytest.mark.parametrize("n", [0, 1, 7, 300])
@pytest.mark.parametrize(("titles", "excluded"), [(False, False), (True, False), (True, True)])
def test_encoded_items_parse_to_the_runtimes_messages(n, titles, excluded):
    c = _columns(n, n, titles, excluded)
    (encoded,) = item_scores_by_group([n], **c)
    parsed = pb.ScoreItemsResponse.FromString(encoded)
    expected = _by_runtime(c)
    assert parsed == expected
    # Re-serialised by the runtime (as gRPC sends it): the very bytes of the runtime's own message.
    assert parsed.SerializeToString(deterministic=True) == expected.SerializeToString(deterministic=True)
    if n > 2:
        assert parsed.items[2].score == np.float32(c["scores"][2]), "float64 scores are rounded to float32 alike"


@pytest.mark.parametrize("kind", ["uniform", "plain", "strings"])
def test_groups_encoded_together_are_each_groups_own_encoding(kind):
    """One pass over several groups' columns, cut at their ends: the bytes each group alone gets (empty groups too),
    whichever layout the pass takes (one record size, or items of their own lengths)."""
    sizes = [7, 0, 300, 1, 0]
    n = sum(sizes)
    c = _columns(n, 3, titles=kind == "strings", excluded=kind == "strings")
    if kind == "uniform":
        c |= {"item_ids": [f"i{k:04d}" for k in range(n)], "messages": np.zeros(n, dtype=np.int64)}
    bounds = np.cumsum([0, *sizes])
    alone = [
        item_scores_by_group([hi - lo], **{k: v if k == "message_texts" or v is None else v[lo:hi] for k, v in c.items()})[0]
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    together = item_scores_by_group(sizes, **c)
    assert together == alone
    assert [len(pb.ScoreItemsResponse.FromString(e).items) for e in together] == sizes


def test_ids_of_one_length_with_a_nul_inside_parse_to_the_runtimes_messages():
    """Ids of one length take the one-record layout; one holding a NUL takes it through the fallback too."""
    c = _columns(5, 5, titles=False, excluded=False) | {"messages": np.zeros(5, dtype=np.int64)}
    c["item_ids"] = ["id-00", "id\x0001", "id-02", "id-03", "id-04"]
    (encoded,) = item_scores_by_group([5], **c)
    assert pb.ScoreItemsResponse.FromString(encoded) == _by_runtime(c)


def test_varints_are_the_runtimes():
    for n in (1, 127, 128, 300, 16384, 70_000):
        assert pb.ItemScore(item_id="x" * n).SerializeToString() == b"\n" + varint(n) + b"x" * n
    assert varint(0) == b"\x00" and varint(2**31) == bytes([0x80, 0x80, 0x80, 0x80, 0x08])


def test_field_numbers_and_types_match_the_proto():
    """The encoding hard-codes ItemScore's fields: a change to the proto must fail here, not on the wire."""
    fields = {f.name: (f.number, f.type) for f in pb.ItemScore.DESCRIPTOR.fields}
    t = FieldDescriptor
    assert fields == {
        "item_id": (1, t.TYPE_STRING),
        "score": (2, t.TYPE_FLOAT),
        "status": (3, t.TYPE_ENUM),
        "message": (4, t.TYPE_STRING),
        "entities": (5, t.TYPE_MESSAGE),
        "title": (6, t.TYPE_STRING),
        "coverage": (7, t.TYPE_FLOAT),
        "compatibility": (8, t.TYPE_FLOAT),
        "entity_score": (9, t.TYPE_FLOAT),
        "similarity": (10, t.TYPE_FLOAT),
        "excluded": (11, t.TYPE_STRING),
    }
    assert pb.ScoreItemsResponse.DESCRIPTOR.fields_by_name["items"].number == 1
    assert max(v.number for v in pb.ItemStatus.DESCRIPTOR.values) < 128, "statuses are one-byte varints"
