"""Evaluate a saved checkpoint (its recipe read from its folder) on SciFact test, and on the dev draw of
``benchmarks.train_scifact --dev-queries N``; for a fine-tuning run that trained but stopped before its evaluation.

    .venv/bin/python -m benchmarks.evaluate_scifact_model /tmp/b12/runs/t00-ref/model --dev-queries 200 --out eval.json

``--data DIR`` reads another BEIR collection (default ``../shared/data/scifact``).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from benchmarks.common import add_data_argument, cpu_model, load_average
from benchmarks.fine_tuning import Evaluation, with_dev_split
from simlm_haystack.evaluation import load_beir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    add_data_argument(parser)
    parser.add_argument("--recipe", help="default: the one saved with the model")
    parser.add_argument("--dev-queries", type=int, default=0, help="as train_scifact --dev-queries (0: test only)")
    parser.add_argument("--out", type=Path, required=True)
    arguments = parser.parse_args()
    logging.getLogger("haystack").setLevel(logging.ERROR)
    collection = with_dev_split(load_beir(arguments.data, splits=["train", "test"]), arguments.dev_queries)
    started, load_start = time.perf_counter(), load_average()
    evaluation = Evaluation(arguments.model, arguments.recipe, None, "fast")
    results = evaluation.run(collection, ["test", "dev"] if arguments.dev_queries else ["test"])
    evaluation.close()
    report = {
        "model": arguments.model,
        "recipe": arguments.recipe,
        "data": str(arguments.data),
        "dev_queries": arguments.dev_queries,
        "machine": cpu_model(),
        "seconds": round(time.perf_counter() - started, 1),
        "load_average": [load_start, load_average()],
        "results": results,
    }
    arguments.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{report['seconds']} s, load {report['load_average']}")


if __name__ == "__main__":
    main()
