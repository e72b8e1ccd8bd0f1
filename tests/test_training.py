"""The trainer on tiny random models and a planted task whose right answer is known."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_beir
from haystack import Document
from transformers import AutoModel, AutoTokenizer, TrainerCallback

from simlm_haystack import DataError, DualEncoderDocumentEmbedder, DualEncoderTextEmbedder, Recipe, get_recipe
from simlm_haystack.cli import main
from simlm_haystack.encoding import embed_features, tokenize
from simlm_haystack.evaluation import load_beir
from simlm_haystack.recipes import RECIPE_FILE
from simlm_haystack.stores import qdrant_document_store
from simlm_haystack.training import (
    LOSSES,
    DualEncoderCollator,
    DualEncoderTrainingArguments,
    FullContrastiveLoss,
    InfoNCELoss,
    KLDistillationLoss,
    LossOptions,
    MarginMSELoss,
    PairLoss,
    Passage,
    RetrievalEvaluator,
    ShuffledBatchSampler,
    TasBalancedBatchSampler,
    TrainingExample,
    build_loss,
    build_trainer,
    check_examples,
    kmeans,
    load_beir_training,
    load_training_jsonl,
    mine_hard_negatives,
    negatives_from_run,
    save_training_jsonl,
    train,
)
from simlm_haystack.training.gradcache import RandomState, padded_row_chunks

# Mean pooling learns the planted task in a few dozen steps from random weights; the [CLS] of a
# random 2-layer model does not (that needs pre-training), which is not what these tests are about.
PLANTED_RECIPE = Recipe(name="tiny-mean", query_max_length=16, document_max_length=32, pooling="mean", temperature=0.05)


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny models on a shared 2-core CPU: thread synchronisation costs more than the arithmetic (10x).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def arguments(output_dir: Path, **overrides) -> DualEncoderTrainingArguments:
    settings = {
        "output_dir": str(output_dir),
        "use_cpu": True,
        "report_to": [],
        "disable_tqdm": True,
        "save_strategy": "no",
        "logging_steps": 5,
        "seed": 0,
    }
    return DualEncoderTrainingArguments(**{**settings, **overrides})


# ---- a planted task: query i names word i; document i is the only one about word i ----


def planted_words(model_dir: str, count: int = 24) -> list[str]:
    vocabulary = sorted(AutoTokenizer.from_pretrained(model_dir).get_vocab().items(), key=lambda item: item[1])
    words = [word for word, _ in vocabulary if word.isascii() and word.isalpha() and len(word) >= 6]
    return words[:1000:7][:count]


def planted_task(model_dir: str) -> tuple[list[Passage], list[TrainingExample]]:
    words = planted_words(model_dir)
    documents = [
        Passage(text=f"{word} is what this passage is about, and nothing else", title=word.title(), id=f"d{i}")
        for i, word in enumerate(words)
    ]
    examples = [
        TrainingExample(
            query=f"tell me about {word}",
            positives=[documents[i]],
            negatives=[documents[(i + 1) % len(words)], documents[(i + 5) % len(words)]],
            query_id=f"q{i}",
        )
        for i, word in enumerate(words)
    ]
    return documents, examples


def write_planted_beir(directory: Path, documents: list[Passage], examples: list[TrainingExample]) -> Path:
    qrels = ["query-id\tcorpus-id\tscore", *(f"{e.query_id}\t{e.positives[0].id}\t1" for e in examples)]
    return write_beir(
        directory,
        [{"_id": d.id, "title": d.title, "text": d.text} for d in documents],
        [{"_id": e.query_id, "text": e.query} for e in examples],
        {"train": qrels, "dev": qrels},
    )


def top1_accuracy(model_dir: str, documents: list[Passage], examples: list[TrainingExample], recipe=None) -> float:
    """Through our Haystack embedders, as a user would load the trained model."""
    document_embedder = DualEncoderDocumentEmbedder(model=model_dir, recipe=recipe, progress_bar=False)
    text_embedder = DualEncoderTextEmbedder(model=model_dir, recipe=recipe, progress_bar=False)
    embedded = document_embedder.run([Document(content=d.text, meta={"title": d.title}) for d in documents])
    matrix = np.array([d.embedding for d in embedded["documents"]])
    queries = np.array([text_embedder.run(e.query)["embedding"] for e in examples])
    return float(((queries @ matrix.T).argmax(axis=1) == np.arange(len(examples))).mean())


# ---- losses equal their definitions, computed directly ----


def _scores(queries, passages, temperature):
    return [[float(q @ p) / temperature for p in passages] for q in queries]


def _cross_entropy(row, target):
    return math.log(sum(math.exp(value) for value in row)) - row[target]


@pytest.fixture
def batch():
    generator = torch.Generator().manual_seed(0)
    queries = torch.nn.functional.normalize(torch.randn(3, 5, generator=generator), dim=-1)
    passages = torch.nn.functional.normalize(torch.randn(6, 5, generator=generator), dim=-1)  # 3 groups of 2
    teacher = torch.tensor([[9.0, 1.0], [4.0, 3.5], [2.0, 6.0]])
    return queries, passages, teacher


def test_infonce_is_cross_entropy_over_all_passages_of_the_batch(batch):
    queries, passages, _ = batch
    scores = _scores(queries, passages, 0.02)
    expected = sum(_cross_entropy(scores[i], 2 * i) for i in range(3)) / 3
    assert InfoNCELoss(0.02)(queries, passages).item() == pytest.approx(expected, rel=1e-5)


def test_margin_mse_compares_student_and_teacher_margins(batch):
    queries, passages, teacher = batch
    student = [[float(queries[i] @ passages[2 * i + g]) for g in range(2)] for i in range(3)]
    expected = sum(((s[0] - s[1]) - float(t[0] - t[1])) ** 2 for s, t in zip(student, teacher, strict=True)) / 3
    assert MarginMSELoss()(queries, passages, teacher).item() == pytest.approx(expected, rel=1e-5)


def test_kl_distillation_is_weighted_contrastive_plus_kl_teacher_to_student(batch):
    queries, passages, teacher = batch
    t = 0.02
    kl = 0.0
    for i in range(3):
        student = [float(queries[i] @ passages[2 * i + g]) / t for g in range(2)]
        student_log = [s - math.log(sum(math.exp(v) for v in student)) for s in student]
        teacher_row = [float(v) for v in teacher[i]]
        teacher_log = [v - math.log(sum(math.exp(w) for w in teacher_row)) for v in teacher_row]
        kl += sum(math.exp(tl) * (tl - sl) for tl, sl in zip(teacher_log, student_log, strict=True))
    expected = 0.2 * InfoNCELoss(t)(queries, passages).item() + kl / 3
    assert KLDistillationLoss(t)(queries, passages, teacher).item() == pytest.approx(expected, rel=1e-5)


def test_pair_adds_the_passage_centric_relation(batch):
    queries, passages, _ = batch
    t = 0.05
    passage_centric = 0.0
    for i in range(3):
        positive = passages[2 * i]
        row = [float(queries[i] @ positive) / t] + [
            float(positive @ passages[j]) / t for j in range(6) if j != 2 * i
        ]  # s(q, p+) against s(p+, p-) for every other passage of the batch
        passage_centric += _cross_entropy(row, 0)
    expected = 0.9 * InfoNCELoss(t)(queries, passages).item() + 0.1 * passage_centric / 3
    assert PairLoss(t, alpha=0.1)(queries, passages).item() == pytest.approx(expected, rel=1e-5)


def test_full_contrastive_adds_simlms_query_and_positive_blocks(batch):
    queries, passages, _ = batch
    t = 0.02
    positives = passages[::2]
    total = 0.0
    for i in range(3):
        others = [j for j in range(3) if j != i]
        row = (
            [float(queries[i] @ p) / t for p in passages]  # qp: plain InfoNCE, target s(q_i, p_i) at 2 i
            + [float(positives[i] @ queries[j]) / t for j in others]  # pq: the positive against other queries
            + [float(queries[i] @ queries[j]) / t for j in others]  # qq: the query against other queries
            + [float(positives[i] @ positives[j]) / t for j in others]  # pp: against the other positives
        )
        total += _cross_entropy(row, 2 * i)
    assert FullContrastiveLoss(t)(queries, passages).item() == pytest.approx(total / 3, rel=1e-5)
    assert FullContrastiveLoss(t)(queries, passages).item() > InfoNCELoss(t)(queries, passages).item()


def test_loss_registry_builds_every_loss_by_name(batch):
    queries, passages, teacher = batch
    expected = {
        "infonce": InfoNCELoss,
        "full-contrastive": FullContrastiveLoss,
        "margin-mse": MarginMSELoss,
        "kl": KLDistillationLoss,
        "pair": PairLoss,
    }
    assert {name: type(build_loss(name)) for name in LOSSES} == expected
    options = LossOptions(temperature=0.05, kl_contrastive_weight=0.5, pair_alpha=0.3)
    assert build_loss("kl", options).contrastive_weight == 0.5
    assert build_loss("pair", options).alpha == 0.3
    assert build_loss("full-contrastive", options).temperature == 0.05
    for name in LOSSES:
        assert torch.isfinite(build_loss(name, options)(queries, passages, teacher))
    with pytest.raises(ValueError, match="Unknown loss 'nope'; known losses: infonce, full-contrastive"):
        build_loss("nope")


def test_temperature_argument_overrides_the_recipes(tmp_path, tiny_bert):
    _, examples = planted_task(tiny_bert)
    recipe = get_recipe("simlm")
    assert build_trainer(tiny_bert, examples, arguments(tmp_path), recipe=recipe).loss.temperature == recipe.temperature
    tuned = build_trainer(tiny_bert, examples, arguments(tmp_path, temperature=0.05), recipe=recipe)
    assert tuned.loss.temperature == 0.05
    assert tuned.recipe == recipe  # the recipe saved with the model is unchanged
    with pytest.raises(ValueError, match="temperature must be positive"):
        arguments(tmp_path, temperature=0.0)


def test_distillation_losses_need_teacher_scores(batch):
    queries, passages, _ = batch
    for loss in (MarginMSELoss(), KLDistillationLoss(0.02)):
        with pytest.raises(ValueError, match="teacher"):
            loss(queries, passages)


# ---- samplers ----


def _clustered(count_per_cluster: int = 10):
    generator = torch.Generator().manual_seed(0)
    centres = torch.tensor([[10.0, 0, 0], [0, 10.0, 0], [0, 0, 10.0]])
    vectors = torch.cat([centre + 0.3 * torch.randn(count_per_cluster, 3, generator=generator) for centre in centres])
    planted = np.repeat(np.arange(3), count_per_cluster)
    examples = [
        TrainingExample(f"query {i}", [Passage(f"doc {i}")], [Passage(f"neg {i}")]) for i in range(len(vectors))
    ]
    return vectors, planted, examples


def test_kmeans_recovers_planted_clusters():
    vectors, planted, _ = _clustered()
    labels = kmeans(vectors, 3, seed=1).numpy()
    assert len(set(zip(labels, planted, strict=True))) == 3  # a one-to-one relabelling


def test_tas_batches_come_from_one_cluster_and_cover_every_query_once():
    vectors, planted, examples = _clustered()
    sampler = TasBalancedBatchSampler(examples, 4, vectors, n_clusters=3, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 9  # ceil(10 / 4) per cluster
    for batch in batches:
        assert len({planted[draw.example] for draw in batch}) == 1
    assert sorted(draw.example for batch in batches for draw in batch) == list(range(30))
    assert [[d.example for d in b] for b in sampler] == [[d.example for d in b] for b in batches]  # reproducible
    sampler.set_epoch(1)
    assert [[d.example for d in b] for b in sampler] != [[d.example for d in b] for b in batches]


@pytest.mark.parametrize("tas", [True, False])
def test_batches_sharded_between_processes_cover_every_query(tas):
    from accelerate.data_loader import BatchSamplerShard

    vectors, _, examples = _clustered()
    sampler = (
        TasBalancedBatchSampler(examples, 4, vectors, n_clusters=3, seed=0)
        if tas
        else ShuffledBatchSampler(examples, 4, seed=0)
    )
    shards = [BatchSamplerShard(sampler, num_processes=2, process_index=rank) for rank in range(2)]
    assert {draw.example for shard in shards for batch in shard for draw in batch} == set(range(30))


def test_tas_draws_margin_bins_uniformly_not_by_count():
    positive = Passage("positive", id="p", score=10.0)
    hard = Passage("hard", id="h", score=9.5)  # margin 0.5: the lowest bin
    easy = [Passage(f"easy {i}", id=f"e{i}", score=0.0) for i in range(9)]  # margin 10: the highest bin
    example = TrainingExample("query", [positive], [hard, *easy])
    sampler = TasBalancedBatchSampler([example], 1, np.zeros((1, 2)), n_clusters=1, n_margin_bins=10, seed=0)
    assert sampler.margin_bins(example, 0).tolist() == [0] + [9] * 9
    rng = np.random.default_rng(0)
    hard_share = np.mean([sampler.draw(rng, 0).negatives == (0,) for _ in range(4000)])
    assert 0.46 < hard_share < 0.54  # by count it would be 0.1


def test_shuffled_sampler_repeats_negatives_only_when_too_few():
    example = TrainingExample("q", [Passage("p")], [Passage("n1"), Passage("n2")])
    sampler = ShuffledBatchSampler([example], 1, n_negatives=2, seed=0)
    assert sorted(next(iter(sampler))[0].negatives) == [0, 1]
    sampler = ShuffledBatchSampler([example], 1, n_negatives=3, seed=0)
    assert len(next(iter(sampler))[0].negatives) == 3


# ---- data: bad lines fail before training, with their line numbers ----


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"positives": ["d1"]}, "no 'query'"),
        ({"query": "q", "positives": []}, "'positives' must be a non-empty list"),
        ({"query": "q"}, "'positives' must be a non-empty list"),
        ({"query": "q", "positives": ["nope"]}, "positive 'nope' is not in the corpus"),
        ({"query": "q", "positives": ["d1"], "negatives": ["gone"]}, "negative 'gone' is not in the corpus"),
        ({"query": "q", "positives": [{"title": "t"}]}, "needs a non-empty 'text'"),
        ({"query": "q", "positives": ["d1"], "negatives": ["d2"], "scores": {"d1": 1}}, "does not score every"),
    ],
)
def test_bad_training_lines_name_file_and_line(tmp_path, line, message):
    corpus = {"d1": Passage("one", id="d1"), "d2": Passage("two", id="d2")}
    path = tmp_path / "train.jsonl"
    good = {"query": "fine", "positives": ["d1"], "negatives": ["d2"]}
    path.write_text(json.dumps(good) + "\n\n" + json.dumps(line) + "\n")
    with pytest.raises(DataError, match=f"train.jsonl:3: .*{message}"):
        load_training_jsonl(path, corpus=corpus)


def test_ids_without_a_corpus_and_broken_json_are_errors(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"query": "q", "positives": ["d1"]}) + "\n")
    with pytest.raises(DataError, match=r"train.jsonl:1: .*no corpus"):
        load_training_jsonl(path)
    path.write_text('{"query": "q", "positives": [{"text": "t"}]}\n{"query": \n')
    with pytest.raises(DataError, match=r"train.jsonl:2: not valid JSON"):
        load_training_jsonl(path)


def test_beir_judgement_of_a_missing_document_is_an_error(tmp_path, tiny_bert):
    documents, examples = planted_task(tiny_bert)
    directory = write_planted_beir(tmp_path / "beir", documents, examples)
    with (directory / "qrels" / "train.tsv").open("a") as out:
        out.write("q3\tno-such-doc\t1\n")
    with pytest.raises(DataError, match=r"train.tsv:5: query 'q3' judges documents that are not in the corpus"):
        load_beir_training(directory, "train")


def test_beir_training_examples_and_jsonl_round_trip(tmp_path, sample_dir):
    examples = load_beir_training(sample_dir, "train")
    assert all(example.positives and example.positives[0].id for example in examples)
    loaded = load_training_jsonl(save_training_jsonl(examples, tmp_path / "train.jsonl"))
    assert [(e.query, e.positives) for e in loaded] == [(e.query, e.positives) for e in examples]
    with pytest.raises(DataError, match="no negatives"):
        check_examples(loaded, n_negatives=1, needs_teacher_scores=False)
    with pytest.raises(DataError, match="teacher scores"):
        check_examples(loaded, n_negatives=0, needs_teacher_scores=True)


# ---- mining ----


def test_negatives_from_run_skips_positives_takes_the_window_and_filters_by_margin():
    documents = {f"d{i}": Document(id=f"d{i}", content=f"text {i}") for i in range(6)}
    example = TrainingExample("q", [Passage("text 0", id="d0")])
    run = {"d1": 0.95, "d0": 0.9, "d2": 0.8, "d3": 0.7, "d4": 0.6, "d5": 0.5}
    [mined] = negatives_from_run([example], [run], documents, ranks=(1, 4))
    assert [n.id for n in mined.negatives] == ["d2", "d3", "d4"]  # d1 is the skipped top non-positive
    [mined] = negatives_from_run([example], [run], documents, ranks=(0, 10), margin=0.15)
    assert [n.id for n in mined.negatives] == ["d3", "d4", "d5"]  # at least 0.15 below the positive's 0.9


def test_mining_goes_through_the_evaluator_retrieval(tiny_bert):
    documents, examples = planted_task(tiny_bert)
    corpus = [Document(id=d.id, content=d.text, meta={"title": d.title}) for d in documents]
    document_embedder = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", progress_bar=False)
    text_embedder = DualEncoderTextEmbedder(model=tiny_bert, recipe="simlm", progress_bar=False)
    store = qdrant_document_store(document_embedder)
    plain = [TrainingExample(e.query, e.positives, query_id=e.query_id) for e in examples]
    mined = mine_hard_negatives(document_embedder, text_embedder, store, plain, corpus, ranks=(2, 7))
    for before, after in zip(plain, mined, strict=True):
        assert len(after.negatives) == 5
        assert before.positives[0].id not in {n.id for n in after.negatives}
        assert after.query == before.query


# ---- the collator and GradCache ----


def test_collator_tokenises_exactly_as_the_embedders(tiny_bert, tiny_distilbert):
    examples = [TrainingExample("a query", [Passage("text one", title="Title")], [Passage("text two", score=1.0)])]
    item = {"query": "a query", "passages": [examples[0].positives[0], examples[0].negatives[0]]}
    for model_dir, recipe in ((tiny_bert, get_recipe("simlm")), (tiny_distilbert, get_recipe("tas-b"))):
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        names = ["input_ids", "attention_mask"] + (["token_type_ids"] if recipe.name == "simlm" else [])
        batch = DualEncoderCollator(tokenizer, recipe, names)([item])
        expected = tokenize(tokenizer, recipe, "document", ["text one", "text two"], ["Title", None], padding=True)
        assert batch["passage"]["input_ids"].tolist() == expected["input_ids"]
        assert sorted(batch["query"]) == sorted(names)
        assert "teacher_scores" not in batch  # the positive has no score


@pytest.fixture
def first_batch(tmp_path, tiny_bert):
    """A trainer on the planted task (8 queries a batch, 2 passages each) and its first batch."""
    _, examples = planted_task(tiny_bert)
    trainer = build_trainer(
        tiny_bert, examples, arguments(tmp_path, per_device_train_batch_size=8), recipe=get_recipe("simlm")
    )
    return trainer, next(iter(trainer.get_train_dataloader()))


def gradients_of(model):
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def chunked_reference(trainer, inputs, size):
    """The loss of the batch embedded ``size`` texts at a time, with one graph: what GradCache must equal."""
    query_embeddings, passage_embeddings = (
        torch.cat(
            [embed_features(trainer.model, piece, trainer.recipe).float() for piece in padded_row_chunks(side, size)]
        )
        for side in (inputs["query"], inputs["passage"])
    )
    return trainer.loss(query_embeddings, passage_embeddings)


def assert_same_gradients(cached, reference):
    assert cached.keys() == reference.keys()
    for name in reference:
        torch.testing.assert_close(cached[name], reference[name], rtol=1e-4, atol=1e-6)


def test_gradcache_gives_the_full_batch_loss_and_gradients(first_batch):
    trainer, inputs = first_batch
    model = trainer.model.eval()  # no dropout: both ways must see the same network

    def loss_and_gradients(chunk_size):
        trainer.args.gradcache_chunk_size = chunk_size
        model.zero_grad()
        loss = trainer.compute_loss(model, inputs)
        (loss / 2).backward()  # as the Trainer does with gradient accumulation
        return loss.item(), gradients_of(model)

    full_loss, full = loss_and_gradients(None)
    cached_loss, cached = loss_and_gradients(3)
    assert cached_loss == pytest.approx(full_loss, rel=1e-5)
    assert_same_gradients(cached, full)


def test_gradcache_in_train_mode_replays_each_chunks_dropout(first_batch):
    trainer, inputs = first_batch
    model = trainer.model.train()  # dropout on
    piece = next(padded_row_chunks(inputs["query"], 3))
    embedded = [embed_features(model, piece, trainer.recipe) for _ in range(2)]
    assert not torch.equal(*embedded)  # dropout does change the embeddings

    # The reference: the same chunks embedded once, with a graph, under the same RNG (same masks).
    torch.manual_seed(7)
    model.zero_grad()
    reference_loss = chunked_reference(trainer, inputs, 3)
    (reference_loss / 2).backward()
    reference = gradients_of(model)

    torch.manual_seed(7)
    model.zero_grad()
    trainer.args.gradcache_chunk_size = 3
    cached_loss = trainer.compute_loss(model, inputs)
    (cached_loss / 2).backward()  # the second forward, chunk by chunk, must draw the first one's masks

    assert cached_loss.item() == pytest.approx(reference_loss.item(), rel=1e-5)
    assert_same_gradients(gradients_of(model), reference)


def test_gradcache_backward_reenters_the_first_pass_autocast(first_batch):
    trainer, inputs = first_batch
    model = trainer.model.eval()

    model.zero_grad()
    # No cast cache: each chunk's bf16 weight gradients reach the fp32 weights on their own, as in GradCache.
    with torch.autocast("cpu", dtype=torch.bfloat16, cache_enabled=False):
        reference_loss = chunked_reference(trainer, inputs, 3)
    reference_loss.backward()
    reference = gradients_of(model)

    model.zero_grad()
    trainer.args.gradcache_chunk_size = 3
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the Trainer's compute_loss context under bf16
        cached_loss = trainer.compute_loss(model, inputs)
    cached_loss.backward()  # outside it, as the Trainer's backward()

    assert cached_loss.item() == pytest.approx(reference_loss.item(), rel=1e-5)
    assert_same_gradients(gradients_of(model), reference)


def test_random_state_replays_and_restores():
    state = RandomState(torch.zeros(1))
    first = torch.rand(3)
    after = torch.get_rng_state()
    with state:
        assert torch.equal(torch.rand(3), first)
    assert torch.equal(torch.get_rng_state(), after)


# ---- training end to end ----


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_bert):
    """The tiny BERT trained on the planted task, evaluated every 20 steps on it (best kept)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see one_thread; restored below for the test modules that follow
    directory = tmp_path_factory.mktemp("trained")
    documents, examples = planted_task(tiny_bert)
    collection = load_beir(write_planted_beir(directory / "beir", documents, examples), splits=["dev"])
    args = arguments(
        directory / "out",
        per_device_train_batch_size=8,
        learning_rate=3e-3,
        max_steps=60,
        warmup_steps=0.1,
        eval_strategy="steps",
        save_strategy="steps",
        eval_steps=20,
        save_steps=20,
        load_best_model_at_end=True,
        metric_for_best_model="nDCG@10",
    )
    trainer = train(tiny_bert, examples, args, recipe=PLANTED_RECIPE, evaluator=RetrievalEvaluator(collection, "dev"))
    yield trainer, directory / "out", documents, examples
    torch.set_num_threads(threads)


