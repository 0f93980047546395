"""Sample ERP data: the small example files beside this module document one layout per entity
(``*.csv`` here, the same rows as JSON Lines in ``jsonl/``); ``generate()`` writes the full,
deterministic acceptance catalogue (``erpsync sample generate DIR``).

The default catalogue: 2,000 products × 3 variants × 5 sizes (30,000 sizes, EAN-13 with a valid
check digit), 2 size charts, 3 pricelists (PL-SEK SEK, PL-EUR EUR, PL-USD USD) with one price per
product, and stock for every size in 3 warehouses (WH-MAIN, WH-EU, WH-US): 90,000 stock rows.
The same arguments always produce byte-identical files.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

EXAMPLES_DIR = Path(__file__).parent
WAREHOUSES = ("WH-MAIN", "WH-EU", "WH-US")
PRICELISTS = (("PL-SEK", "Sweden retail", "SEK"), ("PL-EUR", "Europe retail", "EUR"), ("PL-USD", "US retail", "USD"))
SIZE_CHARTS = (("APPAREL", ("XS", "S", "M", "L", "XL")), ("SHOES", ("38", "39", "40", "41", "42", "43", "44")))
COLOURS = ("Black", "White", "Navy", "Olive", "Sand", "Red", "Grey", "Blue")
NOUNS = ("Shirt", "Jacket", "Trousers", "Sweater", "Dress", "Coat", "Sneaker", "Boot", "Cap", "Scarf")

COLUMNS: dict[str, tuple[str, ...]] = {
    "sizecharts": ("name", "sizes"),
    "products": ("product_number", "name", "status"),
    "variants": ("variant_number", "product_number", "name", "status", "size_chart"),
    "sizes": ("variant_number", "size", "ean", "upc", "size_number"),
    "pricelists": ("code", "name", "currency", "store", "status"),
    "prices": ("pricelist", "product_number", "variant_number", "price", "rrp"),
    "stock": ("warehouse", "ean", "quantity"),
}


def ean13(n: int, prefix: str = "73") -> str:
    """A valid EAN-13 for ordinal ``n`` (prefix + zero-padded ``n`` + check digit)."""
    body = f"{prefix}{n:0{12 - len(prefix)}d}"
    if len(body) != 12:
        raise ValueError(f"ordinal {n} too large for an EAN-13 with prefix {prefix}")
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


@dataclass(frozen=True)
class Catalogue:
    products: int = 2_000
    variants: int = 3
    sizes: int = 5
    warehouses: tuple[str, ...] = WAREHOUSES
    seed: int = 20261123

    def rows(self, entity: str) -> Iterator[dict[str, Any]]:
        """The rows of ``entity`` (a key of ``COLUMNS``), deterministic."""
        return getattr(self, f"_{entity}")()  # type: ignore[no-any-return]

    def _chart(self, p: int) -> tuple[str, tuple[str, ...]]:
        name, sizes = SIZE_CHARTS[1] if p % 10 in (6, 7) else SIZE_CHARTS[0]
        return name, sizes[: self.sizes]

    def _sizecharts(self) -> Iterator[dict[str, Any]]:
        for name, sizes in SIZE_CHARTS:
            yield {"name": name, "sizes": "|".join(sizes[: self.sizes])}

    def _products(self) -> Iterator[dict[str, Any]]:
        for p in range(1, self.products + 1):
            yield {"product_number": f"P{p:06d}", "name": f"{NOUNS[p % len(NOUNS)]} {p}",
                   "status": "INACTIVE" if p % 97 == 0 else "ACTIVE"}

    def _variants(self) -> Iterator[dict[str, Any]]:
        for p in range(1, self.products + 1):
            chart, _ = self._chart(p)
            for v in range(1, self.variants + 1):
                yield {"variant_number": f"P{p:06d}-{v:02d}", "product_number": f"P{p:06d}",
                       "name": COLOURS[(p + v) % len(COLOURS)], "status": "ACTIVE", "size_chart": chart}

    def _sizes(self) -> Iterator[dict[str, Any]]:
        n = 0
        for p in range(1, self.products + 1):
            _, sizes = self._chart(p)
            for v in range(1, self.variants + 1):
                for i, size in enumerate(sizes, start=1):
                    n += 1
                    yield {"variant_number": f"P{p:06d}-{v:02d}", "size": size, "ean": ean13(n),
                           "upc": "", "size_number": f"{i:02d}"}

    def _pricelists(self) -> Iterator[dict[str, Any]]:
        for code, name, currency in PRICELISTS:
            yield {"code": code, "name": name, "currency": currency, "store": 1, "status": "ACTIVE"}

    def _prices(self) -> Iterator[dict[str, Any]]:
        for code, _name, currency in PRICELISTS:
            for p in range(1, self.products + 1):
                sek = Decimal(199 + (p % 40) * 50)
                price = {"SEK": sek, "EUR": (sek / 10).quantize(Decimal("1")) - Decimal("0.05"),
                         "USD": (sek / 10).quantize(Decimal("1")) + Decimal("0.99")}[currency]
                rrp = (price * Decimal("1.25")).quantize(Decimal("0.01")) if p % 5 == 0 else ""
                yield {"pricelist": code, "product_number": f"P{p:06d}", "variant_number": "",
                       "price": f"{price:.2f}", "rrp": f"{rrp:.2f}" if rrp != "" else ""}
            # a few variant-level prices (a different price for one colour)
            for p in range(1, self.products + 1, 50):
                yield {"pricelist": code, "product_number": f"P{p:06d}", "variant_number": f"P{p:06d}-01",
                       "price": {"SEK": "149.00", "EUR": "14.95", "USD": "15.99"}[currency], "rrp": ""}

    def _stock(self) -> Iterator[dict[str, Any]]:
        rng = random.Random(self.seed)
        eans = [r["ean"] for r in self._sizes()]
        for wh in self.warehouses:
            for ean in eans:
                yield {"warehouse": wh, "ean": ean, "quantity": rng.choice((0, 0, 1, 2, 3, 5, 8, 13, 21, 40))}


def generate(directory: Path, catalogue: Catalogue | None = None, *, fmt: str = "csv") -> dict[str, Path]:
    """Write one file per entity into ``directory`` (``products.csv`` …). Returns entity -> path."""
    catalogue = catalogue or Catalogue()
    if fmt not in ("csv", "jsonl"):
        raise ValueError(f"unknown format {fmt!r} (csv or jsonl)")
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for entity, columns in COLUMNS.items():
        path = directory / f"{entity}.{fmt}"
        with path.open("w", encoding="utf-8", newline="") as fh:
            if fmt == "csv":
                writer = csv.writer(fh, lineterminator="\n")
                writer.writerow(columns)
                for row in catalogue.rows(entity):
                    writer.writerow([row[c] for c in columns])
            else:
                for row in catalogue.rows(entity):
                    fh.write(json.dumps(_jsonl(entity, row), ensure_ascii=False) + "\n")
        written[entity] = path
    return written


def _jsonl(entity: str, row: dict[str, Any]) -> dict[str, Any]:
    """JSON Lines carry native types: size lists as lists, quantities as numbers, money as strings
    (never JSON floats), empty optional columns left out."""
    out = {k: v for k, v in row.items() if v != ""}
    if entity == "sizecharts":
        out["sizes"] = row["sizes"].split("|")
    return out
