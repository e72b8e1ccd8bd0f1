"""SimLM's generator: what fills the masked words before the encoder sees them.

The paper freezes a masked language model (``google/electra-base-generator``) and samples each
masked token from its output. Any masked LM works if it shares the encoder's vocabulary; one that
does not is refused before training, as is a checkpoint with no masked-LM head (all-MiniLM-L6-v2 is a
sentence encoder, not a masked LM).

Where no generator can be had (offline), two fallbacks, both weaker than a generator pre-trained on
a large corpus: ``corpus`` trains a small masked LM on the corpus first (see :mod:`.mlm`), and
``unigram`` samples each replacement from the corpus's own unigram distribution. A unigram draw
rarely fits its context, so spotting and undoing it teaches the encoder less than undoing a
generator's plausible guesses.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModelForMaskedLM, AutoTokenizer, PreTrainedTokenizerBase

from simlm_haystack.encoding import tokenize
from simlm_haystack.errors import DataError, ModelLoadError
from simlm_haystack.models import _from_pretrained, local_model_path
from simlm_haystack.pretraining.backbone import head_logits
from simlm_haystack.pretraining.corpus import CorpusPassage
from simlm_haystack.pretraining.corpus import one_line as _one_line
from simlm_haystack.recipes import Recipe

#: The paper's generator (scripts/train_rlm.sh), for BERT's uncased WordPiece vocabulary.
PAPER_GENERATOR = "google/electra-base-generator"
UNIGRAM = "unigram"
CORPUS = "corpus"

NO_GENERATOR_HINT = (
    "SimLM's replaced language modelling needs a frozen generator: a masked language model sharing the "
    f"encoder's vocabulary (the paper uses {PAPER_GENERATOR} for BERT's uncased vocabulary). "
    f"Without one, pass --generator {CORPUS}: a small masked LM (the encoder's first --generator-layers layers) "
    f"trained on the corpus first, or --generator {UNIGRAM}: replacements drawn from the corpus's unigram "
    "distribution. Both are weaker than a generator pre-trained on a large corpus (unigram draws most: they "
    "rarely fit their context, so the encoder learns less from undoing them)."
)


def sample_categorical(logits: torch.Tensor) -> torch.Tensor:
    """One index per row, drawn with probability softmax(logits), by inverting the cumulative distribution
    (what ``Categorical(logits=...).sample()`` draws, several times faster on a CPU over 30k tokens)."""
    cumulative = torch.softmax(logits.float(), dim=-1).cumsum(dim=-1)
    draws = torch.rand(len(logits), 1, device=logits.device) * cumulative[:, -1:]
    return torch.searchsorted(cumulative, draws).squeeze(1).clamp(max=logits.shape[-1] - 1)


class Generator(nn.Module, ABC):
    """Replaces the masked positions of a batch; everything else is left as it is. Never trained."""

    def replace(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, mask: torch.Tensor, **features: torch.Tensor
    ) -> torch.Tensor:
        replaced = input_ids.clone()
        if mask.any():
            with torch.no_grad():
                replaced[mask] = self.sample(input_ids, attention_mask, mask, **features)
        return replaced

    @abstractmethod
    def sample(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, mask: torch.Tensor, **features: torch.Tensor
    ) -> torch.Tensor:
        """One token id for each ``True`` of ``mask``, in row-major order."""

    def train(self, mode: bool = True) -> Generator:
        return super().train(False)  # frozen: no dropout, whatever the model around it does


class MaskedLMGenerator(Generator):
    """A frozen masked LM: the masked positions become [MASK], and each is sampled from its prediction."""

    def __init__(self, masked_lm: nn.Module, mask_token_id: int, vocab_size: int) -> None:
        super().__init__()
        self.masked_lm = masked_lm.eval().requires_grad_(False)
        self.mask_token_id = mask_token_id
        self.vocab_size = vocab_size
        self.accepted = set(inspect.signature(masked_lm.forward).parameters)

    def sample(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, mask: torch.Tensor, **features: torch.Tensor
    ) -> torch.Tensor:
        inputs = {name: value for name, value in features.items() if name in self.accepted}
        inputs.update(input_ids=input_ids.masked_fill(mask, self.mask_token_id), attention_mask=attention_mask)
        hidden = self.masked_lm.base_model(**inputs).last_hidden_state
        logits = head_logits(self.masked_lm, hidden[mask])
        if logits is None:  # a family whose head we do not know: every position, then the masked ones
            logits = self.masked_lm(**inputs).logits[mask]
        # A generator's output layer may be padded past the tokenizer; only the encoder's ids can be sampled.
        return sample_categorical(logits[:, : self.vocab_size])


class UnigramGenerator(Generator):
    """Replacements drawn from the corpus's token frequencies (special tokens excluded)."""

    def __init__(self, counts: torch.Tensor) -> None:
        super().__init__()
        if counts.sum() <= 0:
            raise DataError("The corpus has no tokens to draw replacements from")
        self.register_buffer("probabilities", counts.double() / counts.sum(), persistent=False)

    @classmethod
    def from_passages(
        cls,
        tokenizer: PreTrainedTokenizerBase,
        recipe: Recipe,
        passages: Sequence[CorpusPassage],
        vocab_size: int,
        *,
        batch_size: int = 1024,
    ) -> UnigramGenerator:
        """Token counts over the corpus in the recipe's document form (one pass of the fast tokenizer)."""
        counts: Counter[int] = Counter()
        for start in range(0, len(passages), batch_size):
            batch = passages[start : start + batch_size]
            encoded = tokenize(tokenizer, recipe, "document", [p.text for p in batch], [p.title for p in batch])
            for ids in encoded["input_ids"]:
                counts.update(ids)
        for special in tokenizer.all_special_ids:
            counts.pop(special, None)
        table = torch.zeros(vocab_size, dtype=torch.float64)
        for token, count in counts.items():
            table[token] = count
        return cls(table)

    def sample(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, mask: torch.Tensor, **features: torch.Tensor
    ) -> torch.Tensor:
        drawn = torch.multinomial(self.probabilities, int(mask.sum()), replacement=True)
        return drawn.to(input_ids.device)


