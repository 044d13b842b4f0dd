"""Streaming readers for uploaded lists: CSV (encoding and delimiter detected) and XLSX (openpyxl, read-only).

Every reader yields ``(line_number, cells)`` where the line number is the row number Excel shows
(header = 1; a quoted newline inside a cell does not start a new row; blank rows are counted but
not yielded). Nothing reads the whole file into memory.
"""

from __future__ import annotations

import codecs
import csv
import io
import unicodedata
import zipfile
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import IO, Any

from django.utils.translation import gettext as _

CSV_EXTENSIONS = (".csv", ".txt", ".tsv")
XLSX_EXTENSIONS = (".xlsx",)
ALLOWED_EXTENSIONS = CSV_EXTENSIONS + XLSX_EXTENSIONS
DELIMITERS = (",", ";", "\t", "|")
SNIFF_BYTES = 64 * 1024
DECODE_CHUNK = 1024 * 1024
# A cell may legitimately be long (a pasted note); the per-field length check reports it as a row error.
csv.field_size_limit(64 * 1024 * 1024)


class ImportFileError(ValueError):
    """The file cannot be imported at all (binary, empty, header only, unreadable)."""


@dataclass(frozen=True)
class FileInfo:
    kind: str  # "csv" | "xlsx"
    encoding: str = ""
    delimiter: str = ""
    headers: list[str] = field(default_factory=list)


def clean_header(value: Any) -> str:
    """Headers as users type them: NFKC-folded (全角 → ASCII), inner whitespace collapsed, trimmed."""
    text = "" if value is None else str(value)
    return " ".join(unicodedata.normalize("NFKC", text).replace("\ufeff", "").split())


def unique_headers(raw: list[Any]) -> list[str]:
    """Clean headers, name empty ones by position and make repeated ones unique ("Email", "Email (2)")."""
    seen: dict[str, int] = {}
    headers: list[str] = []
    for index, value in enumerate(raw, start=1):
        name = clean_header(value) or _("Column %(n)s") % {"n": index}
        seen[name] = seen.get(name, 0) + 1
        headers.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return headers


def cell_text(value: Any) -> str:
    """An XLSX cell as the text a user sees: 13800138000.0 → "13800138000", dates in ISO 8601."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def _rewind(fileobj: IO[bytes]) -> None:
    fileobj.seek(0)


def file_kind(name: str, head: bytes) -> str:
    """``csv`` or ``xlsx`` from the extension, cross-checked with the content's first bytes."""
    lower = name.lower()
    if not lower.endswith(ALLOWED_EXTENSIONS):
        raise ImportFileError(_("Upload a .csv or .xlsx file."))
    is_zip = head.startswith(b"PK\x03\x04")
    if lower.endswith(XLSX_EXTENSIONS):
        if not is_zip:
            raise ImportFileError(_("This file is not a valid .xlsx workbook."))
        return "xlsx"
    if is_zip or b"\x00" in head[:SNIFF_BYTES]:
        raise ImportFileError(_("This file is not a text (CSV) file. Save it from Excel as CSV or upload the .xlsx."))
    return "csv"


