"""Draws benchmarks/speed_cpu.png from the speed_documents and speed_roofline results.

.venv/bin/python benchmarks/speed_chart.py
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


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


if __name__ == "__main__":
    main()
