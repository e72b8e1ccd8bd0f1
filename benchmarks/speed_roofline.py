"""A SimLM-sized model (BERT-base, random weights) per precision mode, next to this CPU's roofline.

Documents are SciFact (title, text) pairs that fill the SimLM recipe's 144 tokens. The roofline is
measured in the same run, alternating with the model: the median fp32 and bf16 matmul GFLOP/s of
this CPU on the model's own FFN shape, divided by the model's FLOPs per document (the full forward:
every layer at every position; the [CLS]-only last layer does less, so it can pass 100%).

    .venv/bin/python -m benchmarks.speed_roofline --docs 64 --rounds 3   # --data DIR: another BEIR collection
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime

import torch
from transformers import AutoTokenizer, BertConfig, BertModel

from benchmarks.collection import iter_corpus
from benchmarks.common import MODEL, add_data_argument, cpu_model, result_file, uptime, usable_cores, write_results
from simlm_haystack.encoding import DualEncoder, tokenize
from simlm_haystack.fast import native_bf16
from simlm_haystack.models import load_model, local_model_path
from simlm_haystack.recipes import get_recipe

RESULTS = result_file("speed_roofline")


def flops_per_document(config: BertConfig, length: int) -> float:
    """Multiply-adds x 2 of the encoder's matmuls: projections, attention scores and mixing, FFN."""
    hidden, inner = config.hidden_size, config.intermediate_size
    per_layer = 2 * length * (4 * hidden * hidden + 2 * hidden * inner) + 4 * length * length * hidden
    return float(config.num_hidden_layers * per_layer)


def matmul_gflops(dtype: torch.dtype, rows: int, hidden: int, inner: int, repeats: int = 5) -> float:
    """Median GFLOP/s of ``(rows x hidden) @ (hidden x inner)``, the model's biggest matmul."""
    inputs = torch.randn(rows, hidden).to(dtype)
    weight = torch.randn(inner, hidden).to(dtype)
    torch.nn.functional.linear(inputs, weight)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.nn.functional.linear(inputs, weight)
        times.append(time.perf_counter() - start)
    return 2 * rows * hidden * inner / statistics.median(times) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--docs", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--modes", nargs="+", default=["exact", "fast"])
    parser.add_argument("--bf16-docs", type=int, default=8, help="bf16 measured on this many (0: skip)")
    args = parser.parse_args()

    recipe = get_recipe("simlm")
    tokenizer = AutoTokenizer.from_pretrained(local_model_path(MODEL))
    titles, texts = [], []
    for document in iter_corpus(args.data):
        title, text = document.meta["title"], document.content
        if len(tokenize(tokenizer, recipe, "document", [text], [title])["input_ids"][0]) == 144:
            titles.append(title)
            texts.append(text)
        if len(texts) == args.docs:
            break

    config = BertConfig()  # bert-base-uncased shape: 12 layers, 768-d, 3072 FFN, 12 heads (SimLM's)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as directory:
        BertModel(config, add_pooling_layer=False).save_pretrained(directory)
        tokenizer.save_pretrained(directory)
        loaded = load_model(directory)
    encoders = {mode: DualEncoder(loaded, recipe, precision=mode) for mode in args.modes}
    flops = flops_per_document(config, 144)
    rows = args.batch_size * 144

    for encoder in encoders.values():
        encoder.encode("document", texts[:4], titles[:4], batch_size=args.batch_size)
    rates: dict[str, list[float]] = {mode: [] for mode in encoders}
    gflops: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for round_number in range(args.rounds):
        gflops["fp32"].append(matmul_gflops(torch.float32, rows, config.hidden_size, config.intermediate_size))
        gflops["bf16"].append(matmul_gflops(torch.bfloat16, rows, config.hidden_size, config.intermediate_size))
        for mode, encoder in encoders.items():
            start = time.perf_counter()
            encoder.encode("document", texts, titles, batch_size=args.batch_size)
            rates[mode].append(len(texts) / (time.perf_counter() - start))
        print(
            f"round {round_number + 1}: " + ", ".join(f"{m} {r[-1]:.2f} docs/s" for m, r in rates.items()), flush=True
        )

    roofline = {name: statistics.median(values) * 1e9 / flops for name, values in gflops.items()}
    results: dict[str, object] = {
        "date": datetime.now(UTC).isoformat(timespec="minutes"),
        "cpu": cpu_model(),
        "usable_cores": usable_cores(),
        "torch_threads": torch.get_num_threads(),
        "native_bf16": native_bf16(),
        "data": str(args.data),
        "docs": len(texts),
        "tokens_per_doc": 144,
        "rounds": args.rounds,
        "gflop_per_doc": flops / 1e9,
        "matmul_gflops_median": {name: statistics.median(values) for name, values in gflops.items()},
        "roofline_docs_per_s": roofline,
        "modes": {
            mode: {
                "docs_per_s_median": statistics.median(values),
                "docs_per_s_all": values,
                "fraction_of_fp32_roofline": statistics.median(values) / roofline["fp32"],
                "fraction_of_bf16_roofline": statistics.median(values) / roofline["bf16"],
            }
            for mode, values in rates.items()
        },
    }
    if args.bf16_docs:
        bf16 = DualEncoder(loaded, recipe, precision="bf16")
        subset_texts, subset_titles = texts[: args.bf16_docs], titles[: args.bf16_docs]
        bf16.encode("document", subset_texts[:2], subset_titles[:2])
        start = time.perf_counter()
        bf16.encode("document", subset_texts, subset_titles, batch_size=args.batch_size)
        rate = len(subset_texts) / (time.perf_counter() - start)
        results["modes"]["bf16"] = {
            "docs_per_s_median": rate,
            "docs": len(subset_texts),
            "fraction_of_fp32_roofline": rate / roofline["fp32"],
            "fraction_of_bf16_roofline": rate / roofline["bf16"],
        }
    results["uptime"] = uptime()
    write_results(RESULTS, results)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