def test_training_lowers_the_loss(trained):
    trainer, *_ = trained
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert losses[-1] < 0.5 * losses[0]


def test_trained_model_retrieves_the_planted_positives(trained, tiny_bert):
    _, output, documents, examples = trained
    assert top1_accuracy(tiny_bert, documents, examples, recipe=PLANTED_RECIPE) < 0.5
    assert top1_accuracy(str(output), documents, examples) == 1.0  # recipe read from the output dir


def test_evaluation_during_training_keeps_the_best_checkpoint(trained):
    trainer, *_ = trained
    evaluations = [entry for entry in trainer.state.log_history if "eval_nDCG@10" in entry]
    assert [entry["step"] for entry in evaluations] == [20, 40, 60]
    assert {"eval_MRR@10", "eval_R@100"} <= set(evaluations[0])
    assert trainer.state.best_metric == max(entry["eval_nDCG@10"] for entry in evaluations)
    assert (Path(trainer.state.best_model_checkpoint) / RECIPE_FILE).is_file()


def test_a_trained_model_is_also_a_sentence_transformers_model(trained, caplog):
    """Back out: sentence-transformers loads the output and gives our vectors (queries up to the recipe's 16
    tokens through encode_query, documents up to 32 through encode_document)."""
    from sentence_transformers import SentenceTransformer

    from simlm_haystack.encoding import load_encoder

    _, output, documents, examples = trained
    encoder = load_encoder(str(output), PLANTED_RECIPE)
    reference = SentenceTransformer(str(output), device="cpu")
    queries = [e.query for e in examples[:4]] + ["word " * 40]
    texts = [d.text for d in documents[:4]] + ["word " * 60]
    for ours, theirs in (
        (encoder.encode("query", queries), reference.encode_query(queries)),
        (encoder.encode("document", texts), reference.encode_document(texts)),
    ):
        cosine = (ours * theirs).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1))
        assert cosine.min() >= 0.99999
        np.testing.assert_allclose(np.linalg.norm(ours, axis=1), np.linalg.norm(theirs, axis=1), rtol=1e-5)
    assert "give the same vectors" in (output / "README.md").read_text()
    # What builds on sentence-transformers loads it too: sentence-transformers-haystack's document embedder.
    from haystack_integrations.components.embedders.sentence_transformers import (
        SentenceTransformersDocumentEmbedder,
    )

    theirs = SentenceTransformersDocumentEmbedder(model=str(output), progress_bar=False)
    theirs.warm_up()
    embedded = theirs.run([Document(content=text) for text in texts])["documents"]
    theirs_vectors = np.array([d.embedding for d in embedded])
    ours = encoder.encode("document", texts)
    norms = np.linalg.norm(theirs_vectors, axis=1) * np.linalg.norm(ours, axis=1)
    assert ((theirs_vectors * ours).sum(1) / norms).min() >= 0.99999


