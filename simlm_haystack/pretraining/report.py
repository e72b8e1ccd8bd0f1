"""What pre-training gave: the starting model and the result, each read through its recipe, on the same checks.

A checkpoint comes with the reading it was trained for (its *own* recipe: pooling, lengths, titles).
Pre-training another reading starts from a weaker retriever, and a gain over that weaker start can
still leave the result below the checkpoint read its own way, so the report always compares the
result with the start read its own way, and the verdict line says plainly when the result is worse.

The numbers come from :mod:`.heldout` (held-out pseudo-queries, no labels) and, with judged queries
(``--eval-data``), from :class:`~simlm_haystack.training.RetrievalEvaluator` (nDCG@10 through the
evaluation pipeline).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simlm_haystack.errors import RecipeError
from simlm_haystack.recipe_resolution import resolve_recipe
from simlm_haystack.recipes import VECTOR_FIELDS, Recipe

REPORT_FILE = "pretraining_report.json"
NOT_CHECKED = "Not checked: no held-out pairs (--heldout-share 0) and no --eval-data; whether it helped is unknown."


def own_recipe(model: str | Path) -> Recipe | None:
    """The recipe ``model`` was trained with (saved beside it, or known for its hub id); ``None`` if unknown."""
    try:
        return resolve_recipe(model, None)
    except RecipeError:
        return None


def same_reading(first: Recipe, second: Recipe) -> bool:
    """Whether two recipes give the same vectors (every one of the recipe's ``VECTOR_FIELDS`` equal)."""
    return all(getattr(first, name) == getattr(second, name) for name in VECTOR_FIELDS)


def describe_reading(recipe: Recipe) -> str:
    """``"mean pooling, queries 256 / documents 256 tokens"`` and the rest that differs from the plain reading."""
    parts = [
        f"{'+'.join(recipe.pooling_modes)} pooling",
        f"queries {recipe.query_max_length} / documents {recipe.document_max_length} tokens",
    ]
    if recipe.title_mode == "pair":
        parts.append("(title, text) pairs")
    if recipe.query_prefix or recipe.document_prefix:
        parts.append(f"prefixes {recipe.query_prefix!r} / {recipe.document_prefix!r}")
    if not recipe.normalize:
        parts.append(f"{recipe.similarity}, not normalised")
    return ", ".join(parts)


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)


#: Held-out pseudo-queries are drawn the way the training pairs were, so a model trained on them is favoured.
#: On SciFact, inverse-cloze pre-training gained 4.0 held-out MRR@10 while nDCG@10 on judged queries fell 3.2
#: (BENCHMARKS.md, issue 20): a gain measured this way alone is not proof.
HELDOUT_CAVEAT = (
    "These held-out queries are of the kind it was trained on, which favours it: confirm with judged queries "
    "(--eval-data) before using it."
)


@dataclass
class Reading:
    """One model read through one recipe, and what it scored (percent).

    :param role: ``"start"`` or ``"result"``.
    :param heldout: MRR@10, R@10 and R@100 of the held-out pseudo-queries (``None``: not measured).
    :param judged: nDCG@10, MRR@10 and R@100 on ``--eval-data`` (``None``: not measured).
    """

    role: str
    model: str
    recipe: Recipe
    heldout: dict[str, float] | None = None
    judged: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "model": self.model,
            "recipe": self.recipe.name,
            "reading": describe_reading(self.recipe),
            "heldout": self.heldout,
            "judged": self.judged,
        }


