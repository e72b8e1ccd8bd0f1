"""What we take of qdrant-haystack that is not its public API, checked against the installed version.

An upgrade that removes one of the private attributes :mod:`simlm_haystack.stores.qdrant_internals` reads fails
here, naming the attribute, rather than at a user's first hybrid search.
"""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from haystack_integrations.components.retrievers.qdrant import QdrantHybridRetriever
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

from simlm_haystack.stores import qdrant_internals
from simlm_haystack.stores.qdrant_internals import PRIVATE_ATTRIBUTES, TESTED_VERSIONS, check_private_attributes

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_every_private_attribute_we_read_exists_on_the_installed_qdrant_haystack() -> None:
    check_private_attributes()  # raises AttributeError naming what an upgrade removed


def test_an_attribute_an_upgrade_removed_is_named() -> None:
    gone = {QdrantDocumentStore: ("_client", "_gone_client"), QdrantHybridRetriever: ("_top_k", "_gone_top_k")}
    with pytest.raises(AttributeError) as raised:
        check_private_attributes(gone)
    message = str(raised.value)
    assert "QdrantDocumentStore._gone_client" in message and "QdrantHybridRetriever._gone_top_k" in message
    assert "QdrantDocumentStore._client," not in message and "tested with qdrant-haystack>=13,<14" in message


def test_the_dependency_bound_is_the_tested_one() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["dependencies"]
    (bound,) = [d for d in dependencies if re.match(r"qdrant-haystack\b", d)]
    assert bound == f"qdrant-haystack{TESTED_VERSIONS}"
    major = int(version("qdrant-haystack").split(".")[0])
    assert f">={major}," in TESTED_VERSIONS and f"<{major + 1}" in TESTED_VERSIONS


def test_the_hybrid_retriever_reads_qdrant_haystack_only_through_the_adapter() -> None:
    stores = Path(qdrant_internals.__file__).parent
    private = {name for names in PRIVATE_ATTRIBUTES.values() for name in names}
    for module in stores.rglob("*.py"):
        if module.name == "qdrant_internals.py":
            continue
        text = module.read_text(encoding="utf-8")
        for name in private:
            assert not re.search(rf"\.{name}\b", text), f"{module.name} reads {name}: use qdrant_internals"


def test_what_serving_takes_of_hayhooks_exists_and_is_bounded() -> None:
    """`simlm_haystack.serving.app` builds on Hayhooks' app, registry, routers and one private loader function
    (the flags Hayhooks sets on a wrapper it loads from files): an upgrade that moves one fails here by name."""
    pytest.importorskip("hayhooks")
    import importlib

    taken = {
        "hayhooks.server.utils.module_loader": "_set_method_implementation_flags",
        "hayhooks.server.utils.deploy_utils": "commit_prepared_pipeline",
        "hayhooks.server.pipelines.registry": "registry",
        "hayhooks.server.utils.models": "PreparedPipeline",
    }
    missing = [f"{where}.{name}" for where, name in taken.items() if not hasattr(importlib.import_module(where), name)]
    assert not missing, f"hayhooks {version('hayhooks')} lacks {', '.join(missing)} (tested with hayhooks>=2.1,<3)"
    extras = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["optional-dependencies"]["serve"]
    assert "hayhooks>=2.1,<3" in extras and int(version("hayhooks").split(".")[0]) == 2
