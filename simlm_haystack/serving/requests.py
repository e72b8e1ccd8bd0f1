"""What a request to the server may hold, checked before anything is encoded: the limits, the request models
(their JSON schemas are what REST clients and MCP agents see), the check of Haystack filters, and the one error
every refusal becomes (a 4xx naming the field, never a 500).

Nothing here imports Hayhooks or a model: the checks run the same in ``simlm-haystack serve``, in a
``PipelineWrapper`` deployed with Hayhooks' own commands, and in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from haystack.errors import FilterError
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError, create_model

#: Comparison operators of Haystack's filter syntax, and the logical ones.
COMPARISONS = ("==", "!=", ">", ">=", "<", "<=", "in", "not in")
LOGICAL = ("AND", "OR", "NOT")


class RequestError(ValueError):
    """A request the server refuses: ``status`` is the HTTP status (4xx), the message names the problem."""

    def __init__(self, message: str, *, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RequestLimits:
    """How much one request may ask for.

    :param max_query_chars: The longest query, in characters. The encoder reads only its first tokens (256 for
        all-MiniLM-L6-v2, about a thousand characters) anyway; a longer one is refused rather than cut silently.
    :param max_top_k: The most documents one search may return.
    :param max_documents: The most documents one ``/index/run`` request may add.
    :param max_body_bytes: The largest request body (a bigger one is a 413 before it is read whole).
    """

    max_query_chars: int = 8192
    max_top_k: int = 1000
    max_documents: int = 1000
    max_body_bytes: int = 16 * 1024 * 1024


class DocumentIn(BaseModel):
    """One document to add: its text, an optional id (else one is derived from the content) and its meta (a
    ``title`` there is read with the text, as ``simlm-haystack index`` reads the corpus' titles)."""

    model_config = ConfigDict(extra="forbid")

    id: StrictStr | None = Field(default=None, min_length=1, max_length=512, description="The document's id")
    content: StrictStr = Field(min_length=1, description="The document's text (not empty)")
    meta: dict[str, Any] = Field(default_factory=dict, description='Its meta data, e.g. {"title": "..."}')


def search_request_model(name: str, limits: RequestLimits, *, top_k: int = 10) -> type[BaseModel]:
    """The request model of ``POST /<name>/run``: ``query``, ``top_k`` and ``filters``, strictly typed, unknown
    fields refused, the limits in the schema."""
    return create_model(
        f"{name}RunRequest",
        __config__=ConfigDict(extra="forbid"),
        query=(
            StrictStr,
            Field(min_length=1, max_length=limits.max_query_chars, description="The question or statement to search"),
        ),
        top_k=(StrictInt, Field(default=top_k, ge=1, le=limits.max_top_k, description="How many documents")),
        filters=(
            dict[str, Any] | None,
            Field(default=None, description='Haystack filters, e.g. {"field": "meta.year", "operator": ">=", ...}'),
        ),
    )


def index_request_model(name: str, limits: RequestLimits) -> type[BaseModel]:
    """The request model of ``POST /<name>/run`` for adding documents."""
    return create_model(
        f"{name}RunRequest",
        __config__=ConfigDict(extra="forbid"),
        documents=(
            list[DocumentIn],
            Field(min_length=1, max_length=limits.max_documents, description="The documents to add"),
        ),
    )


def check_search(query: Any, top_k: Any, filters: Any, limits: RequestLimits) -> None:
    """Refuse a search request the models above would refuse (for callers that bypass them, e.g. a wrapper
    deployed with Hayhooks' own commands, whose request model comes from the signature), and filters that are not
    Haystack filters.

    :raises RequestError: Naming the field and the problem.
    """
    if not isinstance(query, str):
        raise RequestError(f"query must be a string, not {type(query).__name__}")
    if not query.strip():
        shown = "empty" if not query else f"only whitespace ({len(query)} characters)"
        raise RequestError(f"query is {shown}: there is nothing to search for")
    if len(query) > limits.max_query_chars:
        raise RequestError(f"query is {len(query)} characters long; this server takes at most {limits.max_query_chars}")
    if isinstance(top_k, bool) or not isinstance(top_k, int):
        raise RequestError(f"top_k must be an integer, not {type(top_k).__name__}")
    if not 1 <= top_k <= limits.max_top_k:
        raise RequestError(f"top_k must be between 1 and {limits.max_top_k}, not {top_k}")
    check_filters(filters)


def check_filters(filters: Any) -> None:
    """Refuse what is not a Haystack filter, naming where: ``filters.conditions[1]: unknown operator '~'``.

    :raises RequestError: The filter's first problem.
    """
    if filters is None or filters == {}:
        return
    _check_filter(filters, "filters")
    # The values' types are checked by the conversion both kinds of store run (qdrant-haystack's).
    from haystack_integrations.document_stores.qdrant.filters import convert_filters_to_qdrant

    try:
        convert_filters_to_qdrant(filters)
    except (FilterError, ValidationError, TypeError, ValueError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise RequestError(f"filters cannot be used: {first}") from None


def _check_filter(node: Any, where: str) -> None:
    if not isinstance(node, dict):
        raise RequestError(f"{where} must be an object, not {type(node).__name__}")
    operator = node.get("operator")
    if operator in LOGICAL:
        conditions = node.get("conditions")
        if not isinstance(conditions, list) or not conditions:
            raise RequestError(f"{where}: operator {operator!r} needs a non-empty list of 'conditions'")
        for position, condition in enumerate(conditions):
            _check_filter(condition, f"{where}.conditions[{position}]")
        return
    if operator not in COMPARISONS:
        known = ", ".join(repr(op) for op in (*COMPARISONS, *LOGICAL))
        raise RequestError(f"{where}: unknown or missing 'operator' {operator!r} (one of {known})")
    field = node.get("field")
    if not isinstance(field, str) or not field:
        raise RequestError(f"{where}: a comparison needs a 'field' (e.g. 'meta.title'), got {field!r}")
    if "value" not in node:
        raise RequestError(f"{where}: comparison {operator!r} on {field!r} has no 'value'")
    if operator in ("in", "not in") and not isinstance(node["value"], list):
        raise RequestError(f"{where}: {operator!r} needs a list 'value', not {type(node['value']).__name__}")


def validation_message(errors: list[dict[str, Any]]) -> tuple[str, list[dict[str, str]]]:
    """One line naming each field pydantic refused, and the errors as ``{"field", "message", "type"}`` (never the
    input itself: a megabyte query is not sent back)."""
    details = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ()) if part not in ("body", "run_req")]
        field = ".".join(location) or "body"
        message = str(error.get("msg", ""))
        if error.get("type") == "json_invalid":  # its location is a character offset, not a field
            field, message = "body", f"not valid JSON ({error.get('ctx', {}).get('error', message)}, at {field})"
        details.append({"field": field, "message": message, "type": str(error.get("type", ""))})
    line = "; ".join(f"{detail['field']}: {detail['message']}" for detail in details) or "invalid request"
    return line, details
