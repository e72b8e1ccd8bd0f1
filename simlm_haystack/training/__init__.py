"""Fine-tuning SimLM / TAS-B style dual encoders with the recipes they were trained with.

Training reads queries and passages through the same code as the embedders
(:func:`simlm_haystack.encoding.tokenize` and :func:`~simlm_haystack.encoding.embed_features`), so
what is trained is what is served, and the output directory (weights, tokenizer and
``simlm_haystack_recipe.json``) loads with ``AutoModel.from_pretrained`` and with
``DualEncoderDocumentEmbedder(model=OUT)``.

Python::

    from simlm_haystack.training import (
        DualEncoderTrainingArguments, RetrievalEvaluator, load_beir_training, train,
    )

    examples = load_beir_training("scifact", split="train")       # or load_training_jsonl(path, corpus=...)
    args = DualEncoderTrainingArguments(output_dir="out", loss="infonce", n_negatives=0,
                                        per_device_train_batch_size=32, learning_rate=3e-5,
                                        num_train_epochs=3, warmup_steps=0.1, seed=42,
                                        eval_strategy="steps", eval_steps=500, save_steps=500,
                                        load_best_model_at_end=True, metric_for_best_model="nDCG@10")
    train("sentence-transformers/all-MiniLM-L6-v2", examples, args, recipe="simlm",
          evaluator=RetrievalEvaluator("scifact", split="test"))

Command line (one process): the flags are the fields of :class:`ModelArguments`,
:class:`DataArguments` and :class:`DualEncoderTrainingArguments` (``HfArgumentParser``), or a JSON
file of them::

    simlm-haystack train --model sentence-transformers/all-MiniLM-L6-v2 --recipe simlm \\
        --train /data/scifact --mine_negatives --output_dir out
    simlm-haystack train config.json

Several GPUs or machines: the trainer is a ``transformers.Trainer``, so the same command runs under
``torchrun`` or ``accelerate launch`` with no other change; ``--per_device_train_batch_size`` is then
per device, and every device's passages are negatives for every query (embeddings all-gathered
with gradients, ``--gather_across_devices``, on by default)::

    torchrun --nproc_per_node 4 -m simlm_haystack.cli train --model M --recipe simlm \\
        --train data.jsonl --corpus corpus.jsonl --output_dir out --bf16
    accelerate launch --num_processes 4 -m simlm_haystack.cli train ...

``bf16=True`` (``--bf16``) trains under bf16 autocast: faster on GPUs and on CPUs with AVX-512 BF16
or AMX; on a CPU without them (AVX2 only) PyTorch emulates it and it is several times slower.

GradCache (``--gradcache_chunk_size``) runs one backward pass per chunk, which
DistributedDataParallel does not expect: use it on one device, where it is meant to save memory.

Pieces: :mod:`~simlm_haystack.training.arguments` (the dataclasses),
:mod:`~simlm_haystack.training.data` (JSONL or BEIR train split, checked with line numbers),
:mod:`~simlm_haystack.training.mining` (hard negatives through the evaluator's Qdrant retrieval),
:mod:`~simlm_haystack.training.losses` (the :data:`LOSSES` registry: InfoNCE, SimLM's full
contrastive loss, Margin-MSE, KL distillation, PAIR), :mod:`~simlm_haystack.training.samplers`
(random and TAS-Balanced batches), :mod:`~simlm_haystack.training.collator` (tokenising a batch),
:mod:`~simlm_haystack.training.gradcache`, :mod:`~simlm_haystack.training.distributed` (the
all-gather), :mod:`~simlm_haystack.training.evaluator` (retrieval metrics during training) and
:mod:`~simlm_haystack.training.trainer` (the Trainer and recipe saving).
"""

from simlm_haystack.training.arguments import DataArguments, DualEncoderTrainingArguments, ModelArguments
from simlm_haystack.training.collator import DualEncoderCollator
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
from simlm_haystack.training.distributed import all_gather_with_grad, gather_batch
from simlm_haystack.training.evaluator import RetrievalEvaluator
from simlm_haystack.training.gradcache import gradcache_loss
from simlm_haystack.training.losses import (
    LOSSES,
    FullContrastiveLoss,
    InfoNCELoss,
    KLDistillationLoss,
    LossOptions,
    MarginMSELoss,
    PairLoss,
    build_loss,
)
from simlm_haystack.training.mining import mine_hard_negatives, mine_with_model, negatives_from_run
from simlm_haystack.training.samplers import ShuffledBatchSampler, TasBalancedBatchSampler, kmeans
from simlm_haystack.training.trainer import DualEncoderTrainer, build_trainer, train

__all__ = [
    "LOSSES",
    "DataArguments",
    "Draw",
    "DualEncoderCollator",
    "DualEncoderTrainer",
    "DualEncoderTrainingArguments",
    "FullContrastiveLoss",
    "InfoNCELoss",
    "KLDistillationLoss",
    "LossOptions",
    "MarginMSELoss",
    "ModelArguments",
    "PairLoss",
    "Passage",
    "RetrievalEvaluator",
    "ShuffledBatchSampler",
    "TasBalancedBatchSampler",
    "TrainingDataset",
    "TrainingExample",
    "all_gather_with_grad",
    "build_loss",
    "build_trainer",
    "check_examples",
    "gather_batch",
    "gradcache_loss",
    "kmeans",
    "load_beir_training",
    "load_corpus",
    "load_training_jsonl",
    "mine_hard_negatives",
    "mine_with_model",
    "negatives_from_run",
    "passage_from_document",
    "save_training_jsonl",
    "train",
]
