"""A Hugging Face ``Trainer`` for dual encoders that reads texts exactly as the embedders do.

The collator tokenises through :func:`simlm_haystack.encoding.tokenize` and ``compute_loss``
embeds through :func:`simlm_haystack.encoding.embed_features`, with the model's recipe; one shared
encoder reads queries and passages (SimLM, TAS-B). Everything else (optimiser, warm-up and linear
decay, gradient accumulation, bf16 autocast, checkpoints, resuming, several GPUs) is the Trainer's.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore
from torch import nn
from torch.utils.checkpoint import get_device_states, set_device_states
from torch.utils.data import DataLoader
from transformers import (
    AutoModel,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Trainer,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_utils import get_last_checkpoint

from simlm_haystack.components.document_embedder import DualEncoderDocumentEmbedder
from simlm_haystack.components.text_embedder import DualEncoderTextEmbedder
from simlm_haystack.encoding import DualEncoder, embed_features, tokenize
from simlm_haystack.errors import NonFiniteLossError
from simlm_haystack.evaluation.data import BeirCollection
from simlm_haystack.evaluation.evaluator import evaluate as evaluate_retrieval
from simlm_haystack.models import LoadedModel, local_model_path
from simlm_haystack.recipes import Recipe, resolve_recipe
from simlm_haystack.stores import qdrant_document_store
from simlm_haystack.training.data import Passage, TrainingDataset, TrainingExample, check_examples
from simlm_haystack.training.losses import build_loss
from simlm_haystack.training.samplers import ShuffledBatchSampler, TasBalancedBatchSampler


@dataclass
class DualEncoderTrainingArguments(TrainingArguments):
    """``TrainingArguments`` plus what is specific to dual encoders.

    ``per_device_train_batch_size`` is the number of queries per batch (each brings a positive and
    ``n_negatives`` hard negatives; every passage of the batch is a negative for the other queries).
    """

    loss: str = field(default="infonce", metadata={"help": "infonce, margin-mse, kl or pair"})
    n_negatives: int = field(default=1, metadata={"help": "hard negatives per query (0: in-batch only)"})
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
    eval_split: str = field(default="dev", metadata={"help": "qrels split of the evaluation collection"})


class DualEncoderCollator:
    """Items ``{"query", "passages": [positive, *negatives]}`` -> the tensors the recipe makes."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, recipe: Recipe, input_names: Sequence[str]) -> None:
        self.tokenizer = tokenizer
        self.recipe = recipe
        self.input_names = list(input_names)

    def _features(self, side: str, texts: list[str], titles: list[str | None] | None) -> dict[str, torch.Tensor]:
        encoded = tokenize(self.tokenizer, self.recipe, side, texts, titles, padding=True, return_tensors="pt")  # type: ignore[arg-type]
        return {name: encoded[name] for name in self.input_names}

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        passages: list[Passage] = [passage for item in items for passage in item["passages"]]
        batch: dict[str, Any] = {
            "query": self._features("query", [item["query"] for item in items], None),
            "passage": self._features("document", [p.text for p in passages], [p.title for p in passages]),
        }
        batch["queries"] = [item["query"] for item in items]  # to name the batch if its loss is not finite
        if all(p.score is not None for p in passages):
            batch["teacher_scores"] = torch.tensor([p.score for p in passages]).view(len(items), -1)
        return batch


class _RandomState:
    """The RNG state before a chunk's first forward, so that GradCache's second forward draws the
    same dropout masks (as sentence-transformers' RandContext)."""

    def __init__(self, *tensors: torch.Tensor) -> None:
        self.cpu_state = torch.get_rng_state()
        self.devices, self.device_states = get_device_states(*tensors)

    def __enter__(self) -> None:
        self._fork = torch.random.fork_rng(devices=self.devices, enabled=True)
        self._fork.__enter__()
        torch.set_rng_state(self.cpu_state)
        set_device_states(self.devices, self.device_states)

    def __exit__(self, *exc: object) -> None:
        self._fork.__exit__(*exc)


def _chunks(features: dict[str, torch.Tensor], size: int) -> Iterator[dict[str, torch.Tensor]]:
    """Row chunks of a padded batch, each cut to its own longest row (padding is on the right)."""
    for start in range(0, len(features["attention_mask"]), size):
        piece = {name: tensor[start : start + size] for name, tensor in features.items()}
        width = int(piece["attention_mask"].sum(dim=1).max())
        if not piece["attention_mask"][:, width:].any():
            piece = {name: tensor[:, :width] for name, tensor in piece.items()}
        yield piece


