"""Draws benchmarks/speed_cpu.png (speed_documents, speed_roofline) and benchmarks/engines.png
(issue 11: query_latency, edge_scale, speed_onnx_documents) from the results files.

.venv/bin/python -m benchmarks.speed_chart
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

from benchmarks.common import RESULTS

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent


def bars(axis: plt.Axes, labels: list[str], values: list[float], colours: list[str], title: str) -> None:
    drawn = axis.bar(labels, values, color=colours)
    axis.bar_label(drawn, fmt="%.2f", fontsize=8)
    axis.set_title(title, fontsize=10)
    axis.set_ylabel("documents / s (median)")
    axis.tick_params(axis="x", labelrotation=20, labelsize=8)


def main() -> None:
    documents = json.loads((RESULTS / "speed_documents.json").read_text())
    roofline = json.loads((RESULTS / "speed_roofline.json").read_text())
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))

    modes = documents["modes"]
    labels = ["peer (ST)", "ours exact (= fast here)"]
    values = [modes["peer"]["docs_per_s_median"], modes["exact"]["docs_per_s_median"]]
    colours = ["grey", "tab:blue"]
    rerun_path = RESULTS / "speed_documents_rerun.json"
    if rerun_path.is_file():
        rerun = json.loads(rerun_path.read_text())
        labels += [f"peer, rerun {rerun['docs']}", f"ours exact, rerun {rerun['docs']}"]
        values += [rerun["modes"]["peer"]["docs_per_s_median"], rerun["modes"]["exact"]["docs_per_s_median"]]
        colours += ["darkgrey", "tab:cyan"]
    if "fast" in modes:
        labels.append("ours fast")
        values.append(modes["fast"]["docs_per_s_median"])
        colours.append("tab:green")
    if "bf16_subset" in documents:
        subset = documents["bf16_subset"]
        # bf16 was timed on a subset against exact on the same subset: scale by that ratio.
        labels.append("ours bf16*")
        values.append(modes["exact"]["docs_per_s_median"] * subset["ratio_bf16_to_exact"])
        colours.append("tab:orange")
    bars(left, labels, values, colours, f"all-MiniLM-L6-v2, {documents['docs']} SciFact docs, 256 tok")

    labels, values, colours = [], [], []
    for mode, colour in (("exact", "tab:blue"), ("fast", "tab:green"), ("bf16", "tab:orange")):
        if mode in roofline["modes"]:
            labels.append(f"ours {mode}")
            values.append(roofline["modes"][mode]["docs_per_s_median"])
            colours.append(colour)
    for name, colour in (("fp32", "lightsteelblue"), ("bf16", "navajowhite")):
        labels.append(f"{name} roofline")
        values.append(roofline["roofline_docs_per_s"][name])
        colours.append(colour)
    bars(right, labels, values, colours, "BERT-base (SimLM-sized), pairs at 144 tokens")

    figure.suptitle(
        f"Document encoding on {documents['machine']['cpu']} ({documents['machine']['usable_cores']} shared cores, "
        f"no native bf16) - {documents['date'][:10]}; load: {documents['uptime'].split('load average:')[1].strip()}",
        fontsize=9,
    )
    figure.tight_layout()
    figure.savefig(HERE / "speed_cpu.png", dpi=110)
    engines_chart()


def engines_chart() -> None:
    latency = json.loads((RESULTS / "query_latency.json").read_text())
    scale = json.loads((RESULTS / "edge_scale.json").read_text())
    documents = json.loads((RESULTS / "speed_onnx_documents.json").read_text())
    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4.4))

    names = list(latency["configurations"])
    p50 = [latency["configurations"][name]["p50_ms"] for name in names]
    p99 = [latency["configurations"][name]["p99_ms"] for name in names]
    positions = range(len(names))
    left.bar([x - 0.2 for x in positions], p50, width=0.4, label="p50", color="tab:blue")
    left.bar([x + 0.2 for x in positions], p99, width=0.4, label="p99", color="lightsteelblue")
    left.axhline(8, color="tab:red", linestyle="--", linewidth=1, label="p50 target 8 ms")
    left.set_xticks(list(positions), [name.replace(", ", "\n") for name in names], rotation=25, fontsize=7)
    left.set_ylabel("ms per query (text in, top-10 out)")
    left.set_title(f"Query latency, MiniLM, {latency['queries']} SciFact queries", fontsize=10)
    left.legend(fontsize=8)

    for engine, colour in (("edge", "tab:green"), ("local", "grey")):
        sizes = [int(size) for size, run in scale["sizes"].items() if "query" in run.get(engine, {})]
        values = [scale["sizes"][str(size)][engine]["query"]["p50_ms"] for size in sizes]
        middle.plot(sizes, values, marker="o", color=colour, label=f"{engine} top-10 p50")
    middle.set_xscale("log")
    middle.set_yscale("log")
    middle.set_xlabel("points (384-d)")
    middle.set_ylabel("ms")
    middle.set_title("Embedded engines (local mode stopped past 10k)", fontsize=10)
    middle.legend(fontsize=8)

    modes = documents["documents"]
    labels = [name for name in ("peer", "onnx", "onnx-int8", "openvino") if name in modes]
    bars(
        right,
        ["ST (torch)" if name == "peer" else name for name in labels],
        [modes[name]["docs_per_s_median"] for name in labels],
        ["grey", "tab:blue", "tab:orange", "tab:purple"][: len(labels)],
        f"Documents, MiniLM, {modes['docs']} SciFact docs",
    )
    figure.suptitle(
        f"Issue 11 on {latency['machine']['cpu']} (2 shared cores, AVX2, no VNNI/AVX-512) - {latency['date'][:10]}",
        fontsize=9,
    )
    figure.tight_layout()
    figure.savefig(HERE / "engines.png", dpi=110)


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # no options; --help says what it draws
    main()
