"""Pre-training on tiny random models, where the right answer is known."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import shutil
from pathlib import Path

import huggingface_hub
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import write_beir, write_jsonl
from haystack import Document
from transformers import (
    AutoModel,
    AutoTokenizer,
    BartConfig,
    BartForConditionalGeneration,
    BertConfig,
    BertForMaskedLM,
    TrainerCallback,
)

from simlm_haystack import DataError, DualEncoderDocumentEmbedder, DualEncoderTextEmbedder, ModelLoadError, Recipe
from simlm_haystack.cli import main as cli_main
from simlm_haystack.errors import SettingsError
from simlm_haystack.pretraining import (
    HeldOutCheck,
    MaskedLMGenerator,
    PretrainingArguments,
    PretrainingDataArguments,
    PretrainingReport,
    QueryAsContextModel,
    Reading,
    ReplacedLanguageModel,
    UnigramGenerator,
    WholeWordMasker,
    build_pretrainer,
    generate_queries,
    hold_out,
    label_free_scores,
    load_generator,
    nested_whole_word_masks,
    pairs_from_field,
    pretrain,
    pseudo_query_pairs,
    read_pairs,
    read_passages,
    split_sentences,
)
from simlm_haystack.pretraining import arguments as arguments_module
from simlm_haystack.pretraining import run as run_module
from simlm_haystack.pretraining.backbone import input_names, load_masked_lm
from simlm_haystack.pretraining.corpus import CorpusPassage, PassageDraw
from simlm_haystack.pretraining.heldout import fresh_encoder
from simlm_haystack.pretraining.masking import IGNORE
from simlm_haystack.pretraining.mlm import MaskedLanguageModel
from simlm_haystack.pretraining.run import run
from simlm_haystack.pretraining.trainer import HEADS_FILE
from simlm_haystack.recipes import RECIPE_FILE, get_recipe
from simlm_haystack.training import DualEncoderTrainingArguments, Passage, TrainingExample, build_trainer
from simlm_haystack.training.evaluator import RetrievalEvaluator

# SimLM's recipe with short passages: the vocabulary projection of every token dominates the cost of
# these tests, and nothing here depends on the length.
TINY_SIMLM = Recipe(
    name="tiny-simlm",
    query_max_length=16,
    document_max_length=32,
    title_mode="pair",
    default_title="-",
    pooling="cls",
    normalize=True,
    similarity="cosine",
    temperature=0.02,
)


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny models on a shared 2-core CPU: thread synchronisation costs more than the arithmetic.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def passages(sample_dir) -> list[CorpusPassage]:
    return read_passages(sample_dir / "corpus.jsonl")


@pytest.fixture(scope="module")
def tiny_generator(tmp_path_factory, tiny_bert) -> str:
    """A 1-layer random BertForMaskedLM sharing the tiny BERT's vocabulary (its head is in the checkpoint)."""
    directory = tmp_path_factory.mktemp("tiny-generator")
    torch.manual_seed(2)
    config = BertConfig(
        vocab_size=30522, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    BertForMaskedLM(config).save_pretrained(directory)
    AutoTokenizer.from_pretrained(tiny_bert).save_pretrained(directory)
    return str(directory)


def arguments(output_dir: Path, **overrides) -> PretrainingArguments:
    settings = {
        "output_dir": str(output_dir),
        "use_cpu": True,
        "report_to": [],
        "disable_tqdm": True,
        "save_strategy": "no",
        "logging_steps": 1,
        "per_device_train_batch_size": 4,
        "seed": 0,
    }
    return PretrainingArguments(**{**settings, **overrides})


def masker_for(model_dir: str, recipe: Recipe = TINY_SIMLM) -> WholeWordMasker:
    masked_lm, tokenizer = load_masked_lm(model_dir)
    return WholeWordMasker(tokenizer, recipe, input_names(masked_lm.base_model, tokenizer))


def rngs(count: int, seed: int = 0) -> list[np.random.Generator]:
    return [PassageDraw(i, (seed, 0, i)).rng() for i in range(count)]


# ---- whole-word masks ----


def test_nested_masks_take_whole_words_up_to_each_budget_and_contain_each_other():
    spans = [[1], [2, 3], [4], [5, 6, 7], [8], [9], [10, 11], [12]]  # 12 maskable tokens
    for seed in range(50):
        low, high = nested_whole_word_masks(spans, 14, [0.25, 0.5], np.random.default_rng(seed))
        assert low.sum() <= 3 and high.sum() <= 6 and low.sum() >= 2 and high.sum() >= 5
        assert not (low & ~high).any()
        for mask in (low, high):
            assert all(mask[span].all() or not mask[span].any() for span in spans)
            assert not mask[[0, 13]].any()


def test_corpus_masks_are_whole_words_at_30_and_50_percent_never_special(tiny_bert, passages):
    masker = masker_for(tiny_bert, get_recipe("simlm"))  # the real 144-token document form
    batch = passages[:200]
    encoding = masker.encode("document", [p.text for p in batch], [p.title for p in batch])
    encoder_mask, decoder_mask = masker.masks(encoding, [0.3, 0.5], rngs(len(batch)))
    labels = masker.labels(encoding)
    real = labels != IGNORE
    assert not (encoder_mask & ~decoder_mask).any()  # the 50% mask is a superset
    assert not (decoder_mask & ~real).any()  # [CLS], [SEP] and padding are never masked
    assert encoder_mask.sum() / real.sum() == pytest.approx(0.3, abs=0.01)
    assert decoder_mask.sum() / real.sum() == pytest.approx(0.5, abs=0.01)
    # No word partly masked, checked with WordPiece's own convention: "##x" continues the word before it.
    for row in range(len(batch)):
        tokens = masker.tokenizer.convert_ids_to_tokens(encoding["input_ids"][row])
        for mask in (encoder_mask[row], decoder_mask[row]):
            for position in range(1, len(tokens)):
                if tokens[position].startswith("##") and real[row, position] and real[row, position - 1]:
                    assert mask[position] == mask[position - 1], (row, tokens[position - 1 : position + 1])
    assert (labels[real] == encoding["input_ids"][real]).all()


def test_bert_corruption_is_80_10_10(tiny_bert, passages):
    masker = masker_for(tiny_bert)
    batch = passages[:200]
    encoding = masker.encode("document", [p.text for p in batch], [p.title for p in batch])
    features = masker.masked_lm_inputs(encoding, 0.3, rngs(len(batch)))
    masked = features["labels"] != IGNORE
    original = encoding["input_ids"][masked]
    corrupted = features["input_ids"][masked]
    assert (features["input_ids"][~masked] == encoding["input_ids"][~masked]).all()
    assert (corrupted == masker.tokenizer.mask_token_id).float().mean() == pytest.approx(0.8, abs=0.03)
    assert (corrupted == original).float().mean() == pytest.approx(0.1, abs=0.03)


# ---- generators ----


def test_generators_replace_only_masked_positions(tiny_bert, tiny_generator, passages):
    masker = masker_for(tiny_bert)
    encoding = masker.encode("document", [p.text for p in passages[:8]], [p.title for p in passages[:8]])
    (mask,) = masker.masks(encoding, [0.3], rngs(8))
    unigram = load_generator("unigram", masker.tokenizer, 30522, recipe=TINY_SIMLM, passages=passages)
    generator = load_generator(tiny_generator, masker.tokenizer, 30522, recipe=TINY_SIMLM, passages=passages)
    for replacer in (unigram, generator):
        torch.manual_seed(0)
        replaced = replacer.replace(encoding["input_ids"], encoding["attention_mask"], mask)
        assert (replaced[~mask] == encoding["input_ids"][~mask]).all()
        assert (replaced[mask] != encoding["input_ids"][mask]).float().mean() > 0.5
    # The unigram table holds the corpus's tokens and nothing else: no special token, no unseen token.
    seen = set(masker.encode("document", [p.text for p in passages], [p.title for p in passages])["input_ids"].unique())
    drawn = set(unigram.probabilities.nonzero().squeeze(1).tolist())
    assert drawn == {int(t) for t in seen} - set(masker.tokenizer.all_special_ids)


# ---- the losses, against a direct computation ----


@pytest.fixture
def simlm_batch(tmp_path, tiny_bert, tiny_generator, passages):
    trainer = build_pretrainer(
        tiny_bert, arguments(tmp_path, generator=tiny_generator), passages=passages[:16], recipe=TINY_SIMLM
    )
    batch = next(iter(trainer.get_train_dataloader()))
    return trainer.model.eval(), batch  # eval: no dropout, so two forwards can be compared


def test_rlm_losses_equal_a_direct_computation(simlm_batch):
    model, batch = simlm_batch
    labels, attention_mask, types = batch["labels"], batch["attention_mask"], batch["token_type_ids"]
    torch.manual_seed(0)
    encoder_ids = model.generator.replace(
        batch["input_ids"], attention_mask, batch["encoder_mask"], token_type_ids=types
    )
    decoder_ids = model.generator.replace(
        batch["input_ids"], attention_mask, batch["decoder_mask"], token_type_ids=types
    )
    torch.manual_seed(0)
    output = model(**batch)
    bert: BertForMaskedLM = model.encoder

    def mean_cross_entropy(logits, labels):
        log_probs = logits.log_softmax(-1)
        picked = [-log_probs[i, j, labels[i, j]] for i, j in zip(*torch.nonzero(labels != IGNORE).T, strict=True)]
        return torch.stack(picked).mean()

    # Encoder: the Hugging Face masked LM on the 30%-replaced copy, every real token a target.
    encoder_out = bert(
        input_ids=encoder_ids, attention_mask=attention_mask, token_type_ids=types, output_hidden_states=True
    )
    expected_encoder = mean_cross_entropy(encoder_out.logits, labels)
    # Decoder: as unilm writes it: [CLS] of the encoder's last layer, then the 50%-replaced copy's embeddings.
    hidden = torch.cat(
        [
            encoder_out.hidden_states[-1][:, :1],
            bert.bert.embeddings(input_ids=decoder_ids, token_type_ids=types)[:, 1:],
        ],
        dim=1,
    )
    extended = (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    for layer in model.decoder:
        hidden = layer(hidden, extended)
    expected_decoder = mean_cross_entropy(bert.cls(hidden), labels)
    torch.testing.assert_close(output["encoder_loss"], expected_encoder.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(output["decoder_loss"], expected_decoder.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        output["loss"].detach(), (expected_encoder + expected_decoder).detach(), rtol=1e-5, atol=1e-5
    )
    # The decoder starts as a copy of the encoder's last 2 layers.
    for copy_, original in zip(model.decoder, bert.bert.encoder.layer[-2:], strict=True):
        for (name, a), b in zip(copy_.state_dict().items(), original.state_dict().values(), strict=True):
            assert torch.equal(a, b), name
    assert bert.cls.predictions.decoder.weight is bert.bert.embeddings.word_embeddings.weight  # tied head


def test_the_decoder_sees_the_passage_only_through_the_encoder_cls(simlm_batch):
    model, batch = simlm_batch
    last_layer = model.backbone.layers[-1]

    def run(change=None):
        handle = None
        if change is not None:
            handle = last_layer.register_forward_hook(lambda module, inputs, output: change(output.clone()))
        torch.manual_seed(0)
        with torch.no_grad():
            output = model(**batch)
        if handle:
            handle.remove()
        return output

    def others(hidden):
        hidden[:, 1:] += torch.randn_like(hidden[:, 1:])
        return hidden

    def cls(hidden):
        hidden[:, 0] += torch.randn_like(hidden[:, 0])
        return hidden

    plain, other_changed, cls_changed = run(), run(others), run(cls)
    assert other_changed["encoder_loss"] != plain["encoder_loss"]  # the change reached the encoder's output
    assert other_changed["decoder_loss"] == plain["decoder_loss"]  # ... and not the decoder
    assert cls_changed["decoder_loss"] != plain["decoder_loss"]


@pytest.fixture
def qc_pairs(passages):
    return pairs_from_field(passages[:16], "title")


def test_generative_query_loss_equals_a_direct_computation(tmp_path, tiny_bert, qc_pairs):
    args = arguments(tmp_path, method="query-as-context", qc_variant="generative")
    trainer = build_pretrainer(tiny_bert, args, pairs=qc_pairs, recipe=TINY_SIMLM)
    model: QueryAsContextModel = trainer.model.eval()
    batch = next(iter(trainer.get_train_dataloader()))
    output = model(**batch)
    bert = model.encoder
    passage = {k: v for k, v in batch["passage"].items() if k != "labels"}
    out = bert(**passage, output_hidden_states=True)
    masked = batch["passage"]["labels"] != IGNORE
    expected_mlm = F.cross_entropy(out.logits[masked], batch["passage"]["labels"][masked])
    ids, attention = batch["query"]["input_ids"], batch["query"]["attention_mask"]
    hidden = torch.cat([out.hidden_states[-1][:, :1], bert.bert.embeddings(input_ids=ids)[:, 1:]], dim=1)
    # cotmae-qc's mask: causal; row i sees column 0 and columns i-2..i (attn_window 3); no padding.
    length = ids.shape[1]
    allowed = torch.tril(torch.ones(length, length, dtype=torch.bool))
    for i in range(4, length):
        allowed[i, 1 : i - 2] = False
    allowed = allowed[None, None] & attention.bool()[:, None, None, :]
    additive = torch.zeros(allowed.shape).masked_fill(~allowed, torch.finfo(torch.float32).min)
    hidden = model.decoder[0](hidden, additive)
    logits = bert.cls(hidden)[:, :-1]
    targets = ids[:, 1:].masked_fill(attention[:, 1:] == 0, IGNORE)
    expected_generation = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    torch.testing.assert_close(output["mlm_loss"], expected_mlm.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(output["generation_loss"], expected_generation.detach(), rtol=1e-5, atol=1e-5)
    # The query's words are the titles; the passages were read without them (else copying solves it).
    query_text = masker_for(tiny_bert).tokenizer.decode(ids[0], skip_special_tokens=True)
    passage_ids = batch["passage"]["input_ids"][0].tolist()
    assert passage_ids[1] == masker_for(tiny_bert).tokenizer.convert_tokens_to_ids("-")  # the recipe's "no title"
    assert query_text


def test_contrastive_loss_equals_a_direct_computation_and_gradcache_matches_it(tmp_path, tiny_bert, qc_pairs):
    args = arguments(  # with cotmae-qc's masked-LM term (off by default), so that both losses are checked
        tmp_path, method="query-as-context", qc_variant="contrastive", qc_mask_rate=0.15, per_device_train_batch_size=6
    )
    trainer = build_pretrainer(tiny_bert, args, pairs=qc_pairs, recipe=TINY_SIMLM)
    model: QueryAsContextModel = trainer.model.eval()
    batch = next(iter(trainer.get_train_dataloader()))
    bert = model.encoder
    vectors, sums, counts = [], 0.0, 0
    for side in ("passage", "query"):
        features = batch[side]
        out = bert(**{k: v for k, v in features.items() if k != "labels"}, output_hidden_states=True)
        vectors += [v / v.norm() for v in out.hidden_states[-1][:, 0].detach()]
        masked = features["labels"] != IGNORE
        sums += F.cross_entropy(out.logits[masked], features["labels"][masked], reduction="sum").item()
        counts += int(masked.sum())
    size = len(vectors) // 2
    contrastive = 0.0
    for i, anchor in enumerate(vectors):  # each text against every other; its partner is the positive
        scores = {j: float(anchor @ other) / 0.02 for j, other in enumerate(vectors) if j != i}
        contrastive += math.log(sum(math.exp(s) for s in scores.values())) - scores[(i + size) % (2 * size)]
    contrastive /= len(vectors)

    def loss_and_gradients(chunk_size):
        model.gradcache_chunk_size = chunk_size
        model.zero_grad()
        output = model(**batch)
        (output["loss"] / 2).backward()  # as the Trainer does with gradient accumulation
        gradients = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        return output, gradients

    full, full_gradients = loss_and_gradients(None)
    assert full["contrastive_loss"].item() == pytest.approx(contrastive, rel=1e-4)
    assert full["mlm_loss"].item() == pytest.approx(sums / counts, rel=1e-4)
    cached, cached_gradients = loss_and_gradients(4)
    assert cached["loss"].item() == pytest.approx(full["loss"].item(), rel=1e-5)
    assert cached_gradients.keys() == full_gradients.keys()
    for name in full_gradients:
        torch.testing.assert_close(cached_gradients[name], full_gradients[name], rtol=1e-4, atol=1e-6)


def test_contrastive_variant_without_masked_lm_reads_clean_text_and_trains_only_the_contrastive_loss(
    tmp_path, tiny_bert, qc_pairs
):
    args = arguments(tmp_path, method="query-as-context", qc_variant="contrastive", qc_mask_rate=0.0)
    trainer = build_pretrainer(tiny_bert, args, pairs=qc_pairs, recipe=TINY_SIMLM)
    batch = next(iter(trainer.get_train_dataloader()))
    masker = masker_for(tiny_bert)
    for side in ("passage", "query"):
        assert (batch[side]["labels"] == IGNORE).all()  # nothing to predict ...
        assert masker.tokenizer.mask_token_id not in batch[side]["input_ids"]  # ... and nothing corrupted
    model: QueryAsContextModel = trainer.model
    output = model(**batch)
    assert output["mlm_loss"].item() == 0.0
    assert output["loss"].item() == pytest.approx(output["contrastive_loss"].item())
    output["loss"].backward()
    head = dict(model.encoder.cls.predictions.transform.named_parameters())  # the masked-LM head's own layers
    assert head
    for name, parameter in head.items():
        assert parameter.grad is None or not parameter.grad.any(), name


# ---- training end to end ----


def logged(trainer, name="loss"):
    return [entry[name] for entry in trainer.state.log_history if name in entry and "train_runtime" not in entry]


def test_simlm_loss_falls_on_a_small_corpus(tmp_path, tiny_bert, tiny_generator, passages):
    args = arguments(
        tmp_path, generator=tiny_generator, max_steps=40, learning_rate=1e-2, warmup_steps=0, logging_steps=8
    )
    trainer = pretrain(tiny_bert, args, passages=passages[:32], recipe=TINY_SIMLM)
    encoder, decoder = logged(trainer, "encoder_loss"), logged(trainer, "decoder_loss")
    assert encoder[-1] < 0.7 * encoder[0] and decoder[-1] < 0.9 * decoder[0], (encoder, decoder)
    assert all(0.2 < share < 0.35 for share in logged(trainer, "replaced"))  # ~30% of tokens replaced
    # The output is the encoder alone, with its tokenizer and recipe.
    assert not (tmp_path / HEADS_FILE).exists()
    loaded, info = AutoModel.from_pretrained(tmp_path, output_loading_info=True)
    assert loaded.config.hidden_size == 32 and not info["missing_keys"]  # nothing initialised anew (the pooler)
    assert Recipe.load(tmp_path) == TINY_SIMLM


def test_offline_corpus_generator_is_trained_first_once_and_then_frozen(tmp_path, tiny_bert, passages, monkeypatch):
    args = arguments(tmp_path, generator="corpus", generator_layers=1, generator_steps=3, max_steps=1)
    trainer = build_pretrainer(tiny_bert, args, passages=passages[:8], recipe=TINY_SIMLM)
    generator = trainer.model.generator
    assert isinstance(generator, MaskedLMGenerator)
    assert generator.masked_lm.config.num_hidden_layers == 1
    assert not any(p.requires_grad for p in generator.parameters())
    saved = BertForMaskedLM.from_pretrained(tmp_path / "generator")  # with its head: a masked LM
    trained = {name: p for name, p in generator.masked_lm.named_parameters()}
    start = BertForMaskedLM.from_pretrained(tiny_bert, num_hidden_layers=1)
    layer = "bert.encoder.layer.0.attention.self.query.weight"
    assert torch.equal(saved.state_dict()[layer], trained[layer])
    assert not torch.equal(start.state_dict()[layer], trained[layer])  # it was trained on the corpus
    monkeypatch.setattr(MaskedLanguageModel, "forward", lambda *a, **k: pytest.fail("trained again"))
    again = build_pretrainer(tiny_bert, args, passages=passages[:8], recipe=TINY_SIMLM)
    torch.testing.assert_close(again.model.generator.masked_lm.state_dict()[layer], trained[layer], rtol=0, atol=0)


class StopAt(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True
        return control


@pytest.mark.parametrize("method", ["simlm", "generative"])
def test_resume_after_a_stop_ends_at_the_same_weights(tmp_path, tiny_bert, tiny_generator, passages, method):
    def run(output, stop_at=None, resume=None):
        settings = {"generator": tiny_generator} if method == "simlm" else {}
        if method == "generative":
            settings = {"method": "query-as-context", "qc_variant": "generative"}
        args = arguments(output, max_steps=5, save_strategy="steps", save_steps=2, **settings)
        data = {"passages": passages[:12]} if method == "simlm" else {"pairs": pairs_from_field(passages[:12])}
        trainer = build_pretrainer(tiny_bert, args, recipe=TINY_SIMLM, **data)
        if stop_at:
            trainer.add_callback(StopAt(stop_at))
        trainer.train(resume_from_checkpoint=resume)
        return {name: tensor.clone() for name, tensor in trainer.model.state_dict().items()}

    # 12 passages, 4 a batch: the run crosses epochs; dropout and the generator's sampling draw random numbers.
    uninterrupted = run(tmp_path / "whole")
    run(tmp_path / "broken", stop_at=4)
    assert (tmp_path / "broken" / "checkpoint-4" / HEADS_FILE).is_file()
    resumed = run(tmp_path / "broken", resume=True)
    assert uninterrupted.keys() == resumed.keys()
    for name in uninterrupted:
        torch.testing.assert_close(resumed[name], uninterrupted[name], rtol=0, atol=0)


def test_contrastive_variant_trains_with_gradcache_and_gradient_accumulation(tmp_path, tiny_bert, qc_pairs):
    args = arguments(
        tmp_path,
        method="query-as-context",
        qc_variant="contrastive",
        gradcache_chunk_size=3,
        per_device_train_batch_size=8,
        gradient_accumulation_steps=2,
        max_steps=2,
    )
    trainer = pretrain(tiny_bert, args, pairs=qc_pairs, recipe=TINY_SIMLM)
    assert trainer.state.global_step == 2
    assert all(math.isfinite(v) for v in logged(trainer, "contrastive_loss") + logged(trainer, "mlm_loss"))
    assert trainer.args.learning_rate == 1e-4 and trainer.args.weight_decay == 0.01  # the paper's defaults


@pytest.mark.parametrize("method", ["simlm", "generative", "contrastive"])
def test_distilbert_encoders_pre_train_too(tmp_path, tiny_distilbert, passages, method):
    tas_b = dataclasses.replace(get_recipe("tas-b"), document_max_length=32, query_max_length=16)
    settings = {"generator": "unigram"} if method == "simlm" else {"method": "query-as-context", "qc_variant": method}
    data = {"passages": passages[:8]} if method == "simlm" else {"pairs": pairs_from_field(passages[:8])}
    trainer = pretrain(tiny_distilbert, arguments(tmp_path, max_steps=2, **settings), recipe=tas_b, **data)
    assert all(math.isfinite(entry["loss"]) for entry in trainer.state.log_history if "loss" in entry)
    loaded, info = AutoModel.from_pretrained(tmp_path, output_loading_info=True)
    assert type(loaded).__name__ == "DistilBertModel" and not info["missing_keys"]


def test_output_loads_in_the_embedders_and_the_fine_tuning_trainer(tmp_path, tiny_bert, passages):
    args = arguments(tmp_path / "pretrained", generator="unigram", max_steps=2)
    pretrain(tiny_bert, args, passages=passages[:8], recipe="simlm")
    output = str(tmp_path / "pretrained")
    assert Recipe.load(output) == get_recipe("simlm")
    documents = DualEncoderDocumentEmbedder(model=output, progress_bar=False).run(
        [Document(content=p.text, meta={"title": p.title}) for p in passages[:3]]
    )["documents"]
    assert len(documents[0].embedding) == 32
    assert len(DualEncoderTextEmbedder(model=output, progress_bar=False).run("a question")["embedding"]) == 32
    examples = [
        TrainingExample(query=p.title or "q", positives=[Passage(text=p.text, title=None, id=p.id)])
        for p in passages[:8]
    ]
    fine_tuning = DualEncoderTrainingArguments(
        output_dir=str(tmp_path / "fine-tuned"), use_cpu=True, report_to=[], disable_tqdm=True, save_strategy="no",
        n_negatives=0, per_device_train_batch_size=4, max_steps=1,
    )  # fmt: skip
    trainer = build_trainer(output, examples, fine_tuning)
    trainer.train()
    assert trainer.recipe == get_recipe("simlm")  # read from the pre-trained output


# ---- query sources ----


def test_pairs_from_the_title_read_the_passage_without_it(passages):
    pairs = pairs_from_field(passages[:5], "title")
    assert [pair.queries for pair in pairs] == [(p.title,) for p in passages[:5]]
    assert all(
        pair.passage.title is None and pair.passage.text == p.text for pair, p in zip(pairs, passages, strict=False)
    )


def test_doc2query_generation_samples_several_queries_saves_them_and_runs_once(
    tmp_path, tiny_bert, passages, monkeypatch
):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    config = BartConfig(
        vocab_size=len(tokenizer), d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
        decoder_attention_heads=2, encoder_ffn_dim=16, decoder_ffn_dim=16, max_position_embeddings=600,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
        decoder_start_token_id=tokenizer.cls_token_id, forced_eos_token_id=None,
    )  # fmt: skip
    torch.manual_seed(3)
    BartForConditionalGeneration(config).save_pretrained(tmp_path / "doc2query")
    tokenizer.save_pretrained(tmp_path / "doc2query")
    output = tmp_path / "queries.jsonl"
    pairs = generate_queries(
        tmp_path / "doc2query", passages[:3], output, queries_per_passage=3, max_length=8, progress_bar=False
    )
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert [line["_id"] for line in lines] == [p.id for p in passages[:3]]
    assert all(1 <= len(line["queries"]) <= 3 for line in lines) and len(pairs) == 3
    assert read_pairs(output)[0].passage.text == passages[0].text

    def fail(*args, **kwargs):
        raise AssertionError("generated again")

    monkeypatch.setattr(BartForConditionalGeneration, "generate", fail)
    again = generate_queries(tmp_path / "doc2query", passages[:3], output, queries_per_passage=3, progress_bar=False)
    assert [pair.queries for pair in again] == [pair.queries for pair in pairs]


# ---- bad input fails before training ----


def test_empty_or_bad_corpus_is_an_error_naming_the_line(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(DataError, match="empty"):
        read_passages(tmp_path / "empty.jsonl")
    write_jsonl(tmp_path / "bad.jsonl", [{"_id": "1", "text": "fine"}, {"_id": "2", "title": "no text field"}])
    with pytest.raises(DataError, match=r"bad.jsonl:2: no 'text'"):
        read_passages(tmp_path / "bad.jsonl")
    write_jsonl(tmp_path / "blank.jsonl", [{"_id": "1", "text": "fine"}, {"_id": "2", "title": "", "text": " "}])
    with pytest.raises(DataError, match=r"blank.jsonl:2: the passage has neither text nor title"):
        read_passages(tmp_path / "blank.jsonl")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"text": "a passage"}, "no 'query' or 'queries'"),
        ({"text": "a passage", "queries": []}, "'queries' must be a non-empty list"),
        ({"text": "a passage", "queries": ["ok", ""]}, "every query must be a non-empty string"),
        ({"title": "t", "query": "q"}, "no 'text'"),
    ],
)
def test_pair_files_with_missing_fields_name_the_line(tmp_path, line, message):
    write_jsonl(tmp_path / "pairs.jsonl", [{"text": "fine", "query": "fine"}, line])
    with pytest.raises(DataError, match=rf"pairs.jsonl:2: {message}"):
        read_pairs(tmp_path / "pairs.jsonl")


def test_a_generator_with_another_vocabulary_or_no_masked_lm_head_is_refused(
    tmp_path, tiny_bert, tiny_generator, passages
):
    other = tmp_path / "other-vocabulary"
    tokenizer = AutoTokenizer.from_pretrained(tiny_generator)
    tokenizer.add_tokens(["notinbert"])
    tokenizer.save_pretrained(other)
    BertForMaskedLM.from_pretrained(tiny_generator).save_pretrained(other)
    args = arguments(tmp_path / "out", generator=str(other))
    with pytest.raises(
        ModelLoadError, match=r"does not share the encoder's vocabulary \(30523 vs 30522 tokens.*notinbert"
    ):
        build_pretrainer(tiny_bert, args, passages=passages[:4], recipe=TINY_SIMLM)
    with pytest.raises(ModelLoadError, match=r"is not a masked language model.*--generator unigram"):
        build_pretrainer(
            tiny_bert, arguments(tmp_path / "out", generator=tiny_bert), passages=passages[:4], recipe=TINY_SIMLM
        )


def test_without_a_generator_offline_one_message_names_the_fallback(tmp_path, tiny_bert, passages, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no retries against an unreachable hub
    args = arguments(tmp_path)  # the paper's google/electra-base-generator: not available offline
    with pytest.raises(ModelLoadError, match=r"could not be loaded .*Without one, pass --generator corpus.*unigram"):
        build_pretrainer(tiny_bert, args, passages=passages[:4], recipe=TINY_SIMLM)


def main(argv: list[str]) -> int:
    return cli_main(["pretrain", *argv])


def test_cli_reports_bad_input_as_one_line_and_trains_from_a_json_config(tmp_path, tiny_bert, sample_dir, capsys):
    assert main(["--model", tiny_bert, "--corpus", str(sample_dir / "corpus.jsonl")]) == 2
    assert "an output directory is required (--output)" in capsys.readouterr().err
    write_jsonl(tmp_path / "pairs.jsonl", [{"text": "fine", "query": "fine"}, {"text": "no query here"}])
    code = main(
        [
            *("--method", "query-as-context", "--model", tiny_bert, "--recipe", "simlm"),
            *("--pairs", str(tmp_path / "pairs.jsonl"), "--output", str(tmp_path / "out")),
        ]
    )
    assert code == 2
    assert "pairs.jsonl:2: no 'query' or 'queries'" in capsys.readouterr().err
    config = {
        "method": "simlm",
        "model": tiny_bert,
        "recipe": "simlm",
        "corpus": str(sample_dir / "corpus.jsonl"),
        "generator": "unigram",
        "output_dir": str(tmp_path / "out"),
        "max_steps": 1,
        "per_device_train_batch_size": 2,
        "use_cpu": True,
        "report_to": "none",
        "disable_tqdm": True,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert main([str(tmp_path / "config.json")]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "(read as 'simlm') with simlm for 1 steps on 285 passages" in out  # 15 of the 300 held out
    assert "Held-out check: 15 pseudo-queries (both) whose passages were never trained on" in out
    assert out.strip().splitlines()[-1].startswith(("Better: ", "Worse: ", "No change: "))  # the verdict, last
    assert (tmp_path / "out" / RECIPE_FILE).is_file()
    # Also a sentence-transformers folder; its README says that SimLM's (title, text) pair is not expressible.
    assert (tmp_path / "out" / "modules.json").is_file()
    assert "tokenizer pair (title, text)" in (tmp_path / "out" / "README.md").read_text()


def test_half_precision_only_where_native(tmp_path, monkeypatch):
    monkeypatch.setattr(arguments_module, "native_bf16", lambda: False)
    assert not arguments(tmp_path, bf16=True).bf16
    monkeypatch.setattr(arguments_module, "native_bf16", lambda: True)
    assert arguments(tmp_path, bf16=True).bf16
    assert not arguments(tmp_path, fp16=True).fp16  # no CPU multiplies fp16 natively here


def test_unigram_generator_needs_tokens():
    with pytest.raises(DataError):
        UnigramGenerator(torch.zeros(10))


def test_rlm_refuses_a_decoder_deeper_than_the_encoder(tiny_bert):
    masked_lm, _ = load_masked_lm(tiny_bert)
    with pytest.raises(ValueError, match="decoder_layers"):
        ReplacedLanguageModel(masked_lm, UnigramGenerator(torch.ones(30522)), decoder_layers=3)


# ---- pseudo-queries from the passage itself ----

NUMBERED_SENTENCES = [f"Sentence {i} says word{i}a word{i}b word{i}c." for i in range(6)]


def test_sentences_split_at_end_punctuation_and_short_pieces_join_the_next():
    text = "Methods. We measured x in 20 mice. Results 2.5 fold higher! Was it real? Yes. It was e.g. Tested twice."
    assert split_sentences(text) == [
        "Methods. We measured x in 20 mice.",
        "Results 2.5 fold higher!",
        "Was it real?",
        # "Yes." alone is too short to be a query or a passage: it joins the next piece, "It was e.g." (a rule,
        # not a parser), and the last piece, too short as well, joins the one before it.
        "Yes. It was e.g. Tested twice.",
    ]
    assert split_sentences("One sentence only, no end") == ["One sentence only, no end"]


def test_inverse_cloze_takes_one_sentence_out_of_its_passage_as_the_query():
    passage = CorpusPassage(text=" ".join(NUMBERED_SENTENCES), title="A title", where="c.jsonl:1")
    (item,) = pseudo_query_pairs([passage], "inverse-cloze")
    chosen = []
    for seed in range(300):
        query, drawn = item.draw(np.random.default_rng(seed))
        position = NUMBERED_SENTENCES.index(query)  # a whole sentence of the passage ...
        rest = NUMBERED_SENTENCES[:position] + NUMBERED_SENTENCES[position + 1 :]
        assert drawn.text == " ".join(rest) and query not in drawn.text  # ... cut out of it, the rest in order
        assert drawn.title == "A title" and drawn.where == "c.jsonl:1"  # the title stays: it is not the query
        chosen.append(position)
    assert np.bincount(chosen).min() > 300 / 6 * 0.6  # every sentence is drawn, about evenly
    # ORQA's variant keeps the sentence in 10% of training draws; the held-out check never does.
    (keeping,) = pseudo_query_pairs([passage], "inverse-cloze", keep_rate=0.5)
    kept = [keeping.draw(np.random.default_rng(seed))[1].text == passage.text for seed in range(200)]
    assert 0.35 < np.mean(kept) < 0.65
    for seed in range(50):
        query, drawn = keeping.draw(np.random.default_rng(seed), evaluation=True)
        assert query not in drawn.text


def test_cropping_cuts_a_contriever_span_out_of_its_passage_as_the_query():
    words = [f"w{i}" for i in range(100)]
    passage = CorpusPassage(text=" ".join(words), where="c.jsonl:1")
    (item,) = pseudo_query_pairs([passage], "cropping")
    lengths, starts = [], []
    for seed in range(300):
        query, drawn = item.draw(np.random.default_rng(seed))
        span = query.split()
        start = words.index(span[0])
        assert span == words[start : start + len(span)]  # a contiguous span of the passage ...
        assert drawn.text.split() == words[:start] + words[start + len(span) :]  # ... cut out of it
        assert not set(span) & set(drawn.text.split())
        lengths.append(len(span))
        starts.append(start)
    # Contriever's randomcrop: int(n x U(0.1, 0.5)) words, at a uniform start.
    assert min(lengths) >= 10 and max(lengths) <= 50 and np.mean(lengths) == pytest.approx(30, abs=2.5)
    ends = [start + length for start, length in zip(starts, lengths, strict=True)]
    assert min(starts) == 0 and max(ends) == 100  # spans reach both ends of the passage


def test_both_draws_either_kind_and_crops_a_passage_of_one_sentence():
    long = CorpusPassage(text=" ".join(NUMBERED_SENTENCES), where="c.jsonl:1")
    short = CorpusPassage(text="just one sentence with seven plain words", where="c.jsonl:2")
    mixed, single = pseudo_query_pairs([long, short], "both")
    whole_sentences = [mixed.draw(np.random.default_rng(seed))[0] in NUMBERED_SENTENCES for seed in range(200)]
    assert 0.35 < np.mean(whole_sentences) < 0.8  # half inverse cloze, plus crops that happen to match a sentence
    for seed in range(20):
        query, drawn = single.draw(np.random.default_rng(seed))
        assert sorted(query.split() + drawn.text.split()) == sorted(short.text.split())


# ---- the held-out check ----


class TableEncoder:
    """An encoder whose vectors are looked up, so that the right ranking is known."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors

    def encode(self, side, texts, titles=None, *, batch_size=32):
        return np.array([self.vectors[text] for text in texts], dtype=np.float32)


def test_label_free_scores_rank_each_query_s_passage_among_the_whole_corpus():
    # Query a finds its passage first; b second (x is closer); c only 12th (11 passages closer).
    vectors = {"qa": [1, 0, 0], "qb": [0, 1, 0], "qc": [0, 0, 1], "da": [1, 0, 0], "db": [0, 0.5, 0], "x": [0, 1, 0]}
    vectors["dc"] = [0.5, 0, 0.01]
    documents = {"a": "da", "b": "db", "c": "dc", "x": "x"}
    for i in range(11):
        vectors[f"n{i}"] = [0, 0, 0.1 + i / 100]
        documents[f"n{i}"] = f"n{i}"
    check = HeldOutCheck(
        queries={"a": "qa", "b": "qb", "c": "qc"},
        answers={"a": "a", "b": "b", "c": "c"},
        documents={key: CorpusPassage(text=text) for key, text in documents.items()},
        source="test",
    )
    scores = label_free_scores(TableEncoder(vectors), check)
    assert scores == {
        "MRR@10": pytest.approx(100 * (1 + 1 / 2 + 0) / 3, abs=1e-3),
        "R@10": pytest.approx(200 / 3, abs=1e-3),
        "R@100": 100.0,
    }
    # Against a direct computation on random vectors: rank = 1 + passages scoring higher.
    rng = np.random.default_rng(0)
    keys = [f"d{i}" for i in range(40)]
    table = {key: list(rng.normal(size=4)) for key in keys + [f"q{i}" for i in range(15)]}
    check = HeldOutCheck(
        queries={f"q{i}": f"q{i}" for i in range(15)},
        answers={f"q{i}": f"d{2 * i}" for i in range(15)},
        documents={key: CorpusPassage(text=key) for key in keys},
        source="test",
    )
    reciprocal = []
    for i in range(15):
        scores_i = {key: float(np.dot(table[f"q{i}"], table[key])) for key in keys}
        rank = 1 + sum(score > scores_i[f"d{2 * i}"] for score in scores_i.values())
        reciprocal.append(1 / rank if rank <= 10 else 0)
    assert label_free_scores(TableEncoder(table), check)["MRR@10"] == pytest.approx(100 * np.mean(reciprocal), abs=1e-3)


def test_hold_out_is_fixed_by_its_seed_and_caps_the_corpus(passages):
    items = pairs_from_field(passages, "title")
    training, check = hold_out(items, share=0.05, max_queries=500, corpus_size=10_000, seed=0, source="title")
    assert len(check.queries) == 15 and len(training) == 285 and len(check.documents) == 300
    assert not {item.document.where for item in training} & set(check.held_out)
    again = hold_out(items, share=0.05, max_queries=500, corpus_size=10_000, seed=0, source="title")[1]
    assert again.digest() == check.digest()
    assert hold_out(items, share=0.05, max_queries=500, corpus_size=10_000, seed=1, source="title")[1].digest() != (
        check.digest()
    )
    # Each held-out title must find its passage, read without that title.
    for key, query in check.queries.items():
        passage = check.documents[check.answers[key]]
        assert passage.title is None and query not in passage.text
    capped = hold_out(items, share=0.05, max_queries=4, corpus_size=50, seed=0, source="title")[1]
    assert len(capped.queries) == 4 and len(capped.documents) == 50
    assert set(capped.answers.values()) <= set(capped.documents)
    assert hold_out(items, share=0.0, max_queries=4, corpus_size=50, seed=0, source="title") == (items, None)


TINY_MEAN = Recipe(name="tiny-mean", query_max_length=16, document_max_length=32, pooling="mean", temperature=0.05)


@pytest.fixture(scope="module")
def tiny_bert_read_as_mean(tmp_path_factory, tiny_bert) -> str:
    """The tiny BERT with a recipe of its own saved beside it (mean pooling), as a sentence-transformers model has."""
    directory = tmp_path_factory.mktemp("tiny-bert-mean") / "model"
    shutil.copytree(tiny_bert, directory)
    TINY_MEAN.save(directory)
    return str(directory)


def data_arguments(model: str, **overrides) -> PretrainingDataArguments:
    return PretrainingDataArguments(model=model, **overrides)


def sample_slice(tmp_path: Path, sample_dir: Path, size: int, *, titles: bool = True) -> Path:
    lines = [json.loads(line) for line in (sample_dir / "corpus.jsonl").read_text().splitlines()[:size]]
    if not titles:
        lines = [{key: value for key, value in line.items() if key != "title"} for line in lines]
    return write_jsonl(tmp_path / "corpus.jsonl", lines)


def test_an_unchanged_model_scores_exactly_the_same_before_and_after(tmp_path, tiny_bert_read_as_mean, sample_dir):
    corpus = sample_slice(tmp_path, sample_dir, 60)
    data = data_arguments(tiny_bert_read_as_mean, corpus=str(corpus), pseudo_queries="inverse-cloze", heldout_share=0.2)
    args = arguments(tmp_path / "out", method="query-as-context", qc_mask_rate=0.0, learning_rate=0.0, max_steps=2)
    outcome = run(data, args)
    report = outcome.report
    assert report.own_recipe == TINY_MEAN and report.trained_recipe == TINY_MEAN  # its own recipe by default
    assert report.start_trained is None and not report.warnings
    assert report.check["queries"] == 12 and report.check["documents"] == 60
    assert report.result.heldout == report.start_own.heldout  # the same weights, checked the same way
    assert report.verdict().startswith("No change: held-out MRR@10")
    saved = json.loads((tmp_path / "out" / "pretraining_report.json").read_text())
    assert saved["verdict"] == report.verdict() and saved["start_own"]["recipe"] == "tiny-mean"
    # The held-out passages were never trained on.
    trained = {pair.document.where for pair in outcome.trainer.train_dataset.items}
    assert len(trained) == 48 and not trained & report_held_out(data)


def report_held_out(data) -> set[str]:
    """The held-out lines, recomputed independently of run() from the same seed."""
    passages = read_passages(data.corpus)
    items = pseudo_query_pairs(passages, data.pseudo_queries)
    _, check = hold_out(items, share=data.heldout_share, max_queries=500, corpus_size=10_000, seed=0, source="x")
    return set(check.held_out)


def test_pre_training_another_recipe_is_warned_about_with_the_model_s_own_score(
    tmp_path, tiny_bert_read_as_mean, sample_dir, caplog
):
    corpus = sample_slice(tmp_path, sample_dir, 40)
    data = data_arguments(tiny_bert_read_as_mean, corpus=str(corpus), query_field="title", heldout_share=0.25)
    data.recipe = TINY_SIMLM  # Python may pass a Recipe; the command line passes a registered name
    args = arguments(tmp_path / "out", method="query-as-context", qc_mask_rate=0.0, max_steps=1, warmup_steps=0)
    with caplog.at_level(logging.WARNING, logger="simlm_haystack.pretraining.run"):
        report = run(data, args).report
    own, other = report.start_own.heldout["MRR@10"], report.start_trained.heldout["MRR@10"]
    (warning,) = [
        record.getMessage() for record in caplog.records if "was trained to be read as" in record.getMessage()
    ]
    assert "'tiny-mean' (mean pooling, queries 16 / documents 32 tokens)" in warning
    assert "as 'tiny-simlm' (cls pooling, queries 16 / documents 32 tokens, (title, text) pairs)" in warning
    assert f"read as 'tiny-mean' held-out MRR@10 {own:.2f}" in warning
    assert f"read as 'tiny-simlm' held-out MRR@10 {other:.2f}" in warning
    assert report.warnings == [warning]
    # The verdict compares the result with the start read its own way, not with the weaker reading.
    result = report.result.heldout["MRR@10"]
    difference = round(result - own, 2)
    word = "Better" if difference > 0 else "Worse" if difference < 0 else "No change"
    assert report.verdict().startswith(word) and f"{result:.2f} against {own:.2f}" in report.verdict()
    assert "read its own way" in report.verdict()
    # A gain on held-out pseudo-queries alone comes with the caution that they favour the trained model.
    assert ("confirm with judged queries (--eval-data)" in report.verdict()) == (difference > 0)


def test_a_worse_result_is_said_plainly():
    start = Reading("start", "m", TINY_MEAN, heldout={"MRR@10": 41.9, "R@10": 1.0, "R@100": 1.0})
    result = Reading("result", "out", TINY_SIMLM, heldout={"MRR@10": 34.4, "R@10": 1.0, "R@100": 1.0})
    report = PretrainingReport(
        model="m", output="out", trained_recipe=TINY_SIMLM, own_recipe=TINY_MEAN, start_own=start, result=result
    )
    assert report.verdict() == (
        "Worse: the pre-trained model loses 7.50 points (held-out MRR@10 34.40 against 41.90 for m read its own "
        "way). m read its own way, without this pre-training, is the better retriever."
    )
    assert report.lines()[-1] == report.verdict()


def test_a_gain_on_held_out_pseudo_queries_alone_is_not_called_proof():
    start = Reading("start", "m", TINY_MEAN, heldout={"MRR@10": 77.56, "R@10": 1.0, "R@100": 1.0})
    result = Reading("result", "out", TINY_MEAN, heldout={"MRR@10": 81.59, "R@10": 1.0, "R@100": 1.0})
    report = PretrainingReport(
        model="m", output="out", trained_recipe=TINY_MEAN, own_recipe=TINY_MEAN, start_own=start, result=result
    )
    assert report.verdict() == (
        "Better: the pre-trained model gains 4.03 points (held-out MRR@10 81.59 against 77.56 for m read its own "
        "way). These held-out queries are of the kind it was trained on, which favours it: confirm with judged "
        "queries (--eval-data) before using it."
    )
    # Judged queries settle it, without the caution.
    judged_start = dataclasses.replace(start, judged={"nDCG@10": 64.51})
    judged_result = dataclasses.replace(result, judged={"nDCG@10": 65.0})
    judged = dataclasses.replace(report, start_own=judged_start, result=judged_result, judged_data="scifact (test)")
    assert judged.verdict().startswith("Better: the pre-trained model gains 0.49 points (nDCG@10 on scifact (test)")
    assert "--eval-data" not in judged.verdict()


def test_frozen_embeddings_and_layers_do_not_move(tmp_path, tiny_bert, qc_pairs):
    args = arguments(
        tmp_path, method="query-as-context", qc_mask_rate=0.0, freeze_embeddings=True, freeze_layers=1,
        learning_rate=1e-2, warmup_steps=0, max_steps=2,
    )  # fmt: skip
    trainer = pretrain(tiny_bert, args, pairs=qc_pairs, recipe=TINY_SIMLM)
    start, end = AutoModel.from_pretrained(tiny_bert).state_dict(), AutoModel.from_pretrained(tmp_path).state_dict()
    for name in start:
        if name.startswith(("embeddings.", "encoder.layer.0.")):
            assert torch.equal(start[name], end[name]), name
    assert not torch.equal(start["encoder.layer.1.output.dense.weight"], end["encoder.layer.1.output.dense.weight"])
    assert trainer.state.global_step == 2
    with pytest.raises(SettingsError, match="freeze_layers is 3, but the encoder has only 2 layers"):
        build_pretrainer(
            tiny_bert,
            arguments(tmp_path, method="query-as-context", freeze_layers=3),
            pairs=qc_pairs,
            recipe=TINY_SIMLM,
        )


@pytest.mark.parametrize(
    ("flags", "titles", "text", "message"),
    [
        (["--query-field", "title"], False, "A passage. With two sentences.", r"corpus.jsonl:1: no passage .* 'title'"),
        (
            ["--pseudo-queries", "inverse-cloze"],
            True,
            "One sentence only",
            r"corpus.jsonl:1: no passage is long enough",
        ),
        (["--pseudo-queries", "cropping"], True, "word", r"corpus.jsonl:1: no passage is long enough"),
    ],
)
def test_a_corpus_that_gives_no_queries_fails_before_any_model_is_loaded(
    tmp_path, tiny_bert, capsys, monkeypatch, flags, titles, text, message
):
    lines = [{"_id": str(i), "text": text, **({"title": f"t{i}"} if titles else {})} for i in range(3)]
    corpus = write_jsonl(tmp_path / "corpus.jsonl", lines)
    monkeypatch.setattr(run_module, "pretrain", lambda *a, **k: pytest.fail("training started"))
    monkeypatch.setattr(run_module, "fresh_encoder", lambda *a, **k: pytest.fail("a model was loaded"))
    code = main(
        [
            *("--method", "query-as-context", "--model", tiny_bert, "--recipe", "simlm"),
            *("--corpus", str(corpus), "--output", str(tmp_path / "out"), *flags),
        ]
    )
    assert code == 2
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and re.search(message, error), error


def test_judged_queries_are_scored_by_the_evaluator_and_the_start_is_measured_once(
    tmp_path, tiny_bert_read_as_mean, sample_dir, monkeypatch
):
    documents = [json.loads(line) for line in (sample_dir / "corpus.jsonl").read_text().splitlines()[:30]]
    queries = [{"_id": f"q{i}", "text": document["title"]} for i, document in enumerate(documents[:10])]
    qrels = ["query-id\tcorpus-id\tscore", *(f"q{i}\t{d['_id']}\t1" for i, d in enumerate(documents[:10]))]
    beir = write_beir(tmp_path / "beir", documents, queries, {"test": qrels})
    data = data_arguments(
        tiny_bert_read_as_mean, corpus=str(beir / "corpus.jsonl"), pseudo_queries="cropping", heldout_share=0.2,
        eval_data=str(beir), score_cache=str(tmp_path / "cache"),
    )  # fmt: skip
    args = arguments(tmp_path / "first", method="query-as-context", qc_mask_rate=0.0, max_steps=1, warmup_steps=0)
    report = run(data, args).report
    expected = RetrievalEvaluator(str(beir), "test")(fresh_encoder(tiny_bert_read_as_mean, TINY_MEAN))
    assert report.start_own.judged == {name: pytest.approx(value, abs=1e-3) for name, value in expected.items()}
    assert report.result.judged is not None and report.judged_data == f"{beir} (test)"
    assert f"nDCG@10 on {beir} (test) {report.result.judged['nDCG@10']:.2f}" in report.verdict()
    # A second run from the same start reads the start's scores from the cache: nothing is encoded for it.
    encoded = []
    original = run_module.label_free_scores
    monkeypatch.setattr(run_module, "label_free_scores", lambda *a, **k: encoded.append(1) or original(*a, **k))
    second = arguments(
        tmp_path / "second", method="query-as-context", qc_mask_rate=0.0, max_steps=1, warmup_steps=0, seed=1
    )
    again = run(data, second).report  # another seed: other weights (the same weights would come from the cache too)
    assert again.start_own == report.start_own and len(encoded) == 1  # the result only
