from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from erpsync.erp.layouts import LAYOUTS, RowError
from erpsync.erp.readers import ImportFileError, read_file


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_csv_line_numbers_survive_quoted_newlines_and_blank_lines(tmp_path: Path) -> None:
    f = _write(tmp_path / "products.csv",
               'product_number,name,status\nP1,"Shirt\nwith a newline",ACTIVE\n\nP2,Coat,ACTIVE\nP3,Cap\n')
    rows = list(read_file(f, LAYOUTS["product"]))
    assert [line for line, _ in rows] == [2, 5, 6]
    assert rows[0][1] == {"product_number": "P1", "name": "Shirt\nwith a newline", "status": "ACTIVE"}
    assert isinstance(rows[2][1], RowError) and "expected 3 columns, got 2" in str(rows[2][1])


@pytest.mark.parametrize("delim", [",", ";", "\t"])
def test_csv_delimiter_detected_and_bom_and_header_case_ignored(tmp_path: Path, delim: str) -> None:
    f = _write(tmp_path / "stock.csv", "\ufeff" + delim.join(["Warehouse", "EAN", "Quantity"]) + "\n"
               + delim.join(["WH-MAIN", "7300000000011", "5"]) + "\n")
    assert list(read_file(f, LAYOUTS["stock"])) == [(2, {"warehouse": "WH-MAIN", "ean": "7300000000011",
                                                        "quantity": "5"})]


def test_csv_missing_required_column_rejects_the_file(tmp_path: Path) -> None:
    f = _write(tmp_path / "stock.csv", "warehouse,qty\nWH,1\n")
    with pytest.raises(ImportFileError, match=r"missing required column\(s\) ean, quantity"):
        list(read_file(f, LAYOUTS["stock"]))


def test_csv_not_utf8_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="not UTF-8"):
        list(read_file(_write(tmp_path / "products.csv", "product_number,name\nP1,Tr\xf6ja\n", "latin-1"),
                       LAYOUTS["product"]))
    with pytest.raises(ImportFileError, match="empty file"):
        list(read_file(_write(tmp_path / "stock.csv", ""), LAYOUTS["stock"]))


def test_jsonl_reads_decimals_and_reports_bad_lines(tmp_path: Path) -> None:
    f = _write(tmp_path / "prices.jsonl",
               '{"pricelist": "PL", "Product_Number": "P1", "price": 199.90}\n'
               "\n"
               "{not json}\n"
               "[1, 2]\n")
    rows = list(read_file(f, LAYOUTS["price"]))
    assert rows[0] == (1, {"pricelist": "PL", "product_number": "P1", "price": Decimal("199.90")})
    assert rows[1][0] == 3 and isinstance(rows[1][1], RowError) and "invalid JSON" in str(rows[1][1])
    assert rows[2][0] == 4 and "expected a JSON object, got list" in str(rows[2][1])


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="unknown file type"):
        list(read_file(tmp_path / "stock.xlsx", LAYOUTS["stock"]))
    with pytest.raises(ImportFileError, match="cannot open"):
        list(read_file(tmp_path / "stock.csv", LAYOUTS["stock"]))
