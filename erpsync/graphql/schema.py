"""The contract schema (``erpsync/contract/centra.graphql``) and locally validated documents.

Every document erpsync sends is parsed and validated against the schema subset once per process
(gql ``Client(schema=SDL)``, never introspection) and cached, so a push loop pays the validation
cost once per distinct document.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from importlib import resources

from gql import Client, GraphQLRequest
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    build_ast_schema,
    parse,
)

from erpsync.errors import SchemaMismatch

_schema_lock = threading.Lock()
_schema: GraphQLSchema | None = None


def contract_sdl() -> str:
    """The schema subset erpsync speaks, as shipped in the package."""
    return resources.files("erpsync").joinpath("contract/centra.graphql").read_text(encoding="utf-8")


def contract_schema() -> GraphQLSchema:
    """The parsed contract schema (built once per process)."""
    global _schema  # noqa: PLW0603 -- a process-wide cache of an immutable object
    with _schema_lock:
        if _schema is None:
            _schema = build_ast_schema(parse(contract_sdl()))
        return _schema


@dataclass(frozen=True)
class Document:
    """One validated GraphQL document with what the quota needs to know about it."""

    source: str
    ast: DocumentNode
    is_mutation: bool
    #: the root fields (aliases resolved to field names), e.g. ("setStock",) or ("a:createProduct", …)
    root_fields: tuple[str, ...]
    #: the response keys of the root fields (alias if any, else the field name)
    response_keys: tuple[str, ...]
    operation_name: str | None

    @property
    def mutation_count(self) -> int:
        """Centra charges MUTATION_COUNT once per mutation field (aliases included)."""
        return len(self.root_fields) if self.is_mutation else 0

    @property
    def op_key(self) -> str:
        """The key of the per-operation complexity estimate: kind plus sorted root field names."""
        kind = "mutation" if self.is_mutation else "query"
        return f"{kind}:{'+'.join(sorted(self.root_fields))}"


class DocumentCache:
    """Parses and validates documents against the contract schema, once per distinct text."""

    def __init__(self, schema: GraphQLSchema | None = None, *, max_entries: int = 512) -> None:
        self.schema = schema or contract_schema()
        self._client = Client(schema=self.schema)
        self._cache: dict[str, Document] = {}
        self._lock = threading.Lock()
        self._max = max_entries

    def get(self, source: str) -> Document:
        """The validated document for ``source``; ``SchemaMismatch`` if it breaks the contract."""
        with self._lock:
            doc = self._cache.get(source)
        if doc is not None:
            return doc
        doc = self._compile(source)
        with self._lock:
            if len(self._cache) >= self._max:
                self._cache.pop(next(iter(self._cache)))
            self._cache[source] = doc
        return doc

    def _compile(self, source: str) -> Document:
        try:
            ast = parse(source)
            self._client.validate(GraphQLRequest(ast))
        except GraphQLError as exc:
            raise SchemaMismatch(f"GraphQL document does not match the contract schema: {exc.message}") from exc
        ops = [d for d in ast.definitions if isinstance(d, OperationDefinitionNode)]
        if len(ops) != 1:
            raise SchemaMismatch(f"a document must hold exactly one operation, found {len(ops)}")
        op = ops[0]
        fields = [s for s in op.selection_set.selections if isinstance(s, FieldNode)]
        return Document(
            source=source,
            ast=ast,
            is_mutation=op.operation == OperationType.MUTATION,
            root_fields=tuple(f.name.value for f in fields),
            response_keys=tuple((f.alias or f.name).value for f in fields),
            operation_name=op.name.value if op.name else None,
        )
