"""The README's main job runs offline and a new user sees only its own output."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.integration
def test_quickstart_answers_from_the_sample_without_library_noise(minilm_path: str) -> None:
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
        check=True,
    )
    assert done.stderr == "", done.stderr  # no bars, warnings or log lines (stderr is not a terminal here)
    assert "Indexed 300 abstracts" in done.stdout
    assert done.stdout.count("<- judged relevant") >= 2
    summary = re.search(r"the judged abstract came first for (\d+) and was in the top 10 for (\d+)", done.stdout)
    assert summary is not None, done.stdout
    first, top10 = map(int, summary.groups())
    assert 0 < first <= top10 <= 50
