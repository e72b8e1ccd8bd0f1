"""Pseudo-queries drawn from the passage itself, for corpora with no title or other query-like field.

* **Inverse cloze** (Lee et al., 2019, ORQA's ICT): one sentence of the passage is the query and the
  other sentences are the passage. ORQA leaves the sentence in its passage 10% of the time, so that a
  BERT trained from scratch also learns that shared words matter; here it is cut out every time by
  default (``keep_rate=0``), because the checkpoints pre-trained here are sentence encoders that
  already match words, a kept sentence is solved by copying (a wasted step at CPU scale), and the
  held-out check must never score a passage that contains its own query. ``keep_rate`` brings the
  paper's 0.1 back for training draws.
* **Cropping** (Izacard et al., 2022, Contriever's ``randomcrop``): a random span of the passage's
  words, its length a uniform share between ``min_ratio`` and ``max_ratio`` of them (Contriever:
  0.1-0.5, ``length = int(n x ratio)``, a uniform start), is the query. Contriever's key is a second,
  independent crop that may overlap the first; here the passage is the whole text *with the span cut
  out*, so no query text is left inside it and the passage looks like what is indexed (whole
  passages, not crops). Contriever's token deletion (10%) is not applied.
* **Both**: each draw is inverse cloze or cropping with equal chance (cropping alone for a passage of
  one sentence).

Each draw uses the generator it is given, so a batch draws the same pairs whether or not training
was stopped and resumed (see :mod:`.corpus`). Titles stay with their passages: the query is cut from
the text only.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simlm_haystack.errors import DataError
from simlm_haystack.pretraining.corpus import CorpusPassage

logger = logging.getLogger(__name__)

PSEUDO_QUERIES = ("inverse-cloze", "cropping", "both")

#: A sentence ends at ., ! or ? followed by white space and what can start a sentence.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
#: Pieces shorter than this many words ("Methods.", "Fig. 2.") join the next sentence: alone, they are
#: no query and no passage.
MIN_SENTENCE_WORDS = 3


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` (a rule, not a parser: end punctuation, white space, a capital or digit);
    pieces of fewer than :data:`MIN_SENTENCE_WORDS` words are joined to the next (the last to the previous)."""
    sentences: list[str] = []
    pending = ""
    for piece in _SENTENCE_END.split(text.strip()):
        piece = f"{pending} {piece}".strip() if pending else piece.strip()
        if len(piece.split()) < MIN_SENTENCE_WORDS:
            pending = piece
            continue
        sentences.append(piece)
        pending = ""
    if pending:
        if sentences:
            sentences[-1] = f"{sentences[-1]} {pending}"
        else:
            sentences.append(pending)
    return [sentence for sentence in sentences if sentence]


@dataclass(frozen=True)
class InverseClozePassage:
    """A passage split into sentences; each draw makes one of them the query."""

    passage: CorpusPassage
    sentences: tuple[str, ...]
    keep_rate: float = 0.0

    @property
    def document(self) -> CorpusPassage:
        return self.passage

    def draw(self, rng: np.random.Generator, *, evaluation: bool = False) -> tuple[str, CorpusPassage]:
        chosen = int(rng.integers(len(self.sentences)))
        keep = rng.random() < self.keep_rate and not evaluation  # always drawn: one rng stream whatever the rate
        rest = self.sentences if keep else self.sentences[:chosen] + self.sentences[chosen + 1 :]
        return self.sentences[chosen], dataclasses.replace(self.passage, text=" ".join(rest))


@dataclass(frozen=True)
class CroppedPassage:
    """A passage as words; each draw cuts one random span out of it as the query."""

    passage: CorpusPassage
    words: tuple[str, ...]
    min_ratio: float = 0.1
    max_ratio: float = 0.5

    @property
    def document(self) -> CorpusPassage:
        return self.passage

    def draw(self, rng: np.random.Generator, *, evaluation: bool = False) -> tuple[str, CorpusPassage]:
        count = len(self.words)
        ratio = rng.uniform(self.min_ratio, self.max_ratio)
        # Contriever's int(n x ratio), but at least one word and at least one word left for the passage.
        length = min(max(1, int(count * ratio)), count - 1)
        start = int(rng.integers(count - length + 1))
        query = " ".join(self.words[start : start + length])
        rest = self.words[:start] + self.words[start + length :]
        return query, dataclasses.replace(self.passage, text=" ".join(rest))


@dataclass(frozen=True)
class MixedPassage:
    """Inverse cloze or cropping with equal chance at each draw; cropping alone where there is one sentence."""

    cropped: CroppedPassage
    inverse_cloze: InverseClozePassage | None

    @property
    def document(self) -> CorpusPassage:
        return self.cropped.passage

    def draw(self, rng: np.random.Generator, *, evaluation: bool = False) -> tuple[str, CorpusPassage]:
        use_cloze = rng.random() < 0.5
        if use_cloze and self.inverse_cloze is not None:
            return self.inverse_cloze.draw(rng, evaluation=evaluation)
        return self.cropped.draw(rng, evaluation=evaluation)


PassageSource = InverseClozePassage | CroppedPassage | MixedPassage


def pseudo_query_pairs(
    passages: Sequence[CorpusPassage],
    kind: str,
    *,
    keep_rate: float = 0.0,
    min_ratio: float = 0.1,
    max_ratio: float = 0.5,
) -> list[PassageSource]:
    """Every passage that can be split as ``kind`` says (inverse cloze: 2 sentences or more; cropping and
    both: 2 words or more); the others are left out with a warning, and none left is a
    :class:`~simlm_haystack.errors.DataError` naming the first passage's line."""
    if kind not in PSEUDO_QUERIES:
        raise DataError(f"pseudo-queries must be one of {', '.join(PSEUDO_QUERIES)}, not {kind!r}")
    if not 0 <= keep_rate < 1:
        raise DataError(f"the inverse cloze keep rate must be within [0, 1), not {keep_rate}")
    if not 0 < min_ratio <= max_ratio < 1:
        raise DataError(f"need 0 < crop min ratio <= max ratio < 1, got {min_ratio}, {max_ratio}")
    sources: list[PassageSource] = []
    too_short: list[CorpusPassage] = []
    for passage in passages:
        sentences = tuple(split_sentences(passage.text))
        words = tuple(passage.text.split())
        cloze = InverseClozePassage(passage, sentences, keep_rate) if len(sentences) >= 2 else None
        cropped = CroppedPassage(passage, words, min_ratio, max_ratio) if len(words) >= 2 else None
        source: PassageSource | None
        if kind == "inverse-cloze":
            source = cloze
        elif kind == "cropping":
            source = cropped
        else:
            source = MixedPassage(cropped, cloze) if cropped is not None else None
        if source is None:
            too_short.append(passage)
        else:
            sources.append(source)
    unit = "sentences" if kind == "inverse-cloze" else "words"
    if not sources:
        first = too_short[0] if too_short else None
        where = first.where if first is not None else "the corpus"
        raise DataError(
            f"{where}: no passage is long enough to split into a query and a passage ({kind} needs 2 {unit} "
            "or more of text)" + ("" if kind == "cropping" else "; --pseudo-queries cropping needs only 2 words")
        )
    if too_short:
        shown = ", ".join(p.where for p in too_short[:3]) + (", ..." if len(too_short) > 3 else "")
        logger.warning(
            "%d of %d passages have fewer than 2 %s to split into a query and a passage (%s) and are left out of %s",
            len(too_short),
            len(passages),
            unit,
            shown,
            kind,
        )
    return sources