def detect_encoding(fileobj: IO[bytes]) -> str:
    """UTF-8 (with or without BOM) if the whole file decodes strictly, else GB18030 (what Chinese Excel writes).

    The check decodes the file in 1 MB pieces, so a 50 MB file costs about 50 ms and no memory.
    """
    _rewind(fileobj)
    head = fileobj.read(3)
    candidates = ("utf-8-sig",) if head == codecs.BOM_UTF8 else ("utf-8", "gb18030")
    for encoding in candidates:
        _rewind(fileobj)
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        try:
            while chunk := fileobj.read(DECODE_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        _rewind(fileobj)
        return encoding
    _rewind(fileobj)
    raise ImportFileError(_("The file's text encoding was not recognised; save it as UTF-8 CSV."))


def sniff_delimiter(sample: str) -> str:
    """The candidate that splits the first non-blank line into the most columns (quotes respected)."""
    lines = [line for line in sample.splitlines() if line.strip()]
    if not lines:
        return ","
    best, best_count = ",", 0
    for delimiter in DELIMITERS:
        try:
            first = next(csv.reader([lines[0]], delimiter=delimiter))
        except csv.Error:
            continue
        if len(first) > best_count:
            best, best_count = delimiter, len(first)
    return best


@contextmanager
def _text(fileobj: IO[bytes], encoding: str) -> Iterator[io.TextIOWrapper]:
    """A text view of the upload; detached afterwards so the caller's file stays open."""
    _rewind(fileobj)
    wrapper = io.TextIOWrapper(fileobj, encoding=encoding, newline="")
    try:
        yield wrapper
    finally:
        if not fileobj.closed:
            wrapper.detach()


Rows = Generator[tuple[int, list[str]], None, None]


def _csv_rows(fileobj: IO[bytes], encoding: str, delimiter: str) -> Rows:
    """Every non-blank record with its Excel row number (header included)."""
    with _text(fileobj, encoding) as text:
        for number, record in enumerate(csv.reader(text, delimiter=delimiter), start=1):
            # Blank unless some cell has a non-space character (one C-level join, not a Python loop per cell).
            if "".join(record).strip():
                yield number, record


# openpyxl reads a workbook's shared strings whole, even in read-only mode: a 2 MB upload can expand
# to gigabytes. The sizes in the zip directory are binding (zipfile refuses to read past them).
MAX_XLSX_UNCOMPRESSED = 500 * 2**20
MAX_XLSX_RATIO = 200


def _check_zip_expansion(fileobj: IO[bytes]) -> None:
    _rewind(fileobj)
    try:
        with zipfile.ZipFile(fileobj) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise ImportFileError(_("This file is not a valid .xlsx workbook.")) from exc
    total = sum(m.file_size for m in members)
    packed = sum(m.compress_size for m in members) or 1
    if total > MAX_XLSX_UNCOMPRESSED or (total > 20 * 2**20 and total / packed > MAX_XLSX_RATIO):
        raise ImportFileError(_("This workbook expands to too much data to import; save it as CSV and upload that."))


def _open_workbook(fileobj: IO[bytes]) -> Any:
    """The workbook, read-only, values not formulas; ImportFileError if it is not one or expands too far."""
    from openpyxl import load_workbook

    _check_zip_expansion(fileobj)
    _rewind(fileobj)
    try:
        return load_workbook(fileobj, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ImportFileError(_("This file is not a valid .xlsx workbook.")) from exc


def _first_sheet(workbook: Any) -> tuple[Any, int | None]:
    """The sheet a list is read from, and the number of rows it declares (its ``<dimension>``; ``None``: none).

    openpyxl stops reading at the declared last row, and a writer can declare too few ("A1:F500" over a
    thousand rows): those rows would be dropped without a word. So the declared size is taken as the
    writer's claim and forgotten before the rows are read, which then run to the sheet's real end.
    """
    sheet = workbook.worksheets[0]
    declared = sheet.max_row
    sheet.reset_dimensions()
    return sheet, declared


def _sheet_rows(sheet: Any) -> Rows:
    """A sheet's non-blank rows with their row numbers, as text."""
    for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
        cells = [cell_text(v) for v in values]
        if any(cell.strip() for cell in cells):
            yield number, cells


def _xlsx_rows(fileobj: IO[bytes]) -> Rows:
    workbook = _open_workbook(fileobj)
    try:
        yield from _sheet_rows(_first_sheet(workbook)[0])
    finally:
        workbook.close()


def inspect(fileobj: IO[bytes], name: str) -> FileInfo:
    """Kind, encoding, delimiter and headers of an upload; raises ImportFileError for a file we cannot use."""
    _rewind(fileobj)
    head = fileobj.read(SNIFF_BYTES)
    if not head:
        raise ImportFileError(_("The file is empty."))
    kind = file_kind(name, head)
    if kind == "xlsx":
        rows = _xlsx_rows(fileobj)
        info = FileInfo(kind="xlsx")
    else:
        encoding = detect_encoding(fileobj)
        sample = head.decode(encoding, errors="ignore")
        info = FileInfo(kind="csv", encoding=encoding, delimiter=sniff_delimiter(sample))
        rows = _csv_rows(fileobj, info.encoding, info.delimiter)
    try:
        first = next(rows, None)
        second = next(rows, None) if first is not None else None
    except csv.Error as exc:
        raise ImportFileError(_("The file could not be read as CSV: %(error)s") % {"error": exc}) from exc
    finally:
        rows.close()
    if first is None:
        raise ImportFileError(_("The file is empty."))
    if second is None:
        raise ImportFileError(_("The file has a header row but no data rows."))
    return FileInfo(kind=info.kind, encoding=info.encoding, delimiter=info.delimiter, headers=unique_headers(first[1]))


def data_rows(fileobj: IO[bytes], info: FileInfo) -> Rows:
    """The data rows (after the header) with their Excel row numbers, streamed."""
    rows = _xlsx_rows(fileobj) if info.kind == "xlsx" else _csv_rows(fileobj, info.encoding, info.delimiter)
    try:
        next(rows, None)  # the header
        yield from rows
    finally:
        rows.close()


class StoredList:
    """An accepted upload as the worker reads it: headers, a row count for the progress bar, the data rows.

    The file was inspected when it was uploaded (its kind, encoding and delimiter are the job's), so it
    is not inspected again. A workbook is opened once for all three (openpyxl reads the whole
    shared-strings table on every open: up to 2 s for a 100,000-row list), and as each pass over its rows
    costs ~5 s per 100,000, the count is the sheet's declared size (its ``<dimension>``, which Excel, WPS
    and LibreOffice write) when there is one. That is an estimate for the progress bar (it includes blank
    rows, and a writer may declare too few: the rows are read to the sheet's end all the same); the job's
    total is set to what it processed when it ends. A CSV is counted by a streaming pass (~70 ms per
    100,000 rows) and read again for the data.
    """

    def __init__(self, fileobj: IO[bytes], info: FileInfo) -> None:
        self.fileobj, self.info = fileobj, info
        self._workbook: Any = None
        self._sheet: Any = None
        self._declared: int | None = None
        self._header_line = 0
        self.headers: list[str] = []

    def __enter__(self) -> StoredList:
        rows = self._records()
        try:
            first = next(rows, None)
        finally:
            rows.close()
        if first is None:
            raise ImportFileError(_("The file is empty."))
        self._header_line, self.headers = first[0], unique_headers(first[1])
        return self

    def __exit__(self, *exc: object) -> None:
        if self._workbook is not None:
            self._workbook.close()
            self._workbook = None

    def _records(self) -> Rows:
        if self.info.kind != "xlsx":
            return _csv_rows(self.fileobj, self.info.encoding, self.info.delimiter)
        if self._workbook is None:
            self._workbook = _open_workbook(self.fileobj)
            self._sheet, self._declared = _first_sheet(self._workbook)
        return _sheet_rows(self._sheet)

    def count(self) -> int:
        """The data rows; for a workbook with a declared size, that size less the header (see the class)."""
        if self._declared is not None and self._declared > self._header_line:
            return self._declared - self._header_line
        return sum(1 for _ in self.data_rows())

    def data_rows(self) -> Rows:
        """The data rows after the header with their Excel row numbers, streamed."""
        rows = self._records()
        try:
            next(rows, None)  # the header
            yield from rows
        finally:
            rows.close()
