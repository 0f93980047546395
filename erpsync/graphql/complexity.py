"""An upper bound of a document's query complexity, before it is ever sent.

Centra does not publish its complexity formula (PROTOCOL.md §2.1); what the contract states is
that nested lists are the expensive part, ``rateLimits`` costs about 10, small queries 100–230 and
a create mutation 110–160. ``upper_bound(document, variables)`` charges, so that a first request
cannot overdraw a tight complexity bucket:

- ``__typename`` / introspection and ``freeToAllocateQuantity``: 0; ``rateLimits``: ``RATE_LIMITS_COST``;
- a scalar or enum field (or a list of them): 1; an object field: ``1 + cost(selection)``;
- a list of objects: ``1 + n × cost(selection)``, ``n`` being its ``limit`` argument (a literal, a
  variable, or the schema's default) or ``UNBOUNDED_LIST`` for a list without ``limit``
  (``productSizes``, ``userErrors`` …);
- a root mutation field: ``MUTATION_BASE`` (the top of the observed create range) ``+ 1`` per
  element of every list in its arguments ``+`` its selection.

The governor charges ``bound × ratio``, the ratio learnt per operation from ``extensions.complexity``
(1.0 until the first answer), so the real cost replaces the bound after the first call while the
bound still scales with a call's limits and input size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLList,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
)
from graphql.pyutils import Undefined

RATE_LIMITS_COST = 10
MUTATION_BASE = 160
UNBOUNDED_LIST = 20
FREE_FIELDS = frozenset({"freeToAllocateQuantity"})


def _fields(selection_set: SelectionSetNode | None, fragments: Mapping[str, FragmentDefinitionNode]) -> list[FieldNode]:
    out: list[FieldNode] = []
    if selection_set is None:
        return out
    for sel in selection_set.selections:
        if isinstance(sel, FieldNode):
            out.append(sel)
        elif isinstance(sel, InlineFragmentNode):
            out.extend(_fields(sel.selection_set, fragments))
        elif isinstance(sel, FragmentSpreadNode) and sel.name.value in fragments:
            out.extend(_fields(fragments[sel.name.value].selection_set, fragments))
    return out


def _list_items(value: Any) -> int:
    if isinstance(value, list):
        return len(value) + sum(_list_items(v) for v in value)
    if isinstance(value, Mapping):
        return sum(_list_items(v) for v in value.values())
    return 0


class _Bound:
    def __init__(self, schema: GraphQLSchema, fragments: Mapping[str, FragmentDefinitionNode],
                 variables: Mapping[str, Any]) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables

    def selection(self, parent: Any, selection_set: SelectionSetNode | None) -> int:
        if not isinstance(parent, GraphQLObjectType):
            return 0
        return sum(self.field(parent, node) for node in _fields(selection_set, self.fragments))

    def field(self, parent: GraphQLObjectType, node: FieldNode) -> int:
        name = node.name.value
        if name.startswith("__") or name in FREE_FIELDS:
            return 0
        field_def = parent.fields.get(name)
        if field_def is None:
            return 1
        if name == "rateLimits" and parent is self.schema.query_type:
            return RATE_LIMITS_COST
        named = get_named_type(field_def.type)
        if not isinstance(named, GraphQLObjectType):
            return 1
        inner = self.selection(named, node.selection_set)
        if isinstance(get_nullable_type(field_def.type), GraphQLList):
            return 1 + self.list_size(field_def, node) * inner
        return 1 + inner

    def list_size(self, field_def: GraphQLField, node: FieldNode) -> int:
        arg = field_def.args.get("limit")
        if arg is None:
            return UNBOUNDED_LIST
        for a in node.arguments or ():
            if a.name.value != "limit":
                continue
            if isinstance(a.value, IntValueNode):
                return max(0, int(a.value.value))
            if isinstance(a.value, VariableNode):
                value = self.variables.get(a.value.name.value)
                if isinstance(value, int):
                    return max(0, value)
        default = arg.default_value
        if isinstance(default, int) and default is not Undefined:
            return max(0, default)
        return UNBOUNDED_LIST

    def arguments(self, node: FieldNode) -> int:
        """List elements in a root mutation's arguments (variables and literals)."""
        total = 0
        for a in node.arguments or ():
            if isinstance(a.value, VariableNode):
                total += _list_items(self.variables.get(a.value.name.value))
            elif hasattr(a.value, "values"):
                total += len(a.value.values)  # type: ignore[attr-defined]
        return total


def upper_bound(schema: GraphQLSchema, ast: Any, variables: Mapping[str, Any] | None) -> int:
    """The complexity bound of the (single) operation of a validated document ``ast``."""
    fragments = {d.name.value: d for d in ast.definitions if isinstance(d, FragmentDefinitionNode)}
    op = next(d for d in ast.definitions if isinstance(d, OperationDefinitionNode))
    bound = _Bound(schema, fragments, variables or {})
    is_mutation = op.operation == OperationType.MUTATION
    root = schema.mutation_type if is_mutation else schema.query_type
    assert root is not None
    total = 0
    for node in _fields(op.selection_set, fragments):
        if node.name.value.startswith("__"):
            continue
        if is_mutation:
            field_def = root.fields.get(node.name.value)
            named = get_named_type(field_def.type) if field_def is not None else None
            total += MUTATION_BASE + bound.arguments(node) + bound.selection(named, node.selection_set)
        else:
            total += bound.field(root, node)
    return max(1, total)
