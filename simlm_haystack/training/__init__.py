"""Fine-tuning SimLM / TAS-B style dual encoders with the recipes they were trained with.

Training reads queries and passages through the same code as the embedders
(:func:`simlm_haystack.encoding.tokenize` and :func:`~simlm_haystack.encoding.embed_features`), so
what is trained is what is served, and the output directory (weights, tokenizer and
``simlm_haystack_recipe.json``) loads with ``AutoModel.from_pretrained`` and with
``DualEncoderDocumentEmbedder(model=OUT)``.

Python::

    from simlm_haystack.evaluation import load_beir
    from simlm_haystack.training import DualEncoderTrainingArguments, load_beir_training, train

    examples = load_beir_training("scifact", split="train")       # or load_training_jsonl(path, corpus=...)
    args = DualEncoderTrainingArguments(output_dir="out", loss="infonce", n_negatives=0,
                                        per_device_train_batch_size=32, learning_rate=3e-5,
                                        num_train_epochs=3, warmup_steps=0.1, seed=42)
    train("sentence-transformers/all-MiniLM-L6-v2", examples, args, recipe="simlm")

Command line (one process)::

    simlm-haystack train --model sentence-transformers/all-MiniLM-L6-v2 --recipe simlm \\
        --train /data/scifact --mine-negatives --output out

Several GPUs or machines: the trainer is a ``transformers.Trainer``, so the same command runs under
``torchrun`` or ``accelerate launch`` with no other change; ``--batch-size`` is then per device::

    torchrun --nproc_per_node 4 -m simlm_haystack.cli train --model M --recipe simlm \\
        --train data.jsonl --corpus corpus.jsonl --output out --bf16
    accelerate launch --num_processes 4 -m simlm_haystack.cli train ...

``bf16=True`` (``--bf16``) trains under bf16 autocast: faster on GPUs and on CPUs with AVX-512 BF16
or AMX; on a CPU without them (AVX2 only) PyTorch emulates it and it is several times slower.

With several processes, in-batch negatives are those of each device's batch (no all-gather), and
GradCache (``--gradcache-chunk-size``) runs one backward pass per chunk, which DistributedDataParallel
does not expect: use it on one device, where it is meant to save memory.

Pieces: :mod:`~simlm_haystack.training.data` (JSONL or BEIR train split, checked with line numbers),
:mod:`~simlm_haystack.training.mining` (hard negatives through the evaluator's Qdrant retrieval),
:mod:`~simlm_haystack.training.losses` (InfoNCE, Margin-MSE, KL distillation, PAIR),
:mod:`~simlm_haystack.training.samplers` (random and TAS-Balanced batches),
:mod:`~simlm_haystack.training.trainer` (the Trainer, GradCache, evaluation, recipe saving).
"""

from simlm_haystack.training.data import (
    Draw,
    Passage,
    TrainingDataset,
    TrainingExample,
    check_examples,
    load_beir_training,
    load_corpus,
    load_training_jsonl,
    passage_from_document,
    save_training_jsonl,
)
from simlm_haystack.training.losses import (
    LOSSES,
    InfoNCELoss,
    KLDistillationLoss,
    MarginMSELoss,
    PairLoss,
    build_loss,
)
from simlm_haystack.training.mining import mine_hard_negatives, negatives_from_run
from simlm_haystack.training.samplers import ShuffledBatchSampler, TasBalancedBatchSampler, kmeans
from simlm_haystack.training.trainer import (
    DualEncoderCollator,
    DualEncoderTrainer,
    DualEncoderTrainingArguments,
    build_trainer,
    train,
)

__all__ = [
    "LOSSES",
    "Draw",
    "DualEncoderCollator",
    "DualEncoderTrainer",
    "DualEncoderTrainingArguments",
    "InfoNCELoss",
    "KLDistillationLoss",
    "MarginMSELoss",
    "PairLoss",
    "Passage",
    "ShuffledBatchSampler",
    "TasBalancedBatchSampler",
    "TrainingDataset",
    "TrainingExample",
    "build_loss",
    "build_trainer",
    "check_examples",
    "kmeans",
    "load_beir_training",
    "load_corpus",
    "load_training_jsonl",
    "mine_hard_negatives",
    "negatives_from_run",
    "passage_from_document",
    "save_training_jsonl",
    "train",
]
