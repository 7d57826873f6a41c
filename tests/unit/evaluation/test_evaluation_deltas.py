"""Which stored deltas of a partition count: the pure rule behind crash-safe compaction."""

from services.evaluation.store import counted


def _d(first: int, last: int) -> dict:
    return {"_id": f"t|0|{first}-{last}", "first": first, "last": last}


def test_deltas_that_tile_the_log_all_count_in_offset_order():
    kept, superseded = counted([_d(10, 19), _d(0, 9), _d(20, 20)])
    assert [(d["first"], d["last"]) for d in kept] == [(0, 9), (10, 19), (20, 20)]
    assert superseded == []


def test_a_merged_delta_supersedes_the_parts_it_covers_and_not_later_ones():
    parts = [_d(0, 9), _d(10, 19), _d(20, 29)]
    kept, superseded = counted([*parts, _d(0, 19), _d(30, 31)])
    assert [(d["first"], d["last"]) for d in kept] == [(0, 19), (20, 29), (30, 31)]
    assert sorted(d["first"] for d in superseded) == [0, 10]


def test_a_merge_of_merges_supersedes_both():
    kept, superseded = counted([_d(0, 19), _d(20, 39), _d(0, 39), _d(0, 9)])
    assert [(d["first"], d["last"]) for d in kept] == [(0, 39)]
    assert len(superseded) == 3
