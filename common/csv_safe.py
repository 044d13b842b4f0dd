"""CSV exports that are safe to open in Excel: formula-looking cells are neutralised, UTF-8 with a BOM."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

# Excel (and LibreOffice, Google Sheets) treat a cell starting with these as a formula: =HYPERLINK(...), +cmd|...
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"


def csv_safe_cell(value: Any) -> str:
    """The cell as text, with a leading ' when a spreadsheet would otherwise run it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_safe_lines(rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """Encode rows as CSV text lines (BOM first, so Excel reads Chinese as UTF-8), for a streaming response."""
    writer = csv.writer(_Echo())
    yield BOM
    for row in rows:
        yield writer.writerow([csv_safe_cell(cell) for cell in row])
