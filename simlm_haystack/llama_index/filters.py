"""LlamaIndex ``MetadataFilters`` as Haystack filters, which every store of this package takes.

``MetadataFilter(key, value, operator)`` becomes ``{"field": "meta.<key>", "operator": ..., "value": value}``;
``MetadataFilters(filters, condition)`` the logical ``AND`` / ``OR`` / ``NOT`` of its filters (nested ones too).
``==``, ``!=``, ``>``, ``>=``, ``<``, ``<=``, ``in`` and ``nin`` (``"not in"``) have Haystack counterparts;
LlamaIndex's others (``any``, ``all``, ``contains``, ``text_match``, ``is_empty``, ...) do not, and are refused.
A Haystack filter dict is taken as it is.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.vector_stores.types import FilterCondition, FilterOperator, MetadataFilter, MetadataFilters

from simlm_haystack.errors import SettingsError

#: LlamaIndex's operators that Haystack's filters have, by their Haystack name.
OPERATORS: dict[FilterOperator, str] = {
    FilterOperator.EQ: "==",
    FilterOperator.NE: "!=",
    FilterOperator.GT: ">",
    FilterOperator.GTE: ">=",
    FilterOperator.LT: "<",
    FilterOperator.LTE: "<=",
    FilterOperator.IN: "in",
    FilterOperator.NIN: "not in",
}
CONDITIONS: dict[FilterCondition, str] = {
    FilterCondition.AND: "AND",
    FilterCondition.OR: "OR",
    FilterCondition.NOT: "NOT",
}


def _condition(item: MetadataFilter | MetadataFilters) -> dict[str, Any]:
    if isinstance(item, MetadataFilters):
        return haystack_filters(item)  # type: ignore[return-value]  # never None for MetadataFilters
    operator = OPERATORS.get(FilterOperator(item.operator))
    if operator is None:
        raise SettingsError(
            f"filter on {item.key!r}: operator {FilterOperator(item.operator).value!r} has no Haystack counterpart "
            f"(supported: {', '.join(o.value for o in OPERATORS)})"
        )
    return {"field": f"meta.{item.key}", "operator": operator, "value": item.value}


def haystack_filters(filters: MetadataFilters | dict[str, Any] | None) -> dict[str, Any] | None:
    """``filters`` as Haystack filters (see the module docstring); ``None`` and empty filters are ``None``.

    :raises SettingsError: An operator or condition Haystack's filters do not have.
    :raises TypeError: ``filters`` is neither ``MetadataFilters`` nor a dict.
    """
    if filters is None or isinstance(filters, dict):
        return filters
    if not isinstance(filters, MetadataFilters):
        raise TypeError(f"filters must be LlamaIndex MetadataFilters or Haystack filters, not {type(filters).__name__}")
    if not filters.filters:
        return None
    condition = CONDITIONS.get(FilterCondition(filters.condition or FilterCondition.AND))
    if condition is None:
        raise SettingsError(f"filter condition {filters.condition!r} has no Haystack counterpart (AND, OR, NOT)")
    return {"operator": condition, "conditions": [_condition(item) for item in filters.filters]}
