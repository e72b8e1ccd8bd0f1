"""The command line of the query forward-pass benchmark (``python -m benchmarks.query_forward``) and its table."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

import benchmarks.query_forward
from benchmarks.common import MODEL, add_data_argument, command_line, machine, read_results, result_file, write_results
from benchmarks.query_forward.documents import part_documents
from benchmarks.query_forward.ndcg import ndcg_candidates, part_ndcg
from benchmarks.query_forward.timing import part_timing
from benchmarks.query_forward.variants import CURRENT_FP32, CURRENT_INT8, TORCH, build_variants
from simlm_haystack.backends.onnx import INT8_SETTINGS
from simlm_haystack.models import load_model, local_model_path

RESULTS = result_file("query_forward")


def table(timing: Mapping[str, Any], ndcg: Mapping[str, Any]) -> str:
    rows = [
        "| variant | forward p50 | p99 | mean | CPU p50 | encode p50 | p99 | forward vs package fp32 | vs package int8 "
        "| min token cos | nDCG@10 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in sorted(timing["variants"].items(), key=lambda item: item[1]["forward"]["p50_ms"]):
        ratio = entry["forward_paired_ratio_p50"]
        quality = ndcg.get(name, {}).get("nDCG@10", "")
        rows.append(
            f"| {name} | {entry['forward']['p50_ms']:.2f} | {entry['forward']['p99_ms']:.2f} | "
            f"{entry['forward']['mean_ms']:.2f} | {entry['forward_cpu']['p50_ms']:.2f} | "
            f"{entry['encode']['p50_ms']:.2f} | {entry['encode']['p99_ms']:.2f} | "
            f"{ratio.get(CURRENT_FP32, '')} | {ratio.get(CURRENT_INT8, '')} | "
            f"{entry['min_token_cosine_to_torch']:.6f} | {quality} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.query_forward", description=benchmarks.query_forward.__doc__.splitlines()[0]
    )
    add_data_argument(parser, help_text="the SciFact BEIR folder (default: %(default)s)")
    parser.add_argument("--parts", nargs="+", default=["timing"], choices=["timing", "ndcg", "documents"])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=1, help="passes over the queries")
    parser.add_argument("--warmup", type=int, default=20, help="queries every variant answers untimed first")
    parser.add_argument("--variants", nargs="*", default=None, help="only these (default: all)")
    parser.add_argument(
        "--ndcg-variants",
        nargs="*",
        default=None,
        help="default: the package's int8 and every lossy variant faster than it in the timing part",
    )
    parser.add_argument(
        "--document-variants", nargs="*", default=[CURRENT_INT8, "int8-keep-both"], help="for --parts documents"
    )
    parser.add_argument("--docs", type=int, default=320, help="documents for --parts documents")
    parser.add_argument("--document-rounds", type=int, default=3)
    parser.add_argument("--timing-key", default="timing", help="where the timing part goes in --out")
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="skip torch.compile")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=Path.home() / ".cache" / "simlm_haystack" / "query_forward",
        help="where the benchmark's own quantised files are kept",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="updated part by part if it exists")
    args = parser.parse_args()
    logging.getLogger("onnxruntime").setLevel(logging.WARNING)
    logging.getLogger().setLevel(logging.WARNING)

    loaded = load_model(local_model_path(MODEL))
    results: dict[str, Any] = read_results(args.out)
    results.setdefault("commands", []).append(
        {
            "command": command_line(),
            "parts": args.parts,
            "date": datetime.now(UTC).isoformat(timespec="minutes"),
            "load_average": os.getloadavg(),
        }
    )
    results["machine"] = machine()
    results["torch_threads"] = torch.get_num_threads()
    results["package_int8_settings"] = INT8_SETTINGS
    if "ndcg" in args.parts and args.ndcg_variants is None and "timing" not in args.parts:
        args.ndcg_variants = ndcg_candidates(results["timing"])
    if "timing" not in args.parts and args.variants is None:
        wanted = set(args.ndcg_variants or []) if "ndcg" in args.parts else set()
        if "documents" in args.parts:
            wanted |= set(args.document_variants)
        args.variants = sorted(wanted | {TORCH})
    variants = build_variants(loaded, args)
    if "timing" in args.parts:
        results[args.timing_key] = part_timing(variants, loaded, args)
    if "documents" in args.parts:
        results["documents"] = part_documents(variants, args.document_variants, args)
    if "ndcg" in args.parts:
        names = args.ndcg_variants if args.ndcg_variants is not None else ndcg_candidates(results["timing"])
        results["ndcg"] = {**results.get("ndcg", {}), **part_ndcg(variants, names, args)}
    write_results(args.out, results)
    if args.timing_key in results:
        print(table(results[args.timing_key], results.get("ndcg", {})))


if __name__ == "__main__":
    main()
