"""The ``[push.warehouses]`` / ``[push.pricelists]`` mappings checked against Centra.

``check_mappings(query, push)`` looks every configured entry up in Centra (one query per kind and
addressing form: by externalId, by ``id:<n>``) and returns a ``MappingReport``; nothing is written.
The push jobs run it once per process before their first push (``erpsync run`` and ``erpsync push``),
``record`` keeps the result in the ``mapping_check`` table (``erpsync status`` and the
``erpsync_unknown_mapping`` metric read it) and ``announce`` logs each unknown entry once, as the
error ``push.mapping_unknown``. Items addressed to an unknown warehouse or pricelist are parked at once
with a reason naming the mapping key (``push.warehouses.WH-EU``), not after ``push.max_attempts`` runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete
from sqlmodel import Session, col, select

from erpsync.config import PushSettings
from erpsync.logs import get_logger
from erpsync.outbound.changes import Refs
from erpsync.outbound.documents import (
    LOOKUP_PRICELISTS,
    LOOKUP_PRICELISTS_BY_ID,
    LOOKUP_WAREHOUSES,
    LOOKUP_WAREHOUSES_BY_ID,
)
from erpsync.outbound.transform import ref_key
from erpsync.store.engine import transaction
from erpsync.store.models import MappingCheck

log = get_logger("erpsync.sync.mappings")

KINDS = ("warehouse", "pricelist")

#: kind -> (lookup by externalId, lookup by id, the query's list field)
_LOOKUPS = {
    "warehouse": (LOOKUP_WAREHOUSES, LOOKUP_WAREHOUSES_BY_ID, "warehouses"),
    "pricelist": (LOOKUP_PRICELISTS, LOOKUP_PRICELISTS_BY_ID, "pricelists"),
}

#: ``query(document, variables)`` → the response's ``data`` (a push job's ``Sender.query`` with its lane)
Query = Callable[[str, Mapping[str, Any]], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class MappingStatus:
    """One ERP code of ``kind`` and what it addresses in Centra (``ref``: ``externalId:X`` / ``id:7``)."""

    kind: str
    code: str
    ref: str
    known: bool
    mapped: bool = True  # False: an ERP code used as is (no entry in push.<kind>s)

    @property
    def setting(self) -> str:
        """The configuration key of the mapping (``push.warehouses.WH-EU``)."""
        return f"push.{self.kind}s.{self.code}"

    @property
    def reason(self) -> str:
        """Why items for this code cannot be sent (the parked items' reason names the mapping key)."""
        if self.mapped:
            return f"{self.kind} {self.ref} not found in Centra ({self.setting} maps ERP code {self.code} to it)"
        return (f"{self.kind} {self.ref} not found in Centra (ERP code {self.code} has no {self.setting} "
                f"mapping, so it is used as the externalId)")


@dataclass(frozen=True, slots=True)
class MappingReport:
    """Every checked mapping; ``unknown`` the ones Centra does not have."""

    checked: tuple[MappingStatus, ...]
    kinds: tuple[str, ...] = KINDS

    @property
    def unknown(self) -> tuple[MappingStatus, ...]:
        return tuple(m for m in self.checked if not m.known)

    @property
    def ok(self) -> bool:
        return not self.unknown

    def unknown_codes(self, kind: str) -> dict[str, MappingStatus]:
        return {m.code: m for m in self.unknown if m.kind == kind}

    def lines(self) -> list[str]:
        """One line per unknown mapping, for a command's output."""
        return [f"{m.setting}: {m.reason}" for m in self.unknown]


def find_missing(query: Query, kind: str, refs: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """The keys of ``refs`` (key → ``{"externalId": …}`` or ``{"id": n}``) whose object Centra lacks."""
    by_ext_doc, by_id_doc, field = _LOOKUPS[kind]
    by_ext = sorted({str(r["externalId"]) for r in refs.values() if "externalId" in r})
    by_id = sorted({int(r["id"]) for r in refs.values() if "id" in r})
    found: set[str] = set()
    if by_ext:
        data = query(by_ext_doc, {"externalIds": by_ext, "limit": len(by_ext)})
        found |= {f"externalId:{o.get('externalId')}" for o in data.get(field) or []}
    if by_id:
        data = query(by_id_doc, {"ids": by_id, "limit": len(by_id)})
        found |= {f"id:{o.get('id')}" for o in data.get(field) or []}
    return {key for key, ref in refs.items() if ref_key(ref) not in found}


def check_mappings(query: Query, push: PushSettings, kinds: Sequence[str] = KINDS) -> MappingReport:
    """Look every configured ``push.warehouses`` / ``push.pricelists`` entry up in Centra.

    Network and server faults propagate (``RetryLater``; the caller retries); nothing is written.
    """
    refs = Refs.from_settings(push)
    checked: list[MappingStatus] = []
    for kind in kinds:
        configured = refs.warehouses if kind == "warehouse" else refs.pricelists
        address = refs.warehouse if kind == "warehouse" else refs.pricelist
        wanted = {code: address(code) for code in sorted(configured)}
        missing = find_missing(query, kind, wanted) if wanted else set()
        checked.extend(MappingStatus(kind, code, ref_key(ref), code not in missing) for code, ref in wanted.items())
    return MappingReport(tuple(checked), tuple(kinds))


def record(engine: Engine, statuses: Iterable[MappingStatus], now: datetime,
           *, replace_kinds: Sequence[str] = ()) -> list[MappingStatus]:
    """Keep ``statuses`` in ``mapping_check``; with ``replace_kinds`` (a full check of the
    configuration) the earlier rows of those kinds go first. Returns the unknown ones that were not
    recorded as unknown (for the same reference) before: those to ``announce``."""
    items = list(statuses)
    with transaction(engine) as s:
        before = {(r.kind, r.code): r for r in s.exec(select(MappingCheck)).all()}
        if replace_kinds:
            s.exec(delete(MappingCheck).where(col(MappingCheck.kind).in_(list(replace_kinds))))  # type: ignore[call-overload]
            s.flush()
        for m in items:
            row = s.get(MappingCheck, (m.kind, m.code))
            if row is None:
                s.add(MappingCheck(kind=m.kind, code=m.code, ref=m.ref, mapped=m.mapped, known=m.known,
                                   checked_at=now))
            else:
                row.ref, row.mapped, row.known, row.checked_at = m.ref, m.mapped, m.known, now
    new: list[MappingStatus] = []
    for m in items:
        old = before.get((m.kind, m.code))
        if not m.known and (old is None or old.known or old.ref != m.ref):
            new.append(m)
    return new


def announce(statuses: Iterable[MappingStatus], logger: Any = None) -> None:
    """One error line per unknown mapping: ``push.mapping_unknown``."""
    for m in statuses:
        if not m.known:
            (logger or log).error("push.mapping_unknown", kind=m.kind, code=m.code, ref=m.ref, key=m.setting,
                                  reason=m.reason, hint=f"fix {m.setting} or create the {m.kind} in Centra; "
                                                        "its items are parked")


def recorded(engine: Engine) -> list[MappingStatus]:
    """What ``mapping_check`` holds (every checked code, known or not)."""
    with Session(engine) as s:
        rows = s.exec(select(MappingCheck).order_by(col(MappingCheck.kind), col(MappingCheck.code))).all()
    return [MappingStatus(r.kind, r.code, r.ref, r.known, r.mapped) for r in rows]
