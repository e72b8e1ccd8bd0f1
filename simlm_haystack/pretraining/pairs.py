"""(passage, query) pairs for query-as-context pre-training, from one of four sources.

* a JSONL file, one passage per line: ``{"_id"?, "title"?, "text", "query": "..." | "queries": [...]}``
  (a passage with several queries gets a random one each time it is drawn, as in cotmae-qc);
* a doc2query seq2seq model (``--query-generator``): queries sampled with top-k / top-p, several per
  passage, written to that same JSONL form as they are made, so they are generated once (a stopped
  run picks up where it stopped);
* a field of the passage, such as its title: the passage is then read *without* that field,
  otherwise the model could find the query by copying it;
* the passage itself (:mod:`.pseudo_queries`): a sentence of it (inverse cloze) or a span of it
  (cropping), cut out of the passage.

Every source gives items with the same two methods, :class:`PseudoQueryPair`: ``draw(rng)`` makes
one (query, passage) pair, ``document`` is the passage as a retriever would index it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from simlm_haystack.corpus import read_jsonl, record_to_document
from simlm_haystack.errors import DataError, ModelLoadError
from simlm_haystack.models import _from_pretrained, local_model_path
from simlm_haystack.pretraining.corpus import CorpusPassage
from simlm_haystack.pretraining.corpus import one_line as _one_line

logger = logging.getLogger(__name__)


class PseudoQueryPair(Protocol):
    """What the query-as-context collator and the held-out check need of any source of pairs."""

    @property
    def document(self) -> CorpusPassage:
        """The passage as it is indexed when nothing is drawn from it (the corpus of the held-out check)."""
        ...

    def draw(self, rng: np.random.Generator, *, evaluation: bool = False) -> tuple[str, CorpusPassage]:
        """One (query, passage) pair, every random choice from ``rng``. ``evaluation``: the pair the
        held-out check scores, whose passage never contains its query."""
        ...


@dataclass(frozen=True)
class QueryPassagePair:
    """A passage and the queries it can be paired with (one is drawn each time)."""

    passage: CorpusPassage
    queries: tuple[str, ...]

    @property
    def document(self) -> CorpusPassage:
        return self.passage

    def draw(self, rng: np.random.Generator, *, evaluation: bool = False) -> tuple[str, CorpusPassage]:
        return self.queries[int(rng.integers(len(self.queries)))], self.passage


def _queries(record: dict, where: str) -> tuple[str, ...]:
    if "queries" in record:
        queries = record["queries"]
        if not isinstance(queries, list) or not queries:
            raise DataError(f"{where}: 'queries' must be a non-empty list of strings")
    elif "query" in record:
        queries = [record["query"]]
    else:
        raise DataError(f"{where}: no 'query' or 'queries' field (fields: {sorted(record)})")
    if not all(isinstance(query, str) and query.strip() for query in queries):
        raise DataError(f"{where}: every query must be a non-empty string")
    return tuple(queries)


def read_pairs(path: str | Path) -> list[QueryPassagePair]:
    """Every (passage, queries) line of a JSONL file, checked; errors name the file and line."""
    pairs = []
    for number, record in read_jsonl(path):
        where = f"{path}:{number}"
        queries = _queries(record, where)
        document = record_to_document(record, where=where)
        text, title = document.content or "", document.meta.get("title")
        if not text.strip():
            raise DataError(f"{where}: the passage has no text")
        if title is not None and not isinstance(title, str):
            raise DataError(f"{where}: 'title' must be a string, got {type(title).__name__}")
        passage = CorpusPassage(text=text, title=title or None, id=document.id, where=where)
        pairs.append(QueryPassagePair(passage, queries))
    if not pairs:
        raise DataError(f"{path}: no (passage, query) pairs")
    return pairs


def pairs_from_field(passages: Sequence[CorpusPassage], field: str = "title") -> list[QueryPassagePair]:
    """Each passage paired with its own ``field`` (``"title"`` or any other field of the corpus), the
    passage read without it. Passages without the field are left out; none having it is an error."""
    pairs = []
    for passage in passages:
        value = passage.title if field == "title" else passage.meta.get(field)
        if not isinstance(value, str) or not value.strip() or not passage.text.strip():
            continue
        stripped = dataclasses.replace(passage, title=None) if field == "title" else passage
        if field != "title":
            stripped = dataclasses.replace(stripped, meta={k: v for k, v in passage.meta.items() if k != field})
        pairs.append(QueryPassagePair(stripped, (value,)))
    if not pairs:
        if not passages:
            raise DataError(f"the corpus is empty: no {field!r} to use as a query")
        first = passages[0]
        fields = sorted({"text", *(["title"] if first.title else []), *first.meta})
        raise DataError(
            f"{first.where}: no passage of this corpus has both text and a non-empty {field!r} to use as its "
            f"query (this line has {', '.join(fields)}); for a corpus without one, draw the queries from the "
            "passages themselves: --pseudo-queries inverse-cloze, cropping or both"
        )
    if len(pairs) < len(passages):
        logger.warning(
            "%d of %d passages have no %r (or no text) and are left out",
            len(passages) - len(pairs),
            len(passages),
            field,
        )
    return pairs


def _already_generated(path: Path) -> set[str]:
    if not path.is_file() or path.stat().st_size == 0:
        return set()
    return {pair.passage.id for pair in read_pairs(path) if pair.passage.id is not None}


def generate_queries(
    model: str | Path,
    passages: Sequence[CorpusPassage],
    output: str | Path,
    *,
    queries_per_passage: int = 20,
    top_k: int = 25,
    top_p: float = 0.95,
    max_length: int = 64,
    prefix: str = "",
    batch_size: int = 16,
    seed: int = 42,
    device: str = "cpu",
    progress_bar: bool = True,
) -> list[QueryPassagePair]:
    """docT5query-style queries for every passage, appended to ``output`` as they are made; passages
    already in ``output`` (by id) are not generated again. Returns every pair in ``output``.

    Sampling as cotmae-qc's ``qg/query_gen.py``: ``top_k=25``, ``top_p=0.95``, queries of at most 64
    tokens, 20 per passage; the input is ``prefix + title + " " + text`` (``"text2query: "`` for
    ``doc2query/all-with_prefix-t5-base-v1``). Each batch is seeded with ``(seed, its first passage)``.
    """
    if any(passage.id is None for passage in passages):
        raise DataError("Generating queries needs an id ('_id' or 'id') on every passage, to know which are done")
    output = Path(output)
    source = local_model_path(model)
    try:
        tokenizer = _from_pretrained(AutoTokenizer, source, local_files_only=False)
        generator = _from_pretrained(AutoModelForSeq2SeqLM, source, local_files_only=False).eval().to(device)
    except (OSError, ValueError) as error:
        raise ModelLoadError(
            f"Query generator {str(model)!r} could not be loaded as a seq2seq model: {_one_line(error)}"
        ) from error
    done = _already_generated(output)
    todo = [(index, passage) for index, passage in enumerate(passages) if passage.id not in done]
    output.parent.mkdir(parents=True, exist_ok=True)
    with (
        output.open("a", encoding="utf-8") as out,
        tqdm(total=len(todo), disable=not progress_bar, desc="Generating queries", unit="passage") as progress,
    ):
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            texts = [prefix + f"{p.title or ''} {p.text}".strip() for _, p in batch]
            encoded = tokenizer(texts, padding=True, truncation=True, max_length=512, return_tensors="pt")
            encoded = {name: encoded[name].to(device) for name in ("input_ids", "attention_mask")}
            torch.manual_seed(seed * 1_000_003 + batch[0][0])
            with torch.inference_mode():
                generated = generator.generate(
                    **encoded,
                    do_sample=True,
                    top_k=top_k,
                    top_p=top_p,
                    max_length=max_length,
                    num_return_sequences=queries_per_passage,
                )
            decoded = [text.strip() for text in tokenizer.batch_decode(generated, skip_special_tokens=True)]
            for row, (_, passage) in enumerate(batch):
                queries = [q for q in decoded[row * queries_per_passage : (row + 1) * queries_per_passage] if q]
                if queries:  # nothing usable: left out, and tried again on the next run
                    record = {"_id": passage.id, "title": passage.title or "", "text": passage.text, "queries": queries}
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
            progress.update(len(batch))
    return read_pairs(output)