def test_a_recipe_sentence_transformers_cannot_express_is_said_at_save(tmp_path, caplog):
    from simlm_haystack.st_checkpoint.writing import save_sentence_transformers_config

    with caplog.at_level("WARNING", logger="simlm_haystack"):
        reasons = save_sentence_transformers_config(tmp_path, get_recipe("simlm"), hidden_size=32)
    assert len(reasons) == 1 and "(title, text)" in reasons[0]
    assert [r for r in caplog.records if "not exactly as recipe 'simlm' reads it" in r.getMessage()]
    assert reasons[0] in (tmp_path / "README.md").read_text()
    config = json.loads((tmp_path / "sentence_bert_config.json").read_text())
    assert config == {"max_seq_length": 144, "do_lower_case": False, "query_length": 32, "document_length": 144}


def test_evaluate_is_the_trainers_loop_with_the_evaluators_metrics(trained):
    trainer, *_ = trained
    history = len(trainer.state.log_history)
    try:
        metrics = trainer.evaluate()
        assert trainer.state.log_history[-1] == {**metrics, "step": 60}  # logged by the Trainer
    finally:
        del trainer.state.log_history[history:]
    assert {"eval_nDCG@10", "eval_MRR@10", "eval_R@100", "eval_runtime"} <= set(metrics)
    # load_best_model_at_end put the best checkpoint back: evaluating it again gives its score.
    assert metrics["eval_nDCG@10"] == pytest.approx(trainer.state.best_metric, abs=1e-9)


