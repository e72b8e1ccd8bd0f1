"""``serve``'s settings, checked without starting a server: where it listens, what it warns about, the API key from
the environment only, and the request checks a ``PipelineWrapper`` deployed with Hayhooks' own commands runs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from simlm_haystack.cli import build_parser, main
from simlm_haystack.errors import SettingsError
from simlm_haystack.serving.guards import API_KEY_VARIABLE, api_key_from_environment
from simlm_haystack.serving.requests import RequestError, RequestLimits, check_filters, check_search
from simlm_haystack.serving.server import exposure_warning, is_loopback


def test_it_listens_on_localhost_at_hayhooks_port_unless_told() -> None:
    args = build_parser().parse_args(["serve", "--model", "m"])
    assert (args.host, args.port, args.name, args.index_route, args.retrieval) == (
        "127.0.0.1",
        1416,
        "search",
        "index",
        "dense",
    )
    assert args.workers is None  # the wrapper's default: the cores this process may use
    parsed = build_parser().parse_args(
        ["serve", "--model", "m", "--backend", "onnx", "--precision", "int8", "--workers", "3"]
    )
    assert (parsed.backend, parsed.precision, parsed.workers) == ("onnx", "int8", 3)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--model", "m", "--workers", "0"])
    with pytest.raises(SystemExit):  # the key is never a flag
        build_parser().parse_args(["serve", "--model", "m", "--api-key", "k"])


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_addresses_need_no_warning(host: str) -> None:
    assert is_loopback(host) and exposure_warning(host, api_key=False) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.7", "myhost.example"])
def test_other_addresses_are_said_with_what_to_do(host: str) -> None:
    warning = exposure_warning(host, api_key=False)
    assert warning and "reachable from other machines" in warning and API_KEY_VARIABLE in warning
    assert "requests need the API key" in exposure_warning(host, api_key=True)


def test_the_api_key_comes_from_the_environment_and_an_empty_one_is_refused() -> None:
    assert api_key_from_environment({}) is None
    assert api_key_from_environment({API_KEY_VARIABLE: "s3cret"}) == "s3cret"
    with pytest.raises(SettingsError, match="set but empty"):
        api_key_from_environment({API_KEY_VARIABLE: "  "})


def test_an_empty_key_stops_serve_before_a_model_is_loaded(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(API_KEY_VARIABLE, "")
    assert main(["serve", "--model", "no/such-model", "--qdrant-path", "/nonexistent"]) == 2
    assert "set but empty" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("query", "top_k", "filters", "named"),
    [
        ("", 10, None, "query is empty"),
        (" \t", 10, None, "only whitespace"),
        (5, 10, None, "query must be a string"),
        ("x" * 9000, 10, None, "at most 8192"),
        ("x", True, None, "top_k must be an integer"),
        ("x", 0, None, "between 1 and 1000"),
        ("x", 10**9, None, "between 1 and 1000"),
        ("x", 10, [], "filters must be an object"),
        (
            "x",
            10,
            {"operator": "NOT", "conditions": [{"field": "meta.a"}]},
            "filters.conditions[0]: unknown or missing",
        ),
        ("x", 10, {"field": "meta.a", "operator": "=="}, "has no 'value'"),
        ("x", 10, {"field": "meta.a", "operator": "==", "value": 1.5}, "filters cannot be used"),
    ],
)
def test_search_requests_are_checked_before_anything_is_encoded(query, top_k, filters, named: str) -> None:
    with pytest.raises(RequestError) as refused:
        check_search(query, top_k, filters, RequestLimits())
    assert named in str(refused.value) and refused.value.status == 422


def test_good_filters_pass() -> None:
    check_filters({"operator": "AND", "conditions": [{"field": "meta.title", "operator": "in", "value": ["a", "b"]}]})
    check_search("a question", 5, None, RequestLimits())


def test_the_package_and_its_command_line_do_not_import_hayhooks() -> None:
    code = "import sys, simlm_haystack, simlm_haystack.cli; sys.exit('hayhooks' in sys.modules or 'mcp' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=300).returncode == 0


def test_without_hayhooks_the_serving_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "hayhooks" else real(name, *a))
    monkeypatch.delitem(sys.modules, "simlm_haystack.serving")
    with pytest.raises(ImportError, match=r"simlm-haystack\[serve\]"):
        importlib.import_module("simlm_haystack.serving")
