"""The command line: index and search work; bad input is one clear line and exit 2, never a traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_jsonl

from simlm_haystack.cli import main


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_jsonl(
        tmp_path / "corpus.jsonl",
        [
            {"_id": "d1", "title": "Aspirin", "text": "Aspirin reduces the risk of heart attack."},
            {"_id": "d2", "title": "", "text": "Vitamin D and bone health."},
            {"id": 3, "content": "Plasmids carry antibiotic resistance genes.", "source": "x"},
        ],
    )


def _run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_index_then_search(tiny_bert: str, corpus: Path, tmp_path: Path, capsys) -> None:
    store = ["--qdrant-path", str(tmp_path / "q"), "--index", "docs", "--model", tiny_bert, "--recipe", "simlm"]
    code, out, _ = _run(["index", str(corpus), *store, "--quiet"], capsys)
    assert code == 0
    assert "Wrote 3 documents" in out and "32-d, cosine, recipe simlm" in out
    code, out, _ = _run(["index", str(corpus), *store, "--quiet"], capsys)
    assert code == 0 and "Wrote 0 documents" in out and "(3 in the collection, 3 before" in out  # unchanged: skipped
    code, out, _ = _run(["search", "heart attack", "bone", *store, "--top-k", "2"], capsys)
    assert code == 0
    assert out.count("  1. ") == 2 and out.count("  2. ") == 2
    assert "Aspirin" in out or "d2" in out or "3" in out


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"_id": "a", "text": "ok"}', '{"_id": "b", "text": '], r"corpus.jsonl:2: not valid JSON"),
        (['{"_id": "a", "title": "no text"}'], r"corpus.jsonl:1: no 'text' or 'content' field"),
        (['["a list"]'], r"corpus.jsonl:1: expected a JSON object"),
        (['{"_id": "a", "text": 5}'], r"corpus.jsonl:1: 'text' must be a string"),
    ],
)
def test_malformed_corpus_is_one_line_with_its_number(
    tiny_bert: str, tmp_path: Path, capsys, lines: list[str], message: str
) -> None:
    corpus = write_jsonl(tmp_path / "corpus.jsonl", lines)
    code, _, err = _run(
        [
            "index",
            str(corpus),
            "--model",
            tiny_bert,
            "--recipe",
            "simlm",
            "--qdrant-path",
            str(tmp_path / "q"),
            "--quiet",
        ],
        capsys,
    )
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert re.search(message, err), err


@pytest.mark.parametrize("engine", ["edge", "local"])
def test_bad_input_after_good_chunks_keeps_what_was_indexed(
    tiny_bert: str, tmp_path: Path, capsys, engine: str
) -> None:
    good = [{"_id": str(i), "text": f"document {i}"} for i in range(5)]
    corpus = write_jsonl(tmp_path / "corpus.jsonl", [*good, "{broken"])
    store = ["--qdrant-path", str(tmp_path / "q"), "--engine", engine, "--model", tiny_bert, "--recipe", "simlm"]
    code, _, err = _run(["index", str(corpus), *store, "--chunk-size", "2", "--quiet"], capsys)
    assert code == 2 and "corpus.jsonl:6" in err
    from simlm_haystack.stores import edge_document_store, qdrant_document_store

    open_store = edge_document_store if engine == "edge" else qdrant_document_store
    reopened = open_store("simlm", embedding_dim=32, path=str(tmp_path / "q"))
    assert reopened.count_documents() == 4  # the two full chunks before the bad line


def test_missing_file_unknown_recipe_and_dimension_mismatch(
    tiny_bert: str, corpus: Path, tmp_path: Path, capsys
) -> None:
    code, _, err = _run(["index", str(tmp_path / "nope.jsonl"), "--model", tiny_bert, "--recipe", "simlm"], capsys)
    assert code == 2 and "nope.jsonl: no such file" in err
    code, _, err = _run(["index", str(corpus), "--model", tiny_bert, "--recipe", "nope"], capsys)
    assert code == 2 and "Unknown recipe 'nope'" in err
    code, _, err = _run(["index", str(corpus), "--model", tiny_bert], capsys)
    assert code == 2 and "No recipe is known" in err
    store = ["--qdrant-path", str(tmp_path / "q"), "--index", "docs"]
    assert _run(["index", str(corpus), *store, "--model", tiny_bert, "--recipe", "simlm", "--quiet"], capsys)[0] == 0
    code, _, err = _run(["search", "q", *store, "--model", tiny_bert, "--recipe", "tas-b"], capsys)
    assert code == 2 and "cannot hold this model's vectors" in err and err.count("\n") == 1


def test_model_that_cannot_be_found_offline(corpus: Path, tmp_path: Path) -> None:
    # A subprocess, as a user would run it: one line on stderr, exit 2, no traceback.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "simlm_haystack.cli",
            "index",
            str(corpus),
            "--model",
            "intfloat/simlm-base-msmarco-finetuned",
            "--local-files-only",
            "--qdrant-path",
            str(tmp_path / "q"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 2
    assert "Could not load model 'intfloat/simlm-base-msmarco-finetuned'" in result.stderr
    assert "Traceback" not in result.stderr


def test_only_package_errors_are_user_errors(corpus: Path, monkeypatch, capsys) -> None:
    from simlm_haystack import cli

    def broken(args):
        raise KeyError("a bug")

    monkeypatch.setattr(cli, "cmd_index", broken)
    with pytest.raises(KeyError, match="a bug"):  # a programming error is a traceback, not "error: ..."
        main(["index", str(corpus), "--model", "m"])
    assert "error" not in capsys.readouterr().err


def test_verbose_shows_the_traceback_of_a_user_error(tiny_bert: str, tmp_path: Path) -> None:
    from simlm_haystack.errors import SimlmHaystackError

    with pytest.raises(SimlmHaystackError, match=r"nope\.jsonl: no such file"):
        main(["--verbose", "index", str(tmp_path / "nope.jsonl"), "--model", tiny_bert, "--recipe", "simlm"])


def test_sizes_must_be_positive(corpus: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["index", str(corpus), "--model", "m", "--batch-size", "0"])
    assert exit_.value.code == 2
    assert "argument --batch-size: must be a positive integer, not 0" in capsys.readouterr().err
