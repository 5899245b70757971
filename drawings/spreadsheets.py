"""Spreadsheet files in and out: CSV (UTF-8 with a byte-order mark, so Excel shows Khmer)
and XLSX (openpyxl, written in its streaming write-only mode, read in read-only mode).

No cell we write can start a formula. A text starting with `=`, `+`, `-`, `@`, a tab or a
carriage return (or their full-width forms) gets a single quote in front: the spreadsheet
then shows it as text, e.g. `'+85512345678`, and so does any program the file is later
copied into, which an XLSX "text" type alone would not guarantee.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Protocol

FORMATS = ("csv", "xlsx")
# What a spreadsheet reads as the start of a formula (Excel, LibreOffice, Google Sheets).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_FIRST = frozenset(_FORMULA_START)
# Characters XML (and so XLSX) cannot hold: control characters other than tab and newlines.
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_DELIMITERS = (",", ";", "\t")

Cell = str | int | None


class SpreadsheetError(Exception):
    """A file that cannot be read as a table; the message says why, for the person."""


def _cells(row: Sequence[Cell]) -> list[Cell]:
    # A quote in front of each text cell that could start a formula, in one comprehension:
    # an export calls this a million times.
    return [
        "'" + value if value.__class__ is str and value[:1] in _FIRST else value for value in row
    ]


def unneutralise(value: str) -> str:
    """Undo the quote put in front of a cell, for files we wrote that come back (a phone as
    `'+855...`)."""
    if value.startswith("'") and value[1:].startswith(_FORMULA_START):
        return value[1:]
    return value


class Sheet(Protocol):
    """A table being written row by row."""

    def write(self, row: Sequence[Cell]) -> None:
        """Add one row (texts are neutralised here)."""

    def close(self) -> None:
        """Finish the file (the output stays open, for the caller to close)."""


class CsvSheet:
    """CSV as Excel reads it best: UTF-8 with a byte-order mark, commas, CRLF line ends."""

    def __init__(self, out: IO[bytes]) -> None:
        """Write to a binary output (a file, standard output's buffer, a BytesIO)."""
        # The mark once, then the plain (C-speed) UTF-8 codec for every row.
        out.write(codecs.BOM_UTF8)
        self._text = io.TextIOWrapper(out, encoding="utf-8", newline="")
        self._writer = csv.writer(self._text)

    def write(self, row: Sequence[Cell]) -> None:
        """Add one row."""
        self._writer.writerow(_cells(row))

    def close(self) -> None:
        """Flush, and hand the output back untouched."""
        self._text.flush()
        self._text.detach()


class XlsxSheet:
    """One worksheet, streamed to a temporary file by openpyxl as rows come, zipped at the
    end: memory stays flat however many rows there are."""

    def __init__(self, out: IO[bytes], *, title: str, widths: Sequence[int] = ()) -> None:
        """`widths`: column widths in characters, for a readable first look."""
        import openpyxl  # here, not at the top: about 28 MB the bot needs only for exports

        self._openpyxl = openpyxl
        self._out = out
        self._book = openpyxl.Workbook(write_only=True)
        self._sheet = self._book.create_sheet(title=title[:31] or "Sheet1")
        self._sheet.freeze_panes = "A2"  # the header stays in view
        for index, width in enumerate(widths, start=1):
            self._sheet.column_dimensions[openpyxl.utils.get_column_letter(index)].width = width
        self._header = True
        self._bold = openpyxl.styles.Font(bold=True)

    def write(self, row: Sequence[Cell]) -> None:
        """Add one row: numbers as numbers, texts as texts, never a formula."""
        texts = "".join(value for value in row if isinstance(value, str))
        if _NOT_XML.search(texts):  # rare: dropped first, or they would hide a "="
            row = [_NOT_XML.sub("", value) if isinstance(value, str) else value for value in row]
        values = _cells(row)
        if self._header:
            self._header = False
            cells = []
            for value in values:
                cell = self._openpyxl.cell.WriteOnlyCell(self._sheet, value=value)
                cell.font = self._bold
                cells.append(cell)
            self._sheet.append(cells)
            return
        self._sheet.append(values)

    def close(self) -> None:
        """Write the workbook out."""
        self._book.save(self._out)


def open_sheet(
    kind: str, out: IO[bytes], *, title: str = "Sheet1", widths: Sequence[int] = ()
) -> Sheet:
    """A sheet of `kind` ("csv" or "xlsx") writing to `out`."""
    if kind == "csv":
        return CsvSheet(out)
    if kind == "xlsx":
        return XlsxSheet(out, title=title, widths=widths)
    raise ValueError(f"unknown spreadsheet format {kind!r}")


# ---------------------------------------------------------------- reading


def read_rows(path: Path) -> Iterator[list[str]]:
    """The rows of a CSV or XLSX file (the first sheet), every cell as text ("" when empty).

    Dates in XLSX cells come as YYYY-MM-DD. Raises SpreadsheetError when the file cannot be
    read, with a message for the person who made it."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_rows(path)
    if suffix in (".xlsx", ".xlsm"):
        return _xlsx_rows(path)
    if suffix == ".xls":
        raise SpreadsheetError(f"{path.name}: an old Excel file; save it as .xlsx or .csv")
    raise SpreadsheetError(f"{path.name}: not a .csv or .xlsx file")


def _csv_rows(path: Path) -> Iterator[list[str]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            first = handle.readline()
            delimiter = max(_DELIMITERS, key=first.count)
            handle.seek(0)  # the codec skips the byte-order mark again
            for row in csv.reader(handle, delimiter=delimiter):
                yield [cell.strip() for cell in row]
    except UnicodeDecodeError:
        raise SpreadsheetError(
            f'{path.name} is not UTF-8 text. In Excel, save it as "CSV UTF-8" (or as .xlsx).'
        ) from None
    except (OSError, csv.Error) as error:
        raise SpreadsheetError(f"{path.name}: {error}") from None


def _xlsx_rows(path: Path) -> Iterator[list[str]]:
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds for a broken file
        raise SpreadsheetError(f"{path.name}: not a readable XLSX file ({error})") from None
    try:
        sheet = book.worksheets[0]
        for values in sheet.iter_rows(values_only=True):
            yield [_cell_text(value) for value in values]
    finally:
        book.close()


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone typed as a number: 85512345678.0
    return str(value).strip()