def test_output_directory_loads_with_automodel_and_carries_tokenizer_and_recipe(trained):
    _, output, *_ = trained
    assert AutoModel.from_pretrained(output).config.hidden_size == 32
    assert AutoTokenizer.from_pretrained(output).tokenize("signal-transduction")[:2] == ["signal", "-"]
    assert Recipe.load(output) == PLANTED_RECIPE


class StopAt(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True
        return control


def test_resume_after_interruption_ends_at_the_same_weights(tmp_path, tiny_bert):
    _, examples = planted_task(tiny_bert)
    examples = examples[:12]  # 3 batches of 4 per epoch: the run crosses epochs, dropout is on

    def run(output, stop_at=None, resume=None):
        args = arguments(
            output, per_device_train_batch_size=4, max_steps=5, learning_rate=1e-3, save_strategy="steps", save_steps=2
        )
        trainer = build_trainer(tiny_bert, examples, args, recipe=get_recipe("simlm"))
        if stop_at:
            trainer.add_callback(StopAt(stop_at))
        trainer.train(resume_from_checkpoint=resume)
        return {name: tensor.clone() for name, tensor in trainer.model.state_dict().items()}

    uninterrupted = run(tmp_path / "whole")
    run(tmp_path / "broken", stop_at=4)  # checkpoint-4 is the last one written: stopped mid-second epoch
    resumed = run(tmp_path / "broken", resume=True)
    assert uninterrupted.keys() == resumed.keys()
    for name in uninterrupted:
        torch.testing.assert_close(resumed[name], uninterrupted[name], rtol=0, atol=0)


def test_tas_b_shape_trains_with_margin_mse_gradcache_and_bf16(tmp_path, tiny_distilbert):
    _, examples = planted_task(tiny_distilbert)
    scored = [
        TrainingExample(
            e.query,
            [Passage(p.text, p.title, p.id, score=10.0) for p in e.positives],
            [Passage(n.text, n.title, n.id, score=float(i)) for i, n in enumerate(e.negatives)],
        )
        for e in examples
    ]
    args = arguments(
        tmp_path,
        loss="margin-mse",
        tas_clusters=3,
        gradcache_chunk_size=4,
        bf16=True,
        per_device_train_batch_size=4,
        max_steps=3,
        logging_steps=1,
    )
    trainer = train(tiny_distilbert, scored, args, recipe="tas-b")
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 3 and all(math.isfinite(loss) for loss in losses)
    assert Recipe.load(tmp_path) == get_recipe("tas-b")


# ---- command line ----


def test_cli_trains_from_jsonl_with_a_corpus(tmp_path, tiny_bert, capsys):
    documents, examples = planted_task(tiny_bert)
    directory = write_planted_beir(tmp_path / "beir", documents, examples)
    lines = [{"query": e.query, "positives": [e.positives[0].id], "negatives": [e.negatives[0].id]} for e in examples]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    code = main(
        [
            "train",
            *("--model", tiny_bert, "--recipe", "simlm", "--train", str(tmp_path / "train.jsonl")),
            *("--corpus", str(directory / "corpus.jsonl"), "--output", str(tmp_path / "out")),
            *("--max-steps", "2", "--batch-size", "4", "--quiet"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert "Trained 2 steps on 24 queries" in capsys.readouterr().out
    assert Recipe.load(tmp_path / "out") == get_recipe("simlm")


def test_cli_reports_bad_training_data_with_the_line(tmp_path, tiny_bert, capsys):
    (tmp_path / "train.jsonl").write_text('{"query": "q", "positives": [{"text": "t"}]}\n{"positives": []}\n')
    code = main(["train", "--model", tiny_bert, "--train", str(tmp_path / "train.jsonl"), "--output", str(tmp_path)])
    assert code == 2
    assert "train.jsonl:2: no 'query'" in capsys.readouterr().err


def test_non_finite_loss_stops_with_step_and_batch_keeping_the_last_good_checkpoint(tmp_path, tiny_bert):
    from simlm_haystack.errors import NonFiniteLossError

    _, examples = planted_task(tiny_bert)
    args = arguments(
        tmp_path, per_device_train_batch_size=4, max_steps=6, learning_rate=1e-3, save_strategy="steps", save_steps=2
    )
    trainer = build_trainer(tiny_bert, examples, args, recipe=get_recipe("simlm"))
    healthy_loss = trainer.loss

    def poisoned_after_step_3(*tensors):
        loss = healthy_loss(*tensors)
        return loss * float("nan") if trainer.state.global_step >= 3 else loss

    trainer.loss = poisoned_after_step_3
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at step 4 \(a batch of 4 queries, first query") as error:
        trainer.train()
    assert str(tmp_path / "checkpoint-2") in str(error.value)
    good = AutoModel.from_pretrained(tmp_path / "checkpoint-2")
    assert all(torch.isfinite(p).all() for p in good.parameters())
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())  # no step was taken on the NaN


def test_cli_config_file_mines_evaluates_and_keeps_the_best(tmp_path, tiny_bert, capsys):
    documents, examples = planted_task(tiny_bert)
    directory = write_planted_beir(tmp_path / "beir", documents, examples)
    config = {
        "model": tiny_bert,
        "recipe": "simlm",
        "train": str(directory),
        "mine_negatives": True,
        "mine_ranks": [2, 7],
        "dev_queries": 0.25,
        "eval": str(directory),
        "eval_split": "dev",
        "output_dir": str(tmp_path / "out"),
        "max_steps": 2,
        "save_steps": 1,
        "per_device_train_batch_size": 4,
        "disable_tqdm": True,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    code = main(["train", str(tmp_path / "config.json")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"Mined hard negatives into {tmp_path / 'out' / 'train-mined.jsonl'}" in out
    mined = load_training_jsonl(tmp_path / "out" / "train-mined.jsonl")
    assert len(mined) == 18 and all(len(example.negatives) == 5 for example in mined)  # 6 of 24 held out
    # --dev_queries: the dev split is evaluated at every checkpoint and the best by nDCG@10 kept; --eval (here
    # the folder's own qrels/dev.tsv) is reported once at the end, not chosen on.
    assert "Holding 6 training queries out as the dev split (seed 1234)" in out
    assert "Trained 2 steps on 18 queries; saved the best checkpoint on dev (" in out and "nDCG@10" in out
    assert re.search(r"\(dev; reported, not used to choose\): nDCG@10 \d+\.\d\d, MRR@10", out), out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"config.json: no such file"),
        ("{", r"config.json: not valid JSON"),
        ("[1]", r"config.json: expected a JSON object"),
        ('{"model": "m", "train": "t", "output_dir": "o", "nope": 1}', r"config.json: .*not used.*nope"),
        ('{"train": "t", "output_dir": "o"}', r"config.json: .*'model'"),
    ],
)
def test_cli_reports_a_bad_config_file_in_one_line(tmp_path, capsys, content, message):
    if content is not None:
        (tmp_path / "config.json").write_text(content)
    code = main(["train", str(tmp_path / "config.json")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert re.search(message, err), err


def test_cli_rejects_bad_argument_values_in_one_line(tmp_path, capsys):
    code = main(["train", "--model", "m", "--train", "t", "--output_dir", str(tmp_path), "--mine_ranks", "5"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "mine_ranks must be START STOP" in err


def test_cli_train_flags_come_from_the_argument_dataclasses(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--loss {" + ",".join(LOSSES) + "}" in out  # the choices are the registry's names
    flags = ("--model", "--train", "--mine_negatives", "--eval_split", "--output_dir", "--n_negatives")
    aliases = ("--output", "--batch-size", "--epochs", "--warmup", "--negatives", "--quiet", "--resume")
    for flag in (*flags, *aliases, "--gradcache_chunk_size", "--gather_across_devices", "--learning_rate"):
        assert f"{flag} " in out or f"{flag}," in out, flag
