"""In-batch negatives across processes: two CPU processes (gloo) against one process on the same global batch.

The two workers start once for the module, from a fresh fork server that has imported the package
(forking the test process itself, which already runs threads such as OpenMP's, can deadlock the
child; spawning imports the package twice more). Each computes everything the tests compare: every
loss on a linear encoder under DDP, and the trainer's loss and gradients as ``torchrun`` starts it.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from simlm_haystack.training import (
    LOSSES,
    Draw,
    DualEncoderTrainingArguments,
    LossOptions,
    Passage,
    TrainingDataset,
    TrainingExample,
    all_gather_with_grad,
    build_loss,
    build_trainer,
    gather_batch,
)

WORLD_SIZE = 2
QUERIES_PER_RANK = (3, 2)  # unequal, as when an epoch ends on a short batch
GROUP = 3  # passages per query: a positive and two hard negatives
OPTIONS = LossOptions(temperature=0.05)


def global_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    queries = torch.randn(sum(QUERIES_PER_RANK), 6, generator=generator, dtype=torch.float64)
    passages = torch.randn(sum(QUERIES_PER_RANK) * GROUP, 6, generator=generator, dtype=torch.float64)
    teacher_scores = torch.randn(sum(QUERIES_PER_RANK), GROUP, generator=generator, dtype=torch.float64)
    return queries, passages, teacher_scores


def linear_encoder() -> torch.nn.Linear:
    torch.manual_seed(1)
    return torch.nn.Linear(6, 4, dtype=torch.float64)


def embed(encoder: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    return F.normalize(encoder(inputs), dim=-1)


def loss_and_gradients(name: str, rank: int | None) -> dict[str, torch.Tensor]:
    """One process's loss and gradients: the whole batch (``rank=None``) or, under DDP, one rank's share."""
    queries, passages, teacher_scores = global_batch()
    encoder: torch.nn.Module = linear_encoder()
    if rank is not None:
        start = sum(QUERIES_PER_RANK[:rank])
        stop = start + QUERIES_PER_RANK[rank]
        queries, passages = queries[start:stop], passages[start * GROUP : stop * GROUP]
        teacher_scores = teacher_scores[start:stop]
        encoder = DistributedDataParallel(encoder)
    # Two forwards, as the trainer embeds queries and passages.
    query_embeddings, passage_embeddings = embed(encoder, queries), embed(encoder, passages)
    query_embeddings.retain_grad()
    passage_embeddings.retain_grad()
    batch = (query_embeddings, passage_embeddings, teacher_scores)
    loss = build_loss(name, OPTIONS)(*(gather_batch(*batch) if rank is not None else batch))
    loss.backward()
    module = encoder.module if rank is not None else encoder
    return {
        "loss": loss.detach(),
        "local_loss": build_loss(name, OPTIONS)(*(tensor.detach() for tensor in batch)),
        "query_embeddings": query_embeddings.grad,
        "passage_embeddings": passage_embeddings.grad,
        "weight": module.weight.grad,
        "bias": module.bias.grad,
    }


@pytest.mark.parametrize("name", list(LOSSES))
def test_gathered_loss_and_gradients_equal_one_process_on_the_global_batch(two_processes, name):
    single = loss_and_gradients(name, None)
    for rank, results in enumerate(two_processes):
        gathered = results[name]
        torch.testing.assert_close(gathered["loss"], single["loss"], rtol=0, atol=1e-6)
        # Every rank computes the global loss and the gather's backward sums what all of them send
        # to a rank's own embeddings: world_size times the global gradient, which DDP's average undoes.
        start = sum(QUERIES_PER_RANK[:rank])
        stop = start + QUERIES_PER_RANK[rank]
        for side, rows in (
            ("query_embeddings", slice(start, stop)),
            ("passage_embeddings", slice(start * GROUP, stop * GROUP)),
        ):
            torch.testing.assert_close(gathered[side] / WORLD_SIZE, single[side][rows], rtol=0, atol=1e-6)
        for parameter in ("weight", "bias"):
            torch.testing.assert_close(gathered[parameter], single[parameter], rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["infonce", "full-contrastive", "pair"])
def test_without_the_gather_each_process_sees_only_its_own_negatives(two_processes, name):
    single = loss_and_gradients(name, None)
    for results in two_processes:
        assert abs(results[name]["local_loss"] - single["loss"]) > 1e-3


def test_one_process_gathers_nothing():
    tensor = torch.randn(3, 2, requires_grad=True)
    assert all_gather_with_grad(tensor) is tensor


# ---- the trainer under two processes, as torchrun starts it ----

EXAMPLES = [
    TrainingExample(
        f"what is {word}?",
        [Passage(f"{word} is a word about {word}", title=word.title())],
        [Passage(f"not {word}, something else entirely")],
    )
    for word in ("signal", "protein", "membrane", "receptor", "kinase")
]


def trainer_loss_and_gradients(model_dir: str, output_dir: str, rank: int | None) -> dict[str, torch.Tensor]:
    """The trainer's loss and the weights' gradients, averaged over processes as DDP averages them."""
    args = DualEncoderTrainingArguments(output_dir=output_dir, use_cpu=True, report_to=[], n_negatives=1, seed=0)
    trainer = build_trainer(model_dir, EXAMPLES, args, recipe="simlm")
    assert args.world_size == (1 if rank is None else WORLD_SIZE)
    rows = range(len(EXAMPLES))
    if rank is not None:
        start = sum(QUERIES_PER_RANK[:rank])
        rows = range(start, start + QUERIES_PER_RANK[rank])
    dataset = TrainingDataset(EXAMPLES)
    inputs = trainer.data_collator([dataset[Draw(row, 0, (0,))] for row in rows])
    loss = trainer.compute_loss(trainer.model, inputs)
    loss.backward()
    gradients = {name: p.grad for name, p in trainer.model.named_parameters() if p.grad is not None}
    if rank is not None:
        for gradient in gradients.values():
            dist.all_reduce(gradient)
            gradient /= WORLD_SIZE
    return {"loss": loss.detach(), **gradients}


def _worker(rank: int, port: int, model_dir: str, results: str) -> None:
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD_SIZE), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    torch.set_num_threads(1)
    dist.init_process_group("gloo")  # the Trainer's accelerate state finds it initialised
    try:
        computed = {name: loss_and_gradients(name, rank) for name in LOSSES}
        computed["trainer"] = trainer_loss_and_gradients(model_dir, str(Path(results) / "out"), rank)
        torch.save(computed, Path(results) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory, tiny_bert: str) -> list[dict[str, dict[str, torch.Tensor]]]:
    directory = tmp_path_factory.mktemp("distributed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.get_context("forkserver").set_forkserver_preload(["simlm_haystack.training"])
    mp.start_processes(_worker, args=(port, tiny_bert, str(directory)), nprocs=WORLD_SIZE, start_method="forkserver")
    return [torch.load(directory / f"rank{rank}.pt") for rank in range(WORLD_SIZE)]


def test_trainer_under_torchrun_gathers_the_global_batch(two_processes, tmp_path, tiny_bert):
    single = trainer_loss_and_gradients(tiny_bert, str(tmp_path), None)
    for results in two_processes:
        gathered = results["trainer"]
        assert gathered.keys() == single.keys()
        for name in single:
            # atol 1e-5: the two processes and the single one sum in different orders (and with more
            # than one intra-op thread, in orders that vary): near-zero gradients differ by ~2e-6.
            torch.testing.assert_close(gathered[name], single[name], rtol=1e-4, atol=1e-5)
