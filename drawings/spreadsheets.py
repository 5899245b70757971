"""Spreadsheet files in and out: CSV (UTF-8 with a byte-order mark, so Excel shows Khmer)
and XLSX (openpyxl, written in its streaming write-only mode, read in read-only mode).

No cell we write can start a formula. A text starting with `=`, `+`, `-`, `@`, a tab or a
carriage return (or their full-width forms) gets a single quote in front: the spreadsheet
then shows it as text, e.g. `'+85512345678`, and so does any program the file is later
copied into, which an XLSX "text" type alone would not guarantee.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import re
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any, Protocol
from xml.parsers import expat

from defusedxml import DefusedXmlException, EntitiesForbidden

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

# A sheet comes from anyone: these bound what reading it may cost. A 100 KB XLSX can unzip to
# gigabytes of XML, and openpyxl would build whatever that XML describes.
MAX_ROWS = 100_000  # the import's default; IMPORT_MAX_ROWS
MAX_COLUMNS = 50  # the import's default; IMPORT_MAX_COLUMNS
MAX_CELL = 10_000  # characters in one cell (a name, a place, a note)
# XFD, Excel's last column: no row Excel writes has more cells. A row's XML is read whole
# by openpyxl, so a longer one is refused before it gets there.
_ROW_XML = 4 * 16_384
_HEAD_XML = 20_000  # elements before the cells (views, column widths, formats)
# All of an XLSX unzipped: a few MB of styles and settings, and XML for each cell allowed.
_UNZIPPED_BASE = 4 * 2**20
_UNZIPPED_PER_CELL = 32


def read_rows(
    path: Path, *, max_rows: int = MAX_ROWS, max_columns: int = MAX_COLUMNS
) -> Iterator[list[str]]:
    """The rows of a CSV or XLSX file (the first sheet), every cell as text ("" when empty).

    Dates in XLSX cells come as YYYY-MM-DD. Raises SpreadsheetError when the file cannot be
    read, or holds more than `max_rows` rows or `max_columns` columns (blank ones past the
    limits do not count), with a message for the person who made it."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_rows(path, max_rows, max_columns)
    if suffix in (".xlsx", ".xlsm"):
        return _xlsx_rows(path, max_rows, max_columns)
    if suffix == ".xls":
        raise SpreadsheetError(f"{path.name}: an old Excel file; save it as .xlsx or .csv")
    raise SpreadsheetError(f"{path.name}: not a .csv or .xlsx file")


def _too_many_rows(name: str, max_rows: int) -> SpreadsheetError:
    return SpreadsheetError(
        f"{name}: the sheet has more than {max_rows:,} rows; split it into smaller files"
    )


def _too_many_columns(name: str, max_columns: int) -> SpreadsheetError:
    return SpreadsheetError(
        f"{name}: the sheet has more than {max_columns:,} columns; delete the ones not needed"
    )


def _too_big(name: str, max_rows: int, max_columns: int) -> SpreadsheetError:
    return SpreadsheetError(
        f"{name}: not a readable XLSX file (more XML than {max_rows:,} rows of "
        f"{max_columns:,} columns need); split it into smaller files"
    )


def _too_long(name: str, row: int) -> SpreadsheetError:
    return SpreadsheetError(f"{name}: row {row:,} has a cell longer than {MAX_CELL:,} characters")