@dataclass
class PretrainingReport:
    """The checks before and after pre-training, and the verdict.

    :param start_own: The starting model read its own way (``None`` when its recipe is unknown).
    :param start_trained: The starting model read through the recipe pre-trained here, when that reading differs
        (or the model's own recipe is unknown).
    :param result: The output, read through the recipe pre-trained here (``None`` until trained).
    :param check: The held-out check's description (source, counts, digest); ``None`` if nothing was held out.
    :param judged_data: ``"<folder> (<split>)"`` of ``--eval-data``, if given.
    """

    model: str
    output: str
    trained_recipe: Recipe
    own_recipe: Recipe | None
    check: dict[str, Any] | None = None
    judged_data: str | None = None
    start_own: Reading | None = None
    start_trained: Reading | None = None
    result: Reading | None = None
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def start(self) -> Reading | None:
        """The reading the result must beat: the start read its own way where that is known."""
        return self.start_own or self.start_trained

    def recipe_warning(self) -> str | None:
        """Said before training when the recipe pre-trained is not the one the checkpoint was trained with."""
        own, trained = self.own_recipe, self.trained_recipe
        if own is None or same_reading(own, trained):
            return None
        text = (
            f"{self.model} was trained to be read as {own.name!r} ({describe_reading(own)}); pre-training reads "
            f"it as {trained.name!r} ({describe_reading(trained)}), a reading it was not trained for."
        )
        scores = [
            f"{reading.recipe.name!r} {self._scores(reading)}"
            for reading in (self.start_own, self.start_trained)
            if reading is not None and (reading.heldout or reading.judged)
        ]
        if scores:
            text += " Before pre-training, read as " + "; read as ".join(scores) + "."
        text += f" Leave --recipe out (or pass --recipe {own.name}) to pre-train the reading it was trained for."
        return text

    @staticmethod
    def _scores(reading: Reading) -> str:
        parts = []
        if reading.heldout:
            parts.append(f"held-out MRR@10 {reading.heldout['MRR@10']:.2f}")
        if reading.judged:
            parts.append(f"nDCG@10 {reading.judged['nDCG@10']:.2f}")
        return ", ".join(parts) if parts else "not measured"

    def verdict(self) -> str:
        """One line: better or worse than the start read its own way, by how much, on which measure."""
        start, result = self.start, self.result
        if start is None or result is None:
            return NOT_CHECKED
        measures = []
        if start.judged and result.judged:
            measures.append((f"nDCG@10 on {self.judged_data}", start.judged["nDCG@10"], result.judged["nDCG@10"]))
        if start.heldout and result.heldout:
            measures.append(("held-out MRR@10", start.heldout["MRR@10"], result.heldout["MRR@10"]))
        if not measures:
            return NOT_CHECKED
        how = "read its own way" if start is self.start_own else f"read as {start.recipe.name!r}"
        (name, before, after), *others = measures
        difference = round(after - before, 2)
        against = f"{name} {after:.2f} against {before:.2f} for {self.model} {how}"
        if difference > 0:
            line = f"Better: the pre-trained model gains {difference:.2f} points ({against})."
            if name == "held-out MRR@10":
                line += f" {HELDOUT_CAVEAT}"
        elif difference < 0:
            line = (
                f"Worse: the pre-trained model loses {-difference:.2f} points ({against}). "
                f"{self.model} {how}, without this pre-training, is the better retriever."
            )
        else:
            line = f"No change: {against}."
        for other_name, other_before, other_after in others:
            other = round(other_after - other_before, 2)
            if _sign(other) != _sign(difference):
                line += f" ({other_name} disagrees: {other_after:.2f} against {other_before:.2f}.)"
        return line

    def lines(self) -> list[str]:
        """The report as the command line prints it, the verdict last (the recipe warning was logged before
        training; its numbers are the rows here)."""
        lines = []
        if self.check:
            lines.append(
                f"Held-out check: {self.check['queries']} pseudo-queries ({self.check['source']}) whose passages were "
                f"never trained on, each searched among {self.check['documents']} passages:"
            )
        elif self.judged_data:
            lines.append("Check:")
        for reading in (self.start_own, self.start_trained, self.result):
            if reading is None:
                continue
            name = "pre-trained model" if reading.role == "result" else self.model
            own = " (its own recipe)" if reading is self.start_own else ""
            scores = []
            if reading.heldout:
                scores.append(
                    f"held-out MRR@10 {reading.heldout['MRR@10']:.2f}, R@10 {reading.heldout['R@10']:.2f}, "
                    f"R@100 {reading.heldout['R@100']:.2f}"
                )
            if reading.judged:
                scores.append(f"nDCG@10 {reading.judged['nDCG@10']:.2f} on {self.judged_data}")
            lines.append(f"  {name}, read as {reading.recipe.name!r}{own}: " + "; ".join(scores))
        lines.append(self.verdict())
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "output": self.output,
            "trained_recipe": self.trained_recipe.name,
            "own_recipe": None if self.own_recipe is None else self.own_recipe.name,
            "check": self.check,
            "judged_data": self.judged_data,
            "start_own": None if self.start_own is None else self.start_own.to_dict(),
            "start_trained": None if self.start_trained is None else self.start_trained.to_dict(),
            "result": None if self.result is None else self.result.to_dict(),
            "warnings": self.warnings,
            "verdict": self.verdict(),
            "timings": self.timings,
        }

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / REPORT_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path
