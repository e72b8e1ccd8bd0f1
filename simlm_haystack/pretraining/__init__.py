"""Pre-training on an unlabeled corpus: SimLM's replaced language modelling with a bottleneck, and
query-as-context pre-training (contrastive or generative), with a label-free check of what it gave.

The output is an encoder checkpoint with its tokenizer and recipe file: the embedders load it, and
the fine-tuning trainer (:mod:`simlm_haystack.training`) fine-tunes it, which is the SimLM paper's
pipeline: pre-train -> fine-tune with mined hard negatives -> (optionally) distil from a teacher.

Python (:func:`.run.run` is what the command line calls: checks, pre-training, report)::

    from simlm_haystack.pretraining import PretrainingArguments, PretrainingDataArguments
    from simlm_haystack.pretraining.run import run

    data = PretrainingDataArguments(model="sentence-transformers/all-MiniLM-L6-v2", corpus="corpus.jsonl",
                                    pseudo_queries="inverse-cloze")
    outcome = run(data, PretrainingArguments(output_dir="out", method="query-as-context"))
    print(outcome.report.verdict())

or the trainer alone: ``pretrain(model, args, passages=read_passages("corpus.jsonl"))``.

Command line (``simlm-haystack pretrain ...`` parses these arguments and calls :func:`.run.run`)::

    simlm-haystack pretrain --method query-as-context --model M --corpus corpus.jsonl \
        --query-field title --output OUT        # or --pseudo-queries inverse-cloze|cropping|both
    simlm-haystack pretrain --method simlm --model M --corpus corpus.jsonl \
        --generator google/electra-base-generator --output OUT --max-steps 1000 --eval-data path/to/beir

The model is pre-trained in its own reading (recipe) unless ``--recipe`` names another, which is
warned about with the scores of both readings. A share of the pairs is held out of training; the
report scores the start (read its own way) and the result on them, and on ``--eval-data``'s judged
queries, and ends with one line: better or worse, by how much.

Pieces: :mod:`.corpus` (passages, batches), :mod:`.masking` (whole-word masks, collators),
:mod:`.backbone` (embeddings, layers and masked-LM head of BERT / DistilBERT; freezing), :mod:`.generator`
(frozen masked LM, or the unigram fallback), :mod:`.rlm` (SimLM), :mod:`.pairs` and
:mod:`.pseudo_queries` (query sources: a field, a file, a doc2query model, inverse cloze, cropping),
:mod:`.query_as_context` (query-as-context), :mod:`.trainer`, :mod:`.arguments`, :mod:`.heldout` (the
label-free check), :mod:`.report` (readings, recipe warning, verdict), :mod:`.run` (data checked, start
checked, pre-training, result checked).
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
