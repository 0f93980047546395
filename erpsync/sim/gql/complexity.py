"""The simulator's deterministic query complexity (Centra does not publish its formula).

For the selected operation, complexity is the sum over its root fields of ``cost(field)``:

- ``__typename`` and introspection fields cost 0;
- ``rateLimits`` costs a flat ``RATE_LIMITS_COST`` (10) whatever it selects;
- a scalar or enum field (or a list of them) costs 1;
- an object field costs ``1 + cost(selection)``;
- a list-of-objects field costs ``1 + n × cost(selection)``, where ``n`` is the field's ``limit``
  argument (its schema default when omitted, e.g. 20 for ``products`` and ``Product.variants``)
  or ``DEFAULT_LIST_SIZE`` (10) for list fields without ``limit`` (``productSizes``,
  ``userErrors`` …), so nested lists multiply;
- a root mutation field costs ``MUTATION_BASE`` (100) ``+ 1`` per element of every list in its
  arguments (counted recursively: 1,000 stock lines cost 1,000 more) ``+`` the cost of its
  selection as above;
- fragments are expanded in place; ``@skip``/``@include`` are ignored (counted as included).
  (``freeToAllocateQuantity``, absent from this schema subset, would cost 0.)
- an interface or union field costs as its costliest possible type would.

So ``{ rateLimits { … } }`` = 10; ``products(limit: 5) { id name }`` = 1 + 5 × 2 = 11; a
``createProduct`` selecting ``product { id }`` plus ``userErrors { message path }`` and
``userWarnings { message path }`` = 100 + 2 + 21 + 21 = 144.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    get_nullable_type,
)
from graphql.execution.values import VariableValues, get_argument_values

RATE_LIMITS_COST = 10
DEFAULT_LIST_SIZE = 10
MUTATION_BASE = 100


def _fields(selection_set: SelectionSetNode | None, fragments: Mapping[str, FragmentDefinitionNode]) -> list[FieldNode]:
    out: list[FieldNode] = []
    if selection_set is None:
        return out
    for sel in selection_set.selections:
        if isinstance(sel, FieldNode):
            out.append(sel)
        elif isinstance(sel, InlineFragmentNode):
            out.extend(_fields(sel.selection_set, fragments))
        elif isinstance(sel, FragmentSpreadNode):
            frag = fragments.get(sel.name.value)
            if frag is not None:
                out.extend(_fields(frag.selection_set, fragments))
    return out


def _count_list_items(value: Any) -> int:
    if isinstance(value, list):
        return len(value) + sum(_count_list_items(v) for v in value)
    if isinstance(value, Mapping):
        return sum(_count_list_items(v) for v in value.values())
    return 0


class _Counter:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: VariableValues,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables

    def selection(self, parent: GraphQLNamedType, selection_set: SelectionSetNode | None) -> int:
        if isinstance(parent, GraphQLInterfaceType | GraphQLUnionType):  # the costliest possible type
            return max((self.selection(t, selection_set) for t in self.schema.get_possible_types(parent)), default=0)
        if not isinstance(parent, GraphQLObjectType):
            return 0
        return sum(self.field(parent, node) for node in _fields(selection_set, self.fragments))

    def field(self, parent: GraphQLObjectType, node: FieldNode) -> int:
        name = node.name.value
        if name.startswith("__"):
            return 0
        field_def = parent.fields.get(name)
        if field_def is None:
            return 0
        if name == "rateLimits" and parent is self.schema.query_type:
            return RATE_LIMITS_COST
        named = get_named_type(field_def.type)
        if not isinstance(named, GraphQLObjectType | GraphQLInterfaceType | GraphQLUnionType):
            return 1
        inner = self.selection(named, node.selection_set)
        if isinstance(get_nullable_type(field_def.type), GraphQLList):
            return 1 + self._list_size(field_def, node) * inner
        return 1 + inner

    def _list_size(self, field_def: GraphQLField, node: FieldNode) -> int:
        if "limit" not in field_def.args:
            return DEFAULT_LIST_SIZE
        args = get_argument_values(field_def, node, self.variables)
        limit = args.get("limit")
        return max(0, int(limit)) if isinstance(limit, int) else DEFAULT_LIST_SIZE


def measure(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: VariableValues,
) -> tuple[int, int, list[str]]:
    """(complexity, mutation count, root field names) of a validated operation."""
    counter = _Counter(schema, fragments, variables)
    roots = _fields(operation.selection_set, fragments)
    is_mutation = operation.operation == OperationType.MUTATION
    root_type = schema.mutation_type if is_mutation else schema.query_type
    assert root_type is not None
    total = 0
    mutations = 0
    names: list[str] = []
    for node in roots:
        name = node.name.value
        if name.startswith("__"):
            continue
        names.append(name)
        if operation.operation == OperationType.MUTATION:
            field_def = root_type.fields[name]
            args = get_argument_values(field_def, node, variables)
            named = get_named_type(field_def.type)
            total += MUTATION_BASE + _count_list_items(args) + counter.selection(named, node.selection_set)
            mutations += 1
        else:
            total += counter.field(root_type, node)
    return total, mutations, names
