"""Pre-training on an unlabeled corpus: SimLM's replaced language modelling with a bottleneck, and
query-as-context pre-training (contrastive or generative).

The output is an encoder checkpoint with its tokenizer and recipe file: the embedders load it, and
the fine-tuning trainer (:mod:`simlm_haystack.training`) fine-tunes it, which is the SimLM paper's
pipeline: pre-train -> fine-tune with mined hard negatives -> (optionally) distil from a teacher.

Python::

    from simlm_haystack.pretraining import PretrainingArguments, pretrain, read_passages

    args = PretrainingArguments(output_dir="out", method="simlm", generator="unigram",
                                per_device_train_batch_size=32, max_steps=1000)
    pretrain("sentence-transformers/all-MiniLM-L6-v2", args, passages=read_passages("corpus.jsonl"),
             recipe="simlm")

Command line (``simlm-haystack pretrain ...`` parses these arguments and calls :func:`.run.run`)::

    simlm-haystack pretrain --method simlm --model M --recipe simlm --corpus corpus.jsonl \\
        --generator google/electra-base-generator --output OUT --max-steps 1000
    simlm-haystack pretrain --method query-as-context --qc-variant generative --model M --recipe simlm \\
        --corpus corpus.jsonl --query-field title --output OUT

Pieces: :mod:`.corpus` (passages, batches), :mod:`.masking` (whole-word masks, collators),
:mod:`.backbone` (embeddings, layers and masked-LM head of BERT / DistilBERT), :mod:`.generator`
(frozen masked LM, or the unigram fallback), :mod:`.rlm` (SimLM), :mod:`.pairs` and
:mod:`.query_as_context` (query-as-context), :mod:`.trainer`, :mod:`.arguments`, :mod:`.run` (data
checked, then pre-training).
"""

from simlm_haystack.pretraining.arguments import METHODS, PretrainingArguments, PretrainingDataArguments
from simlm_haystack.pretraining.corpus import CorpusPassage, PassageBatchSampler, read_passages
from simlm_haystack.pretraining.generator import (
    PAPER_GENERATOR,
    UNIGRAM,
    MaskedLMGenerator,
    UnigramGenerator,
    load_generator,
)
from simlm_haystack.pretraining.heldout import HeldOutCheck, hold_out, label_free_scores
from simlm_haystack.pretraining.masking import ReplacedLMCollator, WholeWordMasker, nested_whole_word_masks, word_spans
from simlm_haystack.pretraining.pairs import (
    PseudoQueryPair,
    QueryPassagePair,
    generate_queries,
    pairs_from_field,
    read_pairs,
)
from simlm_haystack.pretraining.pseudo_queries import (
    PSEUDO_QUERIES,
    CroppedPassage,
    InverseClozePassage,
    MixedPassage,
    pseudo_query_pairs,
    split_sentences,
)
from simlm_haystack.pretraining.query_as_context import VARIANTS, QueryAsContextCollator, QueryAsContextModel
from simlm_haystack.pretraining.report import PretrainingReport, Reading, own_recipe
from simlm_haystack.pretraining.rlm import ReplacedLanguageModel
from simlm_haystack.pretraining.trainer import PretrainingTrainer, build_pretrainer, pretrain

__all__ = [
    "METHODS",
    "PAPER_GENERATOR",
    "PSEUDO_QUERIES",
    "UNIGRAM",
    "VARIANTS",
    "CorpusPassage",
    "CroppedPassage",
    "HeldOutCheck",
    "InverseClozePassage",
    "MaskedLMGenerator",
    "MixedPassage",
    "PassageBatchSampler",
    "PretrainingArguments",
    "PretrainingDataArguments",
    "PretrainingReport",
    "PretrainingTrainer",
    "PseudoQueryPair",
    "QueryAsContextCollator",
    "QueryAsContextModel",
    "QueryPassagePair",
    "Reading",
    "ReplacedLMCollator",
    "ReplacedLanguageModel",
    "UnigramGenerator",
    "WholeWordMasker",
    "build_pretrainer",
    "generate_queries",
    "hold_out",
    "label_free_scores",
    "load_generator",
    "nested_whole_word_masks",
    "own_recipe",
    "pairs_from_field",
    "pretrain",
    "pseudo_query_pairs",
    "read_pairs",
    "read_passages",
    "split_sentences",
    "word_spans",
]
