"""What follows a run: fine-tuning its result with ``benchmarks.train_scifact``, and its summary in the campaign's
log (one JSON list that an interrupted campaign does not lose)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from benchmarks.common import child_environment, module_command


def fine_tune(model: str, data: Path, output: Path, extra: list[str], seed: int) -> dict:
    """``benchmarks.train_scifact`` on ``model``, as it is; returns its before/after metrics."""
    result = output / "benchmark.json"
    if not result.is_file():
        command = [*module_command("benchmarks.train_scifact"), "--model", model, "--data", str(data)]
        command += ["--output", str(output), "--seed", str(seed), *extra]
        subprocess.run(command, check=True, env=child_environment())
    report = json.loads(result.read_text())
    return {key: report.get(key) for key in ("before", "after", "timings", "steps", "seconds_per_step")}


def log_run(path: Path, name: str, result: dict) -> None:
    """Add (or replace) this run's summary in the campaign's JSON list."""
    entries = json.loads(path.read_text()) if path.is_file() else []
    report = result["report"]
    start = report.get("start_own") or report.get("start_trained") or {}
    summary = {
        "name": name,
        "date": result["date"],
        "command": result["command"],
        "configuration": result["configuration"],
        "steps": result["steps"],
        "epochs": result["epochs"],
        "training_pairs": result["training_pairs"],
        "seconds_per_step": result["seconds_per_step"],
        "pretraining_minutes": round(report["timings"].get("pretraining_seconds", 0.0) / 60, 2),
        "setup_seconds": result["setup_seconds"],
        "total_minutes": round(result["seconds"] / 60, 2),
        "load_average": result["load_average"],
        "check": report.get("check"),
        "heldout": {"start": start.get("heldout"), "result": (report.get("result") or {}).get("heldout")},
        "judged": result.get("judged"),
        "verdict": report.get("verdict"),
        "last_losses": result["log"][-3:],
        "fine_tune": result.get("fine_tune"),
    }
    entries = [entry for entry in entries if entry.get("name") != name] + [summary]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries, indent=2) + "\n")