def _first_difference(ours: dict[str, int], theirs: dict[str, int]) -> str:
    for token, index in sorted(ours.items(), key=lambda item: item[1]):
        if theirs.get(token) != index:
            return f"{token!r} is {index} for the encoder but {theirs.get(token)} for the generator"
    extra = sorted(set(theirs) - set(ours), key=theirs.__getitem__)
    return f"the generator has {len(extra)} tokens the encoder lacks, e.g. {extra[0]!r}"


def load_generator(
    spec: str | Path,
    tokenizer: PreTrainedTokenizerBase,
    vocab_size: int,
    *,
    recipe: Recipe,
    passages: Sequence[CorpusPassage],
) -> Generator:
    """The generator ``spec`` names (a checkpoint, or ``"unigram"``), checked against the encoder's tokenizer."""
    if str(spec) == UNIGRAM:
        return UnigramGenerator.from_passages(tokenizer, recipe, passages, vocab_size)
    source = local_model_path(spec)
    try:
        generator_tokenizer = _from_pretrained(AutoTokenizer, source, local_files_only=False)
        masked_lm, info = _from_pretrained(
            AutoModelForMaskedLM, source, local_files_only=False, output_loading_info=True
        )
    except (OSError, ValueError) as error:
        raise ModelLoadError(
            f"Generator {str(spec)!r} could not be loaded ({_one_line(error)}). {NO_GENERATOR_HINT}"
        ) from error
    prefix = masked_lm.base_model_prefix + "."
    head_missing = [key for key in info["missing_keys"] if not key.startswith(prefix)]
    if head_missing:
        raise ModelLoadError(
            f"Generator {str(spec)!r} is not a masked language model: its checkpoint has no masked-LM head "
            f"(missing {', '.join(sorted(head_missing)[:3])}). {NO_GENERATOR_HINT}"
        )
    ours, theirs = tokenizer.get_vocab(), generator_tokenizer.get_vocab()
    if ours != theirs:
        raise ModelLoadError(
            f"Generator {str(spec)!r} does not share the encoder's vocabulary ({len(theirs)} vs {len(ours)} tokens; "
            f"{_first_difference(ours, theirs)}): its samples would be other tokens to the encoder. {NO_GENERATOR_HINT}"
        )
    return MaskedLMGenerator(masked_lm, tokenizer.mask_token_id, vocab_size)