class DualEncoderTrainer(Trainer):
    """``Trainer`` with a contrastive / distillation ``compute_loss``, a batch sampler that picks each
    query's passages, retrieval evaluation (nDCG@10, MRR@10) and the recipe saved with every checkpoint.

    :param recipe: How the model reads queries and passages (saved beside each checkpoint).
    :param loss: A loss from :mod:`simlm_haystack.training.losses`.
    :param train_sampler: Yields batches of :class:`~simlm_haystack.training.data.Draw`.
    :param eval_collection: A BEIR collection whose ``args.eval_split`` is evaluated through the
        evaluator (Qdrant in memory) at each evaluation step.
    """

    def __init__(
        self,
        *args: Any,
        recipe: Recipe,
        loss: nn.Module,
        train_sampler: ShuffledBatchSampler,
        eval_collection: BeirCollection | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.recipe = recipe
        self.loss = loss
        self.train_sampler = train_sampler
        self.eval_collection = eval_collection
        self._eval_store: QdrantDocumentStore | None = None

    def get_train_dataloader(self) -> DataLoader:
        loader = DataLoader(
            self.train_dataset,
            batch_sampler=self.train_sampler,
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
        )
        return self.accelerator.prepare(loader)

    def _embed(self, model: nn.Module, features: dict[str, torch.Tensor]) -> torch.Tensor:
        return embed_features(model, features, self.recipe).float()  # type: ignore[arg-type]

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        teacher_scores = inputs.get("teacher_scores")
        chunk_size = self.args.gradcache_chunk_size
        if chunk_size:
            loss = self._gradcache_loss(model, inputs["query"], inputs["passage"], teacher_scores, chunk_size)
        else:
            loss = self.loss(self._embed(model, inputs["query"]), self._embed(model, inputs["passage"]), teacher_scores)
        if not torch.isfinite(loss.detach()).all():
            # Stop before the optimiser step, so the weights and every checkpoint written so far stay good.
            raise NonFiniteLossError(self._non_finite_message(loss, inputs.get("queries") or []))
        return (loss, None) if return_outputs else loss

    def _non_finite_message(self, loss: torch.Tensor, queries: Sequence[str]) -> str:
        last = get_last_checkpoint(self.args.output_dir) if Path(self.args.output_dir).is_dir() else None
        first = f", first query {queries[0][:80]!r}" if queries else ""
        return (
            f"Training stopped: the loss is {loss.item()} at step {self.state.global_step + 1} "
            f"(a batch of {len(queries)} queries{first}). The last good checkpoint is "
            f"{last or 'none (no checkpoint was written yet)'}: resume from it (resume_from_checkpoint / --resume) "
            "with a lower learning rate, or without bf16/fp16 if it overflowed."
        )

    def _gradcache_loss(
        self,
        model: nn.Module,
        queries: dict[str, torch.Tensor],
        passages: dict[str, torch.Tensor],
        teacher_scores: torch.Tensor | None,
        chunk_size: int,
    ) -> torch.Tensor:
        """GradCache (Gao et al., 2021): embed without a graph, take the loss's gradient w.r.t. the
        embeddings, then on ``backward()`` re-embed chunk by chunk and push that gradient through.
        Same gradients as the full batch, memory of one chunk. The Trainer's ``backward()`` reaches the
        second pass through a hook on the returned loss, as in sentence-transformers' Cached losses."""
        sides, states, embeddings = (queries, passages), [], []
        with torch.no_grad():
            for features in sides:
                side_states, side_embeddings = [], []
                for piece in _chunks(features, chunk_size):
                    side_states.append(_RandomState(*piece.values()))
                    side_embeddings.append(self._embed(model, piece))
                states.append(side_states)
                embeddings.append(torch.cat(side_embeddings).requires_grad_())
        with torch.enable_grad():
            loss = self.loss(*embeddings, teacher_scores)
            gradients = torch.autograd.grad(loss, embeddings)
        surrogate = loss.detach().requires_grad_()
        surrogate.register_hook(
            functools.partial(self._gradcache_backward, model, sides, states, gradients, chunk_size)
        )
        return surrogate

    def _gradcache_backward(
        self,
        model: nn.Module,
        sides: Sequence[dict[str, torch.Tensor]],
        states: Sequence[Sequence[_RandomState]],
        gradients: Sequence[torch.Tensor],
        chunk_size: int,
        grad_output: torch.Tensor,
    ) -> None:
        with torch.enable_grad():
            for features, side_states, gradient in zip(sides, states, gradients, strict=True):
                offset = 0
                for piece, state in zip(_chunks(features, chunk_size), side_states, strict=True):
                    with state:
                        embedded = self._embed(model, piece)
                    part = gradient[offset : offset + len(embedded)] * grad_output
                    (embedded * part).sum().backward()
                    offset += len(embedded)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """Weights, config and tokenizer (the Trainer's), and the recipe beside them for the embedders."""
        super()._save(output_dir, state_dict)
        if self.args.should_save:
            self.recipe.save(output_dir or self.args.output_dir)

    def evaluate(
        self,
        eval_dataset: Any = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> dict[str, float]:
        """nDCG@10, MRR@10 and R@100 of the current weights on the evaluation collection, through the
        evaluator: the corpus indexed into an in-memory Qdrant by our embedders, wrapped around the
        model being trained (no copy, no checkpoint needed)."""
        collection = eval_dataset if isinstance(eval_dataset, BeirCollection) else self.eval_collection
        if collection is None:
            raise ValueError("DualEncoderTrainer.evaluate needs an eval_collection (a BEIR collection)")
        model = self.accelerator.unwrap_model(self.model)
        tokenizer = self.processing_class
        precision = "bf16" if self.args.bf16 else "exact"
        encoder = DualEncoder(LoadedModel(model, tokenizer, "in-training"), self.recipe, precision=precision)  # type: ignore[arg-type]
        document_embedder = DualEncoderDocumentEmbedder(model="in-training", recipe=self.recipe, progress_bar=False)
        text_embedder = DualEncoderTextEmbedder(model="in-training", recipe=self.recipe, progress_bar=False)
        document_embedder.encoder = text_embedder.encoder = encoder
        if self._eval_store is None:
            self._eval_store = qdrant_document_store(
                self.recipe, embedding_dim=encoder.embedding_dim, index="training-eval"
            )
        result = evaluate_retrieval(
            document_embedder,
            text_embedder,
            self._eval_store,
            collection,
            split=self.args.eval_split,
            top_k=100,
            measures=("nDCG@10", "RR@10", "R@100"),
            progress_bar=False,
        )
        names = {"nDCG@10": "nDCG@10", "RR@10": "MRR@10", "R@100": "R@100"}
        metrics = {f"{metric_key_prefix}_{names[k]}": 100 * v for k, v in result.metrics.items()}
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


def load_trainable(model: str | Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A fresh, unshared copy of the weights (``load_model`` shares one copy between components;
    training that one would change what they serve)."""
    source = local_model_path(model)
    return AutoModel.from_pretrained(source), AutoTokenizer.from_pretrained(source)


def build_trainer(
    model: str | Path,
    examples: Sequence[TrainingExample],
    args: DualEncoderTrainingArguments,
    *,
    recipe: str | Recipe | None = None,
    eval_collection: BeirCollection | None = None,
) -> DualEncoderTrainer:
    """Everything wired: model, tokenizer, recipe, loss, sampler, collator. Call ``.train()`` on it.

    The data is checked against what the loss and sampler need before any step is taken.
    """
    recipe = resolve_recipe(model, recipe)
    # Seeded before loading: weights the checkpoint lacks (an unused pooler) are initialised the same every run.
    set_seed(args.seed)
    network, tokenizer = load_trainable(model)
    loss = build_loss(
        args.loss,
        recipe.temperature,
        **({"contrastive_weight": args.kl_contrastive_weight} if args.loss == "kl" else {}),
        **({"alpha": args.pair_alpha} if args.loss == "pair" else {}),
    )
    check_examples(examples, n_negatives=args.n_negatives, needs_teacher_scores=loss.needs_teacher_scores)
    encoder = DualEncoder(LoadedModel(network, tokenizer, str(model)), recipe)
    sampler: ShuffledBatchSampler
    if args.tas_clusters:
        # TAS clusters the queries once, with the model as it is before training.
        query_embeddings = encoder.encode("query", [e.query for e in examples], batch_size=64)
        sampler = TasBalancedBatchSampler(
            examples,
            args.per_device_train_batch_size,
            query_embeddings,
            n_clusters=args.tas_clusters,
            n_negatives=args.n_negatives,
            n_margin_bins=args.margin_bins,
            seed=args.data_seed if args.data_seed is not None else args.seed,
        )
    else:
        sampler = ShuffledBatchSampler(
            examples,
            args.per_device_train_batch_size,
            n_negatives=args.n_negatives,
            seed=args.data_seed if args.data_seed is not None else args.seed,
        )
    return DualEncoderTrainer(
        model=network,
        args=args,
        train_dataset=TrainingDataset(examples),
        eval_dataset=eval_collection,  # the Trainer wants one when eval_strategy is set; evaluate() reads it
        data_collator=DualEncoderCollator(tokenizer, recipe, encoder.input_names),
        processing_class=tokenizer,
        recipe=recipe,
        loss=loss,
        train_sampler=sampler,
        eval_collection=eval_collection,
    )


def train(
    model: str | Path,
    examples: Sequence[TrainingExample],
    args: DualEncoderTrainingArguments,
    *,
    recipe: str | Recipe | None = None,
    eval_collection: BeirCollection | None = None,
    resume_from_checkpoint: str | bool | None = None,
) -> DualEncoderTrainer:
    """Train, then save the final (or, with ``load_best_model_at_end``, the best) model, its tokenizer
    and its recipe in ``args.output_dir``: loadable by ``AutoModel`` and by our embedders."""
    trainer = build_trainer(model, examples, args, recipe=recipe, eval_collection=eval_collection)
    trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    trainer.save_model(args.output_dir)
    return trainer
