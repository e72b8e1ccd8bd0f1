"""What a training run is given, as dataclasses: ``HfArgumentParser`` turns them into the
``simlm-haystack train`` flags (``--name`` and ``--name-with-dashes``) or reads them from a JSON
file, as Tevatron and SimLM's own scripts do.

- :class:`ModelArguments`: the checkpoint to start from and its recipe;
- :class:`DataArguments`: training data, hard-negative mining and the evaluation collection;
- :class:`DualEncoderTrainingArguments`: ``transformers.TrainingArguments`` plus the loss, negatives,
  GradCache and TAS settings, with defaults for dual-encoder fine-tuning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from simlm_haystack.training.dev_split import DEV_SEED
from simlm_haystack.training.losses import LOSSES


@dataclass
class ModelArguments:
    """The checkpoint to fine-tune and how it reads texts."""

    _argument_group_name = "model"  # a section of --help (HfArgumentParser)

    model: str = field(metadata={"help": "hub id or local checkpoint directory to start from"})
    recipe: str | None = field(default=None, metadata={"help": "recipe name (found from the model when omitted)"})


@dataclass
class DataArguments:
    """Training data (JSONL or a BEIR folder), hard-negative mining, and the evaluation collection."""

    _argument_group_name = "data"

    train: str = field(metadata={"help": "training JSONL, or a BEIR folder (its --split qrels)"})
    corpus: str | None = field(
        default=None, metadata={"help": "corpus.jsonl to look up the document ids of a training JSONL"}
    )
    split: str = field(default="train", metadata={"help": "qrels split of a BEIR --train folder"})
    dev_queries: float = field(
        default=0,
        metadata={
            "help": "training queries of a BEIR --train folder held out as a dev split: a count (>= 1) or a share "
            "(0 < N < 1), drawn with --dev_seed; the checkpoint scoring best there (nDCG@10, evaluated at each "
            "--save_steps unless --eval_strategy is given) is kept. 0: none, the last checkpoint is kept"
        },
    )
    dev_seed: int = field(default=DEV_SEED, metadata={"help": "seed of the --dev_queries draw"})
    eval: str | None = field(
        default=None,
        metadata={
            "help": "BEIR folder whose --eval_split is evaluated once, after training, on the model kept "
            "(nDCG@10, MRR@10, R@100): reported, never used to choose (choose on --dev_queries)"
        },
    )
    eval_split: str = field(default="test", metadata={"help": "qrels split of the --eval folder"})
    mine_negatives: bool = field(
        default=False,
        metadata={"help": "mine hard negatives with --model first (saved to OUTPUT_DIR/train-mined.jsonl)"},
    )
    mine_ranks: list[int] = field(
        default_factory=lambda: [10, 100],
        metadata={"help": "START STOP: mined negatives are the non-positives ranked START < rank <= STOP"},
    )
    mine_margin: float | None = field(
        default=None, metadata={"help": "keep mined candidates scoring this much below every positive"}
    )

    def __post_init__(self) -> None:
        if len(self.mine_ranks) != 2 or not 0 <= self.mine_ranks[0] < self.mine_ranks[1]:
            raise ValueError(f"mine_ranks must be START STOP with 0 <= START < STOP, not {self.mine_ranks}")


@dataclass
class DualEncoderTrainingArguments(TrainingArguments):
    """``TrainingArguments`` plus what is specific to dual encoders.

    ``per_device_train_batch_size`` is the number of queries per batch (each brings a positive and
    ``n_negatives`` hard negatives; every passage of the batch is a negative for the other queries).
    Some of the Trainer's defaults are changed for fine-tuning a dual encoder (32 queries per batch,
    learning rate 2e-5, 10% warm-up, weight decay 0.01, a log line every 10 steps), and some flags
    keep their short names as aliases (``--output``, ``--batch-size``, ``--epochs``, ``--warmup``,
    ``--negatives``, ``--quiet``, ``--resume``).
    """

    output_dir: str | None = field(
        default=None,
        metadata={
            "help": "output directory (checkpoints, then the final model)",
            "aliases": ["--output"],
            "required": True,
        },
    )
    per_device_train_batch_size: int = field(
        default=32, metadata={"help": "queries per batch (per device)", "aliases": ["--batch-size"]}
    )
    num_train_epochs: float = field(default=3.0, metadata={"help": "epochs", "aliases": ["--epochs"]})
    learning_rate: float = field(default=2e-5, metadata={"help": "peak learning rate (AdamW)"})
    warmup_steps: float = field(
        default=0.1, metadata={"help": "warm-up steps, or a fraction (< 1) of all steps", "aliases": ["--warmup"]}
    )
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    logging_steps: float = field(default=10, metadata={"help": "log the loss every N steps"})
    disable_tqdm: bool | None = field(
        default=None, metadata={"help": "no progress bars", "aliases": ["--quiet"], "nargs": "?", "const": True}
    )
    resume_from_checkpoint: str | None = field(
        default=None,
        metadata={
            "help": "resume from this checkpoint, or (no value, or 'last') from the last one in --output_dir",
            "aliases": ["--resume"],
            "nargs": "?",
            "const": "last",
        },
    )
    loss: str = field(default="infonce", metadata={"help": "the training loss", "choices": tuple(LOSSES)})
    temperature: float | None = field(
        default=None,
        metadata={"help": "contrastive losses: scores / temperature (default: the recipe's, e.g. simlm 0.02)"},
    )
    n_negatives: int = field(
        default=1, metadata={"help": "hard negatives per query (0: in-batch only)", "aliases": ["--negatives"]}
    )
    gather_across_devices: bool = field(
        default=True,
        metadata={
            "help": "with several processes (torchrun), every device's passages are negatives for every query "
            "(embeddings all-gathered with gradients); no effect on one device"
        },
    )
    gradcache_chunk_size: int | None = field(
        default=None,
        metadata={"help": "GradCache: embed the batch this many texts at a time (memory ~ chunk, not batch)"},
    )
    tas_clusters: int = field(
        default=0, metadata={"help": "TAS-Balanced: k-means clusters of queries (0: random batches)"}
    )
    margin_bins: int = field(default=10, metadata={"help": "TAS-Balanced: teacher-margin bins"})
    kl_contrastive_weight: float = field(default=0.2, metadata={"help": "kl loss: weight of the InfoNCE term"})
    pair_alpha: float = field(default=0.1, metadata={"help": "pair loss: weight of the passage-centric term"})

    def __post_init__(self) -> None:
        if self.temperature is not None and self.temperature <= 0:
            raise ValueError(f"temperature must be positive, not {self.temperature}")
        super().__post_init__()