def _csv_rows(path: Path, max_rows: int, max_columns: int) -> Iterator[list[str]]:
    # The longest row read: every column full, quoted, with its delimiter. csv.reader would
    # otherwise build a row of any length (a line of commas is a million empty cells).
    longest = max_columns * (MAX_CELL + 3)
    number = 1  # the row being read
    left = longest

    def lines(handle: IO[str]) -> Iterator[str]:
        # A quoted cell may go on over several lines: the length counts for the whole row.
        nonlocal left
        while line := handle.readline(left + 1):
            left -= len(line)
            if left < 0:
                raise SpreadsheetError(
                    f"{path.name}: row {number:,} is longer than {longest:,} characters"
                )
            yield line

    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            first = handle.readline(longest)
            delimiter = max(_DELIMITERS, key=first.count)
            handle.seek(0)  # the codec skips the byte-order mark again
            for row in csv.reader(lines(handle), delimiter=delimiter):
                cells = [cell.strip() for cell in row]
                if len(cells) > max_columns:
                    if any(cells[max_columns:]):
                        raise _too_many_columns(path.name, max_columns)
                    del cells[max_columns:]
                if number > max_rows and any(cells):
                    raise _too_many_rows(path.name, max_rows)
                if any(len(cell) > MAX_CELL for cell in cells):
                    raise _too_long(path.name, number)
                if number <= max_rows:  # blank lines after the last row are not rows
                    yield cells
                number += 1
                left = longest
    except UnicodeDecodeError:
        raise SpreadsheetError(
            f'{path.name} is not UTF-8 text. In Excel, save it as "CSV UTF-8" (or as .xlsx).'
        ) from None
    except csv.Error as error:
        raise SpreadsheetError(f"{path.name}: row {number:,}: {error}") from None
    except OSError as error:
        raise SpreadsheetError(f"{path.name}: {error}") from None


def _xlsx_rows(path: Path, max_rows: int, max_columns: int) -> Iterator[list[str]]:
    import zipfile

    import openpyxl

    try:
        # The sizes the zip declares are the most it yields: checked before anything is read.
        with zipfile.ZipFile(path) as archive:
            unzipped = sum(member.file_size for member in archive.infolist())
        if unzipped > _UNZIPPED_BASE + _UNZIPPED_PER_CELL * max_rows * max_columns:
            raise _too_big(path.name, max_rows, max_columns)
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except SpreadsheetError:
        raise
    except Exception as error:  # openpyxl raises many kinds for a broken file
        raise _unreadable(path.name, error) from None
    try:
        if not book.worksheets:
            raise SpreadsheetError(f"{path.name}: not a readable XLSX file (it has no sheet)")
        sheet = book.worksheets[0]
        last = _last_row(sheet, path.name, max_rows, max_columns)
        if not last:
            return
        # The <dimension> the file claims is not trusted: openpyxl would make every row as
        # wide and the sheet as long as it says (A1:XFD1048576 is 17 billion cells).
        sheet.reset_dimensions()
        rows = sheet.iter_rows(max_row=last, max_col=max_columns, values_only=True)
        for number, values in enumerate(rows, start=1):
            cells = [_cell_text(value) for value in values]
            while cells and not cells[-1]:
                cells.pop()
            if any(len(cell) > MAX_CELL for cell in cells):  # a shared string, read now
                raise _too_long(path.name, number)
            yield cells
            if number == last:  # not one element further: what follows is never read
                break
    except SpreadsheetError:
        raise
    except Exception as error:
        raise _unreadable(path.name, error) from None
    finally:
        book.close()


def _unreadable(name: str, error: Exception) -> SpreadsheetError:
    """One line for a file openpyxl or the XML parser could not read (never a traceback)."""
    # openpyxl wraps what went wrong in a long "Unable to read workbook"; the cause says it.
    causes: list[BaseException] = [error]
    while (cause := causes[-1].__cause__) is not None and len(causes) < 10:
        causes.append(cause)
    root = causes[-1]
    if any(isinstance(cause, DefusedXmlException) for cause in causes):
        why = "it declares XML entities, which no spreadsheet needs"
    else:
        why = " ".join(str(root).split())[:200] or type(root).__name__
    return SpreadsheetError(f"{name}: not a readable XLSX file ({why})")


def _last_row(sheet: Any, name: str, max_rows: int, max_columns: int) -> int:
    """The number of the sheet's last row holding a value (0: none), after one pass over
    its XML that keeps nothing, so that openpyxl, which builds what it reads, only reads
    a sheet within the limits."""
    shape = _SheetShape(name, max_rows, max_columns)
    # expat itself (through xml.sax it takes three times as long, for a big sheet), refusing
    # entity declarations as defusedxml does for openpyxl: an XML bomb stops at its first.
    parser = expat.ParserCreate(namespace_separator="}")
    parser.buffer_text = True
    parser.EntityDeclHandler = _no_entities
    parser.StartElementHandler = shape.start
    parser.EndElementHandler = shape.end
    parser.CharacterDataHandler = shape.text
    # The sheet's part of the file, as openpyxl opens it (there is no public way).
    with sheet._get_source() as source, contextlib.suppress(_SheetEnd):
        parser.ParseFile(source)
    return shape.last


