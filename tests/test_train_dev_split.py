"""Issue 27: ``train`` chooses its checkpoint on a dev split carved from the training queries, never on test."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from conftest import write_beir

from simlm_haystack.errors import DataError
from simlm_haystack.evaluation import load_beir
from simlm_haystack.training.arguments import DataArguments
from simlm_haystack.training.dev_split import DEV_SEED, DEV_SPLIT, carve_dev_split, dev_size


@pytest.fixture
def collection(tmp_path: Path):
    qrels = ["query-id\tcorpus-id\tscore", *(f"q{i}\td{i % 5}\t1" for i in range(40))]
    folder = write_beir(
        tmp_path / "beir",
        [{"_id": f"d{i}", "title": "", "text": f"text {i}"} for i in range(5)],
        [{"_id": f"q{i}", "text": f"query {i}"} for i in range(40)],
        {"train": qrels, "test": qrels[:5]},
    )
    return load_beir(folder, splits=["train", "test"])


def test_a_count_or_a_share_is_held_out_seeded_and_disjoint(collection) -> None:
    train = collection.split("train")
    for size, count in ((10, 10), (0.25, 10), (0.01, 1)):
        carved = carve_dev_split(collection, "train", size)
        dev, kept = carved.split(DEV_SPLIT), carved.split("train")
        assert len(dev) == count and len(kept) == 40 - count
        assert set(dev).isdisjoint(kept) and set(dev) | set(kept) == set(train)
        assert all(dev[query] == train[query] for query in dev)
        assert carved.split("test") == collection.split("test")  # other splits untouched
    # The same seed draws the same queries (the benchmarks' draw: random.Random(seed).sample of the sorted ids).
    assert set(carve_dev_split(collection, "train", 10).split(DEV_SPLIT)) == set(
        random.Random(DEV_SEED).sample(sorted(train), 10)
    )
    other = carve_dev_split(collection, "train", 10, seed=7).split(DEV_SPLIT)
    assert set(other) != set(carve_dev_split(collection, "train", 10).split(DEV_SPLIT))
    assert carve_dev_split(collection, "train", 0) is collection
    assert DataArguments(train="t").eval_split == "test" and DataArguments(train="t").dev_queries == 0


@pytest.mark.parametrize(("size", "message"), [(-1, "must be a count"), (2.5, "must be a count"), (40, "none left")])
def test_a_bad_size_is_a_data_error(size: float, message: str) -> None:
    with pytest.raises(DataError, match=message):
        dev_size(40, size)
