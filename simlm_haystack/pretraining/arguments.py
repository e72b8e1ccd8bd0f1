"""Arguments, as dataclasses for ``HfArgumentParser`` (the command line, or one JSON file).

Defaults are the papers'. SimLM (unilm ``simlm/scripts/train_rlm.sh``): encoder mask 30%, decoder
mask 50%, a 2-layer decoder, the frozen ``google/electra-base-generator``, learning rate 3e-4 with
4,000 warm-up steps of 80,000 (a ratio of 0.05), no weight decay, passages of 144 tokens (the
recipe's), batches of 2,048 (64 per GPU x 4 accumulation x 8 GPUs). Query-as-context (cotmae-qc
README): contrastive, 15% masks, learning rate 1e-4, weight decay 0.01, warm-up 0.1, batches of
2,048 through GradCache (chunks of 64); generative, 30% masks, a 1-layer decoder with attention
window 3, learning rate 4e-4, weight decay 0.01, warm-up 0.1, batches of 16k. Batch sizes are left
to the user (``per_device_train_batch_size``, ``gradient_accumulation_steps``): the papers' need GPUs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
from transformers import TrainingArguments

from simlm_haystack.fast import native_bf16
from simlm_haystack.pretraining.generator import PAPER_GENERATOR
from simlm_haystack.pretraining.pseudo_queries import PSEUDO_QUERIES
from simlm_haystack.pretraining.query_as_context import VARIANTS

logger = logging.getLogger(__name__)

METHODS = ("simlm", "query-as-context")

#: The papers' optimiser settings per method (and query-as-context variant).
METHOD_DEFAULTS: dict[str, dict[str, float]] = {
    "simlm": {"learning_rate": 3e-4, "weight_decay": 0.0, "warmup_steps": 0.05, "decoder_layers": 2},
    # contrastive: no masked-LM term by default (cotmae-qc adds 15%): on SciFact it did not help and its loss,
    # through a fresh head, dominated the contrastive one (BENCHMARKS.md, issue 12's second round).
    "contrastive": {"learning_rate": 1e-4, "weight_decay": 0.01, "warmup_steps": 0.1, "qc_mask_rate": 0.0},
    "generative": {
        "learning_rate": 4e-4,
        "weight_decay": 0.01,
        "warmup_steps": 0.1,
        "qc_mask_rate": 0.3,
        "decoder_layers": 1,
    },
}


@dataclass
class PretrainingDataArguments:
    """What to pre-train and on what."""

    model: str = field(metadata={"help": "checkpoint to start from (a BERT or DistilBERT encoder)"})
    recipe: str | None = field(
        default=None,
        metadata={
            "help": "recipe to pre-train (default: the model's own, saved or known; another one is warned about)"
        },
    )
    corpus: str | None = field(default=None, metadata={"help": "JSONL corpus (a BEIR corpus.jsonl as it is)"})
    pairs: str | None = field(
        default=None,
        metadata={"help": "query-as-context: JSONL of passages with 'query' or 'queries' (instead of --corpus)"},
    )
    query_field: str | None = field(
        default=None, metadata={"help": "query-as-context: use this passage field (e.g. title) as the query"}
    )
    query_generator: str | None = field(
        default=None, metadata={"help": "query-as-context: a doc2query seq2seq checkpoint to generate queries with"}
    )
    queries_file: str | None = field(
        default=None, metadata={"help": "where generated queries are kept (default: OUTPUT/generated_queries.jsonl)"}
    )
    queries_per_passage: int = field(default=20, metadata={"help": "generated queries per passage"})
    query_top_k: int = field(default=25, metadata={"help": "query generation: top-k sampling"})
    query_top_p: float = field(default=0.95, metadata={"help": "query generation: top-p (nucleus) sampling"})
    query_max_length: int = field(default=64, metadata={"help": "query generation: longest query, in tokens"})
    query_prefix: str = field(default="", metadata={"help": "query generation: text put before each passage"})
    pseudo_queries: str | None = field(
        default=None,
        metadata={
            "choices": list(PSEUDO_QUERIES),
            "help": "queries cut from the passage itself: a sentence (inverse-cloze), a random span (cropping), or "
            "either at each draw (both); for corpora without titles. With --method simlm: the held-out check's "
            "queries (default both)",
        },
    )
    ict_keep_rate: float = field(
        default=0.0,
        metadata={"help": "inverse cloze: share of training draws whose sentence stays in its passage (ORQA: 0.1)"},
    )
    crop_min_ratio: float = field(default=0.1, metadata={"help": "cropping: shortest span, share of the words"})
    crop_max_ratio: float = field(default=0.5, metadata={"help": "cropping: longest span, share of the words"})
    heldout_share: float = field(
        default=0.05,
        metadata={"help": "share of the (pseudo-query, passage) pairs held out of training for the check (0: none)"},
    )
    heldout_max_queries: int = field(default=500, metadata={"help": "at most this many held-out pairs"})
    heldout_corpus_size: int = field(
        default=10_000,
        metadata={"help": "the check searches the whole corpus up to this many passages (beyond: a fixed sample)"},
    )
    heldout_seed: int = field(default=0, metadata={"help": "which pairs are held out (the same for every run)"})
    eval_data: str | None = field(
        default=None, metadata={"help": "a BEIR folder: also measure nDCG@10 on its judged queries, before and after"}
    )
    eval_split: str = field(default="test", metadata={"help": "the --eval-data qrels split"})
    score_cache: str | None = field(
        default=None,
        metadata={"help": "folder where the starting model's scores are kept for later runs (default: the output)"},
    )

    def __post_init__(self) -> None:
        if self.pseudo_queries is not None and self.pseudo_queries not in PSEUDO_QUERIES:
            raise ValueError(f"pseudo_queries must be one of {PSEUDO_QUERIES}, not {self.pseudo_queries!r}")
        if not 0 <= self.ict_keep_rate < 1:
            raise ValueError(f"ict_keep_rate must be within [0, 1), not {self.ict_keep_rate}")
        if not 0 < self.crop_min_ratio <= self.crop_max_ratio < 1:
            raise ValueError(
                f"need 0 < crop_min_ratio <= crop_max_ratio < 1, got {self.crop_min_ratio}, {self.crop_max_ratio}"
            )
        if not 0 <= self.heldout_share < 1:
            raise ValueError(f"heldout_share must be within [0, 1), not {self.heldout_share}")
        if self.heldout_corpus_size < 1:
            raise ValueError(f"heldout_corpus_size must be positive, not {self.heldout_corpus_size}")


@dataclass
class PretrainingArguments(TrainingArguments):
    """``TrainingArguments`` plus the pre-training methods' own settings. ``None`` means the method's default."""

    output_dir: str | None = field(
        default=None, metadata={"aliases": ["--output"], "help": "where checkpoints and the encoder are written"}
    )
    method: str = field(default="simlm", metadata={"help": "simlm or query-as-context"})
    qc_variant: str = field(default="contrastive", metadata={"help": "query-as-context: contrastive or generative"})
    generator: str = field(
        default=PAPER_GENERATOR,
        metadata={"help": "simlm: a frozen masked LM sharing the encoder's vocabulary; offline: 'corpus' or 'unigram'"},
    )
    generator_layers: int = field(
        default=2, metadata={"help": "simlm, --generator corpus: the generator is the encoder's first N layers"}
    )
    generator_steps: int = field(
        default=500, metadata={"help": "simlm, --generator corpus: training steps of the generator, before SimLM's"}
    )
    encoder_mask_rate: float = field(default=0.3, metadata={"help": "simlm: share of tokens the encoder sees replaced"})
    decoder_mask_rate: float = field(
        default=0.5, metadata={"help": "simlm: share the decoder sees replaced (a superset)"}
    )
    decoder_layers: int | None = field(default=None, metadata={"help": "decoder depth (simlm 2, generative qc 1)"})
    qc_mask_rate: float | None = field(
        default=None,
        metadata={"help": "query-as-context masked-LM rate (contrastive 0: none, cotmae-qc used 0.15; generative 0.3)"},
    )
    attention_window: int = field(
        default=3, metadata={"help": "generative qc: each query token sees [CLS] and this many tokens up to itself"}
    )
    temperature: float | None = field(
        default=None, metadata={"help": "contrastive qc: scores / temperature (default: the recipe's)"}
    )
    gradcache_chunk_size: int | None = field(
        default=None, metadata={"help": "contrastive qc: GradCache, embedding this many texts at a time"}
    )
    freeze_embeddings: bool = field(
        default=False,
        metadata={"help": "do not train the embeddings (token, position, type; the tied masked-LM projection too)"},
    )
    freeze_layers: int = field(default=0, metadata={"help": "do not train the encoder's first N layers"})
    learning_rate: float | None = field(default=None, metadata={"help": "default: the method's (see above)"})
    weight_decay: float | None = field(default=None, metadata={"help": "default: the method's"})
    warmup_steps: float | None = field(default=None, metadata={"help": "steps, or a ratio < 1; default: the method's"})
    remove_unused_columns: bool = field(default=False, metadata={"help": "keep: the collator builds the inputs"})
    ddp_find_unused_parameters: bool | None = field(
        default=False, metadata={"help": "torchrun: every trained parameter is used in every step"}
    )
    resume_from_checkpoint: str | None = field(
        default=None, metadata={"aliases": ["--resume"], "help": "a checkpoint, or 'true' for the last in OUTPUT"}
    )

    def __post_init__(self) -> None:
        if not self.output_dir:
            raise ValueError("an output directory is required (--output): the encoder is written there")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, not {self.method!r}")
        if self.qc_variant not in VARIANTS:
            raise ValueError(f"qc_variant must be one of {VARIANTS}, not {self.qc_variant!r}")
        if not 0 < self.encoder_mask_rate <= self.decoder_mask_rate <= 1:
            raise ValueError(
                f"need 0 < encoder_mask_rate <= decoder_mask_rate <= 1, got {self.encoder_mask_rate}, "
                f"{self.decoder_mask_rate}"
            )
        defaults = METHOD_DEFAULTS["simlm" if self.method == "simlm" else self.qc_variant]
        for name, value in defaults.items():
            if getattr(self, name, None) is None:
                setattr(self, name, value)
        if self.freeze_layers < 0:
            raise ValueError(f"freeze_layers must be 0 or more, not {self.freeze_layers}")
        if self.qc_mask_rate is not None and not 0 <= self.qc_mask_rate < 1:
            raise ValueError(f"qc_mask_rate must be within [0, 1), not {self.qc_mask_rate}")
        on_cpu = self.use_cpu or not torch.cuda.is_available()
        if on_cpu and (self.fp16 or (self.bf16 and not native_bf16())):
            # Emulated half precision on a CPU is several times slower than fp32, for nothing.
            logger.warning("This CPU has no native %s: training in fp32", "fp16" if self.fp16 else "bf16")
            self.bf16 = self.fp16 = False
        super().__post_init__()