def _no_entities(name: str, *_: object) -> None:
    raise EntitiesForbidden(name, None, None, None, None, None)


class _SheetEnd(Exception):
    """The rows are over; what follows them is never read."""


class _SheetShape:
    """Counts a worksheet's rows, cells and characters as its XML streams by, raising
    SpreadsheetError past a limit. Positions are found as openpyxl finds them: from `r`
    attributes, or counting on from the previous row or cell. The counts are checked once a
    cell: a big sheet streams by in seconds, and only after this pass does openpyxl read."""

    def __init__(self, name: str, max_rows: int, max_columns: int) -> None:
        """Limits as read_rows takes them; `name` is the file's, for the messages."""
        from openpyxl.utils.cell import column_index_from_string

        self._column_index = column_index_from_string
        self.name, self.max_rows, self.max_columns = name, max_rows, max_columns
        # Elements in <sheetData> (<row>, <c>, <v>, <is>, <t>...) for rows x columns cells.
        self.budget = 4 * max_rows * max_columns
        self.elements = self.table = self.row_start = 0  # counts when the table, a row began
        self.rows = self.row = self.column = self.last = self.length = 0
        self.inner = -1  # elements open inside the cell being read; -1: not in a cell
        self.valued = False

    def start(self, name: str, attrs: dict[str, str]) -> None:
        """An element opens: count it, and place rows and cells."""
        self.elements += 1
        if self.inner >= 0:  # <v>, <is> or <f>: the cell holds something
            self.inner += 1
            self.valued = True
            return
        tag = name.rpartition("}")[2]
        if not self.table:
            if self.elements > _HEAD_XML:
                raise _too_big(self.name, self.max_rows, self.max_columns)
            if tag == "sheetData":
                self.table = self.elements
        elif tag == "c":
            reference = attrs.get("r")
            if reference:  # "AB12": its column; the row is the <row>'s, as openpyxl has it
                letters = reference.rstrip("0123456789").replace("$", "")
                self.column = self._column_index(letters)
            else:
                self.column += 1
            self.inner, self.valued, self.length = 0, False, 0
        elif tag == "row":
            self._check()
            self.rows += 1
            self.row = _row_number(attrs.get("r"), self.row + 1)
            self.column, self.row_start = 0, self.elements

    def end(self, name: str) -> None:
        """An element closes: a cell with a value must be within the limits."""
        if self.inner > 0:
            self.inner -= 1
        elif self.inner == 0:  # the cell's own end
            self.inner = -1
            self._check()
            if self.valued:
                if self.column > self.max_columns:
                    raise _too_many_columns(self.name, self.max_columns)
                # Counted too: rows numbered alike (by hand) would each be read by openpyxl.
                if self.row > self.max_rows or self.rows > self.max_rows:
                    raise _too_many_rows(self.name, self.max_rows)
                if self.row > self.last:
                    self.last = self.row
        elif self.table and name.rpartition("}")[2] == "sheetData":
            self._check()
            raise _SheetEnd

    def text(self, content: str) -> None:
        """Text, in pieces: counted, never kept."""
        if self.inner >= 0:
            self.length += len(content)
            if self.length > MAX_CELL:
                raise _too_long(self.name, self.row)

    def _check(self) -> None:
        if self.elements - self.table > self.budget:
            raise _too_big(self.name, self.max_rows, self.max_columns)
        if self.elements - self.row_start > _ROW_XML:  # openpyxl reads a row's XML whole
            raise _too_many_columns(self.name, self.max_columns)


def _row_number(text: str | None, following: int) -> int:
    # As openpyxl reads it: "7", or "7.0" from some programs.
    if text is None:
        return following
    with contextlib.suppress(ValueError):
        number = float(text)
        if number.is_integer():
            return int(number)
    raise ValueError(f"{text!r} is not a row number")


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
