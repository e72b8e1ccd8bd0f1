"""The timing part: every variant's forward pass and whole query encoding, alternating query by query in a fresh
random order, with their agreement with torch."""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import percentile
from benchmarks.query_forward.variants import CURRENT_FP32, CURRENT_INT8, EVERY, REFERENCE, TORCH, Variant
from simlm_haystack.backends.onnx import min_token_cosine
from simlm_haystack.encoding import tokenize
from simlm_haystack.evaluation import load_beir
from simlm_haystack.models import LoadedModel
from simlm_haystack.recipes import get_recipe


def test_queries(data: Path) -> list[str]:
    collection = load_beir(data, splits=["test"])
    return list(collection.judged_queries("test").values())


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(values), 3),
        "p99_ms": round(percentile(values, 99), 3),
        "mean_ms": round(statistics.fmean(values), 3),
    }


def part_timing(variants: list[Variant], loaded: LoadedModel, args: argparse.Namespace) -> dict[str, Any]:
    recipe = get_recipe("minilm")
    texts = test_queries(args.data)[: args.queries]
    input_names = variants[0].encoder.input_names
    features = []
    for text in texts:
        encoding = tokenize(loaded.tokenizer, recipe, "query", [text], return_tensors="np")
        features.append({name: np.asarray(encoding[name], dtype=np.int64) for name in input_names})
    by_name = {variant.name: variant for variant in variants}

    # Warm-up, untimed: one input of every query length (so that runtimes which prepare kernels per shape,
    # OpenVINO and torch.compile, have seen them all, as a server soon would), then the first queries.
    # torch.compile compiles on its first call, which is timed apart.
    lengths = [int(feature["attention_mask"].sum()) for feature in features]
    longest = features[int(np.argmax(lengths))]
    every_length = [
        {name: np.ascontiguousarray(value[:, :length]) for name, value in longest.items()}
        for length in range(min(lengths), max(lengths) + 1)
    ]
    for variant in variants:
        began = time.perf_counter()
        variant.forward(features[0])
        first_call = time.perf_counter() - began
        for feature in every_length if variant.name not in EVERY else []:
            variant.forward(feature)
        for text, feature in zip(texts[: args.warmup], features[: args.warmup], strict=True):
            variant.forward(feature)
            variant.encode(text)
        variant.details["first_call_s"] = round(first_call, 2)
        print(f"warmed up {variant.name} (first call {first_call:.2f} s)", flush=True)

    names = [variant.name for variant in variants]
    # (round, query) -> milliseconds, so that two variants can be compared query by query
    forward_ms: dict[str, dict[tuple[int, int], float]] = {name: {} for name in names}
    encode_ms: dict[str, dict[tuple[int, int], float]] = {name: {} for name in names}
    # CPU time of the whole process during the call (every thread, spinning included): what the variant
    # costs the machine, and how much of its wall time it actually ran on these shared cores.
    forward_cpu_ms: dict[str, dict[tuple[int, int], float]] = {name: {} for name in names}
    token_cosine = dict.fromkeys(names, 1.0)
    query_cosine = dict.fromkeys(names, 1.0)
    load = [os.getloadavg()]
    started = time.perf_counter()
    # A fresh random order for every query: with a rotation each variant would nearly always follow the same
    # one, and inherit what that one leaves behind (spinning threads, evicted caches).
    shuffle = np.random.default_rng(17)
    for rounds in range(args.rounds):
        for number, (text, feature) in enumerate(zip(texts, features, strict=True)):
            order = [names[i] for i in shuffle.permutation(len(names)) if number % EVERY.get(names[i], 1) == 0]
            hidden, vectors = {}, {}
            for name in order:
                began, began_cpu = time.perf_counter(), time.process_time()
                hidden[name] = by_name[name].forward(feature)
                forward_ms[name][rounds, number] = 1000 * (time.perf_counter() - began)
                forward_cpu_ms[name][rounds, number] = 1000 * (time.process_time() - began_cpu)
            for name in order:
                began = time.perf_counter()
                vectors[name] = by_name[name].encode(text)
                encode_ms[name][rounds, number] = 1000 * (time.perf_counter() - began)
            if REFERENCE in hidden:
                mask = feature["attention_mask"]
                for name in order:
                    cosine = min_token_cosine(hidden[REFERENCE], hidden[name], mask)
                    token_cosine[name] = min(token_cosine[name], cosine)
                    a, b = vectors[name].ravel().astype(np.float64), vectors[REFERENCE].ravel().astype(np.float64)
                    cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
                    query_cosine[name] = min(query_cosine[name], cosine)
            if (number + 1) % 50 == 0:
                print(
                    f"round {rounds + 1}: {number + 1} queries, {time.perf_counter() - started:.0f} s, "
                    f"load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
        load.append(os.getloadavg())
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="minutes"),
        "queries": len(texts),
        "rounds": args.rounds,
        "warmup_queries": args.warmup,
        "query_tokens": {"p50": statistics.median(lengths), "min": min(lengths), "max": max(lengths)},
        "load_average_before_after_each_round": load,
        "timed_seconds": round(time.perf_counter() - started, 1),
        "variants": {},
    }
    baselines = [key for key in (TORCH, CURRENT_FP32, CURRENT_INT8) if key in names]
    for variant in variants:
        timed = forward_ms[variant.name]
        forward = summary(list(timed.values()))
        entry: dict[str, Any] = {
            "family": variant.family,
            "description": variant.description,
            "lossy": variant.lossy,
            "forward": forward,
            "forward_cpu": summary(list(forward_cpu_ms[variant.name].values())),
            "encode": summary(list(encode_ms[variant.name].values())),
            "forward_p50_ratio": {
                key: round(forward["p50_ms"] / statistics.median(forward_ms[key].values()), 3) for key in baselines
            },
            # The median of this variant's time over the baseline's on the same query: a burst of load
            # that hits one query hits both sides of its ratio.
            "forward_paired_ratio_p50": {
                key: round(statistics.median(ms / forward_ms[key][query] for query, ms in timed.items()), 3)
                for key in baselines
                if key not in EVERY
            },
            "timed_queries": len(forward_ms[variant.name]),
            "min_token_cosine_to_torch": token_cosine[variant.name],
            "min_query_cosine_to_torch": query_cosine[variant.name],
            "build_seconds": round(variant.build_seconds, 1),
            **variant.details,
        }
        results["variants"][variant.name] = entry
    return results
