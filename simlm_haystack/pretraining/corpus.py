"""The unlabeled corpus: passages read from JSONL with line-numbered errors, and the batches drawn from it.

Every random choice made for a passage (its masks, which of its queries is used) comes from a
generator seeded with ``(seed, epoch, passage index)``, never from the global random state, so an
epoch draws the same batches and masks whether or not training was stopped and resumed inside it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset, Sampler

from simlm_haystack.corpus import read_jsonl, record_to_document
from simlm_haystack.errors import DataError


def one_line(error: object) -> str:
    """An error's message on one line (the command line prints each error as one line)."""
    return " ".join(str(error).split())


@dataclass(frozen=True)
class CorpusPassage:
    """A passage as the recipe reads it (``title`` may be ``None``); ``where`` is its ``file:line`` and
    ``meta`` its other fields."""

    text: str
    title: str | None = None
    id: str | None = None
    where: str = ""
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)


def read_passages(path: str | Path) -> list[CorpusPassage]:
    """Every passage of a JSONL corpus (BEIR ``corpus.jsonl`` as it is: ``_id``, ``title``, ``text``).

    A malformed line, a line with neither text nor title, or a corpus with no passage at all is a
    :class:`~simlm_haystack.errors.DataError` naming the file (and line).
    """
    passages = []
    for number, record in read_jsonl(path):
        where = f"{path}:{number}"
        document = record_to_document(record, where=where)
        title = document.meta.get("title")
        if title is not None and not isinstance(title, str):
            raise DataError(f"{where}: 'title' must be a string, got {type(title).__name__}")
        text = document.content or ""
        if not text.strip() and not (title or "").strip():
            raise DataError(f"{where}: the passage has neither text nor title")
        meta = {key: value for key, value in document.meta.items() if key != "title"}
        passages.append(CorpusPassage(text=text, title=title or None, id=document.id, where=where, meta=meta))
    if not passages:
        raise DataError(f"{path}: the corpus is empty (no passages to pre-train on)")
    return passages


@dataclass(frozen=True)
class PassageDraw:
    """One passage of one batch, with the seed of every random choice made for it."""

    index: int
    seed: tuple[int, int, int]

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)


class PassageBatchSampler(Sampler[list[PassageDraw]]):
    """Shuffled batches of passage indices, reshuffled each epoch from ``(seed, epoch)``."""

    def __init__(self, size: int, batch_size: int, *, seed: int = 0, drop_last: bool = False) -> None:
        if size <= 0:
            raise DataError("Nothing to pre-train on: no passages")
        self.size = size
        self.batch_size = batch_size
        self.seed = seed
        self.drop_last = drop_last and size >= batch_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[PassageDraw]]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.size)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            yield [PassageDraw(int(i), (self.seed, self.epoch, int(i))) for i in order[start : start + self.batch_size]]

    def __len__(self) -> int:
        if self.drop_last:
            return self.size // self.batch_size
        return math.ceil(self.size / self.batch_size)


class DrawDataset(Dataset):
    """Looks up what a :class:`PassageDraw` names; the sampler decides which and in what order."""

    def __init__(self, items: Sequence[Any]) -> None:
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, draw: PassageDraw) -> tuple[Any, np.random.Generator]:
        return self.items[draw.index], draw.rng()
