"""``erpsync check``: is this Centra (or simulator) compatible with this erpsync and its config?

A few requests, no mutation, nothing acknowledged:

1. the secrets are there;
2. SOAP: one ``events_Get`` (logs in; reads at most one batch and acknowledges nothing);
3. GraphQL: ``rateLimits`` (the token works; the buckets' state);
4. the token's read permissions, as far as Centra reveals them (``extensions.permissionsUsed`` of
   one probe of every root field erpsync reads; write permissions show only when a mutation is
   sent, which check never does);
5. the live schema, introspected once: every document erpsync can send is validated against it,
   and where Centra's schema differs from the bundled contract in a part erpsync uses, the field,
   argument or type is named (the contract's [open] points are exactly where a store may differ);
6. every mapped warehouse and pricelist (``[push.warehouses]`` / ``[push.pricelists]``) exists.

Each check is one :class:`CheckRow` (✔/✘ with the fix for a ✘); ``run_checks`` never raises for
what it finds: an unreachable Centra is a ✘ row too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    BreakingChange,
    DangerousChange,
    DocumentNode,
    GraphQLSchema,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    build_client_schema,
    find_breaking_changes,
    get_introspection_query,
    get_named_type,
    parse,
    validate,
)

from erpsync.config import Settings
from erpsync.errors import AuthenticationFailed, ErpsyncError, PermissionDenied, SourceUnavailable
from erpsync.graphql.client import RATE_LIMITS_QUERY, CentraGraphql
from erpsync.graphql.schema import contract_schema
from erpsync.inbound.gql_documents import DOCUMENTS as EVENT_DOCUMENTS
from erpsync.outbound import documents as outbound_documents
from erpsync.outbound.mappings import check_mappings
from erpsync.soap.client import CentraSoapClient

#: the read each probe needs (root field → a minimal selection); orders and events only when the
#: GraphQL event source is configured
PROBES: dict[str, str] = {
    "products": "products(limit: 1) { id }",
    "pricelists": "pricelists(limit: 1) { id }",
    "warehouses": "warehouses(limit: 1) { id }",
    "sizeCharts": "sizeCharts(limit: 1) { id }",
}
EVENT_PROBES: dict[str, str] = {
    "eventListeners": "eventListeners { objectType }",
    "orders": "orders(limit: 1) { number }",
}


@dataclass(frozen=True)
class CheckRow:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    @property
    def mark(self) -> str:
        return "✔" if self.ok else "✘"


def sendable_documents(extra: Sequence[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    """(name, source) of every GraphQL document erpsync can send: the push documents (every
    module-level document in ``erpsync.outbound.documents``, the catalogue mutation with every kind),
    ``rateLimits``, the GraphQL event source's, and ``extra``."""
    docs: list[tuple[str, str]] = [("RATE_LIMITS", RATE_LIMITS_QUERY)]
    for name in sorted(vars(outbound_documents)):
        value = getattr(outbound_documents, name)
        if name.isupper() and isinstance(value, str) and value.lstrip().startswith(("query", "mutation")):
            docs.append((name, value))
    kinds = list(getattr(outbound_documents, "_CATALOGUE", {}))
    if kinds:
        docs.append(("CATALOGUE_MUTATION", outbound_documents.catalogue_mutation(kinds)))
    docs.extend(sorted(EVENT_DOCUMENTS.items()))
    docs.extend(extra)
    return docs


def _visit(document: DocumentNode, visitor: Visitor) -> None:
    from graphql import visit

    visit(document, visitor)


def _field_coordinates(schema: GraphQLSchema, document: DocumentNode) -> set[str]:
    """``Type.field`` for each field selection (by the contract), plus every type name involved,
    including input types reached from variables (their fields count as used)."""
    coords = set()
    info = TypeInfo(schema)

    class _Fields(Visitor):
        def enter_field(self, node: Any, *_args: Any) -> None:
            parent = info.get_parent_type()
            if parent is not None:
                coords.add(f"{parent.name}.{node.name.value}")
                coords.add(parent.name)
            fdef = info.get_field_def()
            if fdef is not None:
                coords.add(get_named_type(fdef.type).name)
                for arg in node.arguments or ():
                    coords.add(f"{parent.name}.{node.name.value}.{arg.name.value}" if parent else "")

        def enter_variable_definition(self, node: Any, *_args: Any) -> None:
            named = node.type
            while hasattr(named, "type"):
                named = named.type
            for t in _input_closure(schema, named.name.value):
                coords.add(t)

    _visit(document, TypeInfoVisitor(info, _Fields()))
    return {c for c in coords if c}


