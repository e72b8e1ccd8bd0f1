"""Haystack filters on Qdrant Edge: qdrant-haystack's conversion, its models mapped onto Edge's types.

Filter semantics come from ``haystack_integrations.document_stores.qdrant.filters.convert_filters_to_qdrant``
(the same code ``QdrantDocumentStore`` runs): it turns a Haystack filter into ``qdrant_client`` models,
and this module only maps each model onto the Edge class of the same name and fields. One thing is
done before the conversion, to follow Haystack's filter specification where qdrant-haystack does not:
``NOT`` negates the conjunction of its conditions (qdrant-haystack negates each condition on its own,
which reads ``NOT(a, b)`` as ``not a and not b``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import numpy as np
import qdrant_edge as edge
from haystack.errors import FilterError
from haystack_integrations.document_stores.qdrant.filters import convert_filters_to_qdrant
from pydantic import ValidationError
from qdrant_client.http import models


def edge_filter(filters: dict[str, Any] | models.Filter | None) -> edge.Filter | None:
    """The Edge filter for a Haystack filter (or a ``qdrant_client`` ``Filter``, as ``QdrantDocumentStore`` takes)."""
    if filters is None or isinstance(filters, models.Filter):
        return None if filters is None else _filter(filters)
    if not isinstance(filters, dict):
        raise FilterError(f"Filters must be a dictionary or a qdrant_client Filter, not {type(filters).__name__}")
    if not filters:
        return None
    try:
        converted = convert_filters_to_qdrant(_not_negates_the_conjunction(filters))
    except ValidationError as error:  # e.g. == with a float: Qdrant matches only strings, integers and booleans
        raise FilterError(f"Filter {filters!r} cannot be expressed in Qdrant: {error}") from error
    return None if converted is None else _filter(converted)


def _not_negates_the_conjunction(filters: dict[str, Any]) -> dict[str, Any]:
    """``NOT(c1, c2, ...)`` as ``NOT(AND(c1, c2, ...))``, recursively; other filters unchanged (never mutated)."""
    conditions = filters.get("conditions")
    if filters.get("operator") not in ("AND", "OR", "NOT") or not isinstance(conditions, list):
        return filters
    conditions = [_not_negates_the_conjunction(c) if isinstance(c, dict) else c for c in conditions]
    if filters["operator"] == "NOT" and len(conditions) > 1:
        conditions = [{"operator": "AND", "conditions": conditions}]
    return {**filters, "conditions": conditions}


def _conditions(conditions: Any) -> list[Any] | None:
    if conditions is None:
        return None
    return [_condition(c) for c in (conditions if isinstance(conditions, list) else [conditions])]


def _filter(qdrant_filter: models.Filter) -> edge.Filter:
    min_should = qdrant_filter.min_should
    return edge.Filter(
        must=_conditions(qdrant_filter.must),
        should=_conditions(qdrant_filter.should),
        must_not=_conditions(qdrant_filter.must_not),
        min_should=None
        if min_should is None
        else edge.MinShould(conditions=_conditions(min_should.conditions) or [], min_count=min_should.min_count),
    )


def _condition(condition: Any) -> Any:
    if isinstance(condition, models.Filter):
        return _filter(condition)
    if isinstance(condition, models.FieldCondition):
        return _field_condition(condition)
    if isinstance(condition, models.IsEmptyCondition):
        return edge.IsEmptyCondition(key=condition.is_empty.key)
    if isinstance(condition, models.IsNullCondition):
        return edge.IsNullCondition(key=condition.is_null.key)
    if isinstance(condition, models.HasIdCondition):
        return edge.HasIdCondition(point_ids=set(condition.has_id))
    if isinstance(condition, models.NestedCondition):
        return edge.NestedCondition(key=condition.nested.key, filter=_filter(condition.nested.filter))
    raise FilterError(f"Qdrant Edge cannot filter on {type(condition).__name__}: {condition!r}")


def _field_condition(condition: models.FieldCondition) -> edge.FieldCondition:
    unsupported = [name for name in ("geo_bounding_box", "geo_radius", "geo_polygon") if getattr(condition, name)]
    if unsupported:
        raise FilterError(f"Geo conditions are not mapped onto Qdrant Edge: {condition!r}")
    values_count = condition.values_count
    return edge.FieldCondition(
        key=condition.key,
        match=None if condition.match is None else _match(condition.match),
        range=None if condition.range is None else _range(condition.range),
        values_count=None
        if values_count is None
        else edge.ValuesCount(lt=values_count.lt, gt=values_count.gt, lte=values_count.lte, gte=values_count.gte),
        is_empty=condition.is_empty,
        is_null=condition.is_null,
    )


def _match(match: Any) -> Any:
    if isinstance(match, models.MatchValue):
        # qdrant-edge-py 0.9.0 reads a Python bool as the integer 1 or 0, which matches no stored boolean;
        # numpy's bool is read as a boolean.
        return edge.MatchValue(np.bool_(match.value) if isinstance(match.value, bool) else match.value)
    if isinstance(match, models.MatchAny):
        return edge.MatchAny(match.any)
    if isinstance(match, models.MatchExcept):
        return edge.MatchExcept(match.except_)
    if isinstance(match, models.MatchText):
        return edge.MatchText(match.text)
    if isinstance(match, models.MatchTextAny):
        return edge.MatchTextAny(match.text_any)
    if isinstance(match, models.MatchPhrase):
        return edge.MatchPhrase(match.phrase)
    raise FilterError(f"Qdrant Edge cannot match with {type(match).__name__}: {match!r}")


def _range(value_range: models.Range | models.DatetimeRange) -> edge.RangeFloat | edge.RangeDateTime:
    bounds = {name: getattr(value_range, name) for name in ("lt", "gt", "lte", "gte")}
    if isinstance(value_range, models.DatetimeRange):
        return edge.RangeDateTime(**{name: None if bound is None else _iso(bound) for name, bound in bounds.items()})
    return edge.RangeFloat(**{name: None if bound is None else float(bound) for name, bound in bounds.items()})


def _iso(moment: datetime | date) -> str:
    # Qdrant reads RFC 3339; a date alone is its midnight, as qdrant_client sends it.
    return (
        moment.isoformat()
        if isinstance(moment, datetime)
        else datetime(moment.year, moment.month, moment.day).isoformat()
    )