def _input_closure(schema: GraphQLSchema, name: str) -> Iterator[str]:
    """An input type's name, its fields (``Type.field``) and the input types they reach."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        yield n
        t = schema.get_type(n)
        fields = getattr(t, "fields", None)
        if t is None or fields is None or not hasattr(t, "out_type"):
            continue  # enums and scalars end here (only input object types have out_type)
        for fname, f in fields.items():
            yield f"{n}.{fname}"
            todo.append(get_named_type(f.type).name)


_COORD = re.compile(r"\b([A-Z][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?(?:\.([A-Za-z_][A-Za-z0-9_]*))?")


def _touches(change: BreakingChange | DangerousChange, used: set[str]) -> bool:
    for m in _COORD.finditer(change.description):
        typ, fld, arg = m.groups()
        if arg and f"{typ}.{fld}.{arg}" in used:
            return True
        if fld and f"{typ}.{fld}" in used:
            return True
        if not fld and typ in used and change.type.name.startswith("TYPE"):
            return True
    return False


class Checker:
    """Runs the checks in order; clients are built from the settings unless given (tests)."""

    def __init__(self, settings: Settings, *, soap: Any = None, graphql: Any = None,
                 extra_documents: Sequence[tuple[str, str]] = (), clock: Any = None) -> None:
        self.settings = settings
        self._soap = soap
        self._graphql = graphql
        self.extra_documents = extra_documents
        self.clock = clock
        self.rows: list[CheckRow] = []
        self._owned: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ clients

    def soap(self) -> Any:
        if self._soap is None:
            s = self.settings
            soap = s.centra.soap
            assert soap is not None and soap.password is not None  # run() checks only a configured side
            self._soap = CentraSoapClient(
                soap.url, soap.username, soap.password.get_secret_value(), store_tz=s.store_tz,
                event_type=soap.event_types[0] if len(soap.event_types) == 1 else "all",
                markets=soap.markets, connect_timeout=soap.connect_timeout, read_timeout=soap.read_timeout,
                operation_timeout=soap.operation_timeout)
            self._owned.append(self._soap.close)
        return self._soap

    def graphql(self) -> Any:
        if self._graphql is None:
            from erpsync.clock import SystemClock

            g = self.settings.centra.graphql
            assert g is not None and g.token is not None  # run() checks only a configured side
            self._graphql = CentraGraphql(g.url, g.token, governor=None, clock=self.clock or SystemClock(),
                                          connect_timeout=g.connect_timeout, read_timeout=g.read_timeout)
            self._owned.append(self._graphql.close)
        return self._graphql

    def close(self) -> None:
        while self._owned:
            self._owned.pop()()

    # ------------------------------------------------------------------ the run

    def run(self) -> list[CheckRow]:
        try:
            missing = {p.key for p in self.settings.missing_secrets(
                ["centra.soap.password", "centra.graphql.token"])}
            for key in sorted(missing):
                self.add(f"secret {key}", False, "not set",
                         f"set the credential ({key.replace('.', '_').removeprefix('centra_')}) or the "
                         f"ERPSYNC_{key.replace('.', '_').upper()} environment variable")
            if self.settings.centra.soap is not None and "centra.soap.password" not in missing:
                self.check_soap()
            if (self.settings.centra.graphql is not None and "centra.graphql.token" not in missing
                    and self.check_rate_limits()):
                self.check_permissions()
                live = self.check_introspection()
                if live is not None:
                    self.check_documents(live)
                self.check_mappings()
        finally:
            self.close()
        return self.rows

    def add(self, name: str, ok: bool, detail: str, fix: str = "") -> bool:
        self.rows.append(CheckRow(name, ok, detail, "" if ok else fix))
        return ok

    def _fail(self, name: str, exc: Exception, what: str) -> bool:
        if isinstance(exc, AuthenticationFailed):
            fix = f"check the {what} credentials (and that the account/token is active)"
        elif isinstance(exc, PermissionDenied):
            fix = "grant the token the permission named in AMS (Integration API token settings)"
        elif isinstance(exc, SourceUnavailable):
            fix = f"check the {what} URL, the network, and that Centra is up; then run check again"
        else:
            fix = "see the detail; the contract (PROTOCOL.md) says what erpsync expects"
        return self.add(name, False, f"{type(exc).__name__}: {exc}", fix)

    def check_soap(self) -> bool:
        name = "SOAP login (events_Get, nothing acknowledged)"
        try:
            events = self.soap().fetch()
        except ErpsyncError as exc:
            return self._fail(name, exc, "[centra.soap] url/username/password")
        more = "or more " if len(events) >= 100 else ""
        user = self.settings.centra.soap.username if self.settings.centra.soap else ""
        return self.add(name, True, f"logged in as {user}; "
                                    f"{len(events)} {more}event(s) waiting, none acknowledged")

    def check_rate_limits(self) -> bool:
        name = "GraphQL token and rateLimits"
        try:
            rows = self.graphql().rate_limits(reseed=False)
        except ErpsyncError as exc:
            return self._fail(name, exc, "[centra.graphql] url/token")
        tight = min(rows, key=lambda r: r.remaining / r.quota if r.quota else 1.0, default=None)
        detail = f"{len(rows)} buckets"
        if tight is not None:
            detail += f"; tightest {tight.type}/{tight.interval}: {tight.remaining} of {tight.quota} left"
        return self.add(name, True, detail)

    def _probe_fields(self) -> dict[str, str]:
        fields = dict(PROBES)
        if getattr(getattr(self.settings.centra, "events", None), "source", "soap") != "soap":
            fields.update(EVENT_PROBES)
        return fields

    def check_permissions(self) -> bool:
        name = "token read permissions (extensions.permissionsUsed)"
        fields = self._probe_fields()
        gql = self.graphql()
        granted: set[str] = set()
        denied: list[str] = []
        try:
            result = gql.query("query Probe { " + " ".join(fields.values()) + " }", lane="catalogue")
            granted.update(result.permissions_used)
        except PermissionDenied:
            # Centra names one missing permission per answer: probe the fields one by one
            for field, selection in fields.items():
                try:
                    one = gql.query(f"query Probe_{field} {{ {selection} }}", lane="catalogue")
                    granted.update(one.permissions_used)
                except PermissionDenied as exc:
                    denied.append(f"{field}: {exc}")
                except ErpsyncError as exc:
                    return self._fail(name, exc, "[centra.graphql]")
        except ErpsyncError as exc:
            return self._fail(name, exc, "[centra.graphql]")
        note = ("write permissions (Product:write, Stock:write, … Event:write) are revealed only by a "
                "mutation, which check never sends")
        if denied:
            return self.add(name, False, "denied: " + "; ".join(denied),
                            "grant the token these read permissions in AMS (" + note + ")")
        return self.add(name, True, ("reads " + ", ".join(sorted(granted)) if granted
                                     else "reads allowed (Centra listed no permissionsUsed)") + f"; {note}")

    def check_introspection(self) -> GraphQLSchema | None:
        name = "GraphQL schema (introspected once)"
        try:
            result = self.graphql().query(get_introspection_query(descriptions=False), lane="catalogue")
            live = build_client_schema(result.data)  # type: ignore[arg-type]
        except ErpsyncError as exc:
            self._fail(name, exc, "[centra.graphql]")
            return None
        except (TypeError, KeyError, ValueError) as exc:
            self.add(name, False, f"the introspection answer is not a schema: {exc}",
                     "Centra may have introspection switched off for this token: ask Centra support")
            return None
        self.add(name, True, f"{len(live.type_map)} types")
        return live

    def check_documents(self, live: GraphQLSchema) -> bool:
        contract = contract_schema()
        docs = sendable_documents(self.extra_documents)
        used: set[str] = set()
        bad: list[str] = []
        for doc_name, source in docs:
            ast = parse(source)
            used |= _field_coordinates(contract, ast)
            errors = validate(live, ast)
            if errors:
                bad.append(f"{doc_name}: " + "; ".join(e.message for e in errors))
        changes = [c for c in find_breaking_changes(contract, live) if _touches(c, used)]
        ok_docs = self.add(
            f"{len(docs)} documents erpsync sends, validated against Centra's schema",
            not bad, "all valid" if not bad else " | ".join(bad),
            "Centra's schema differs from the contract erpsync was built for: upgrade erpsync, or "
            "report the difference (the [open] points of PROTOCOL.md are where stores differ)")
        diff = [c.description for c in changes]
        ok_diff = self.add(
            "schema parts erpsync uses match the bundled contract", not diff,
            "identical" if not diff else " | ".join(diff),
            "these differ from erpsync/contract/centra.graphql: upgrade erpsync, or report them")
        return ok_docs and ok_diff

    def check_mappings(self) -> bool:
        push = self.settings.push
        ok = self._check_mapped("warehouse", push.warehouses)
        return self._check_mapped("pricelist", push.pricelists) and ok

    def _check_mapped(self, kind: str, mapping: dict[str, str]) -> bool:
        """The push jobs' own start-up check (``outbound.mappings``), as one row of the table."""
        name = f"mapped {kind}s exist in Centra"
        if not mapping:
            return self.add(name, True, f"none mapped in [push.{kind}s] (ERP codes are used as externalIds)")
        gql = self.graphql()
        try:
            report = check_mappings(lambda doc, variables: gql.query(doc, variables, lane="catalogue").data,
                                    self.settings.push, kinds=(kind,))
        except ErpsyncError as exc:
            return self._fail(name, exc, "[centra.graphql]")
        missing = [f"{m.code} → {mapping[m.code]}" for m in report.unknown]
        if missing:
            return self.add(name, False, "missing: " + ", ".join(missing),
                            f"create them in Centra or correct [push.{kind}s] in the config")
        return self.add(name, True, f"{len(mapping)} mapped, all found")


def run_checks(settings: Settings, **kwargs: Any) -> list[CheckRow]:
    """Every check, in order (see the module docstring). Never raises for what it finds."""
    return Checker(settings, **kwargs).run()


def render_table(rows: Sequence[CheckRow]) -> str:
    """One ✔/✘ table: check, result, and the fix under each ✘."""
    width = max((len(r.name) for r in rows), default=10)
    lines = []
    for r in rows:
        lines.append(f"{r.mark} {r.name.ljust(width)}  {r.detail}")
        if not r.ok and r.fix:
            lines.append(f"  {'':{width}}  fix: {r.fix}")
    failed = sum(not r.ok for r in rows)
    lines.append(f"{len(rows) - failed} ✔, {failed} ✘")
    return "\n".join(lines)
