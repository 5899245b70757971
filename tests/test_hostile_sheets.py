"""Sheets made to hurt: `petitionbot import` reads any file an organiser is handed within
bounded memory, and refuses what it will not read with one line, exit code 2, nothing written.

The hostile XLSX files are zipped by hand here, as an attacker would make them: the four
parts openpyxl needs, and a worksheet whose XML says whatever it likes."""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import openpyxl
import openpyxl.xml
import pytest
from pydantic import ValidationError

from bot.app import App
from bot.config import Settings, describe_error
from drawings import spreadsheets
from drawings.spreadsheets import SpreadsheetError, read_rows
from tests import test_import as paper_import
from tests.test_import import PAPER, audit_actions, signatures

# The import tests' database (two signatures made in the chat) and their shell, reused.
app = paper_import.app
shell = paper_import.shell

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELATIONS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE = "http://schemas.openxmlformats.org/package/2006/relationships"
SML = "application/vnd.openxmlformats-officedocument.spreadsheetml"
LYING = "A1:XFD1048576"  # every row as wide as Excel allows, and as many rows
# Billion laughs: ten of each entity in the one before, a billion "lol"s from 200 bytes.
BOMB = (
    '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + '<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    + "".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(2, 10))
    + "]>"
)
PEAK_MB = 200
RUNNER = """
import json, resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=300)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KB on Linux
print(json.dumps({"code": done.returncode, "out": done.stdout, "err": done.stderr,
                  "peak_mb": peak / 1024}))
"""


def cells(number: int, *texts: str) -> str:
    """One row of inline-text cells, from column A."""
    return (
        f'<row r="{number}">'
        + "".join(
            f'<c r="{openpyxl.utils.get_column_letter(column)}{number}" t="inlineStr">'
            f"<is><t>{html.escape(text, quote=False)}</t></is></c>"
            for column, text in enumerate(texts, start=1)
            if text
        )
        + "</row>"
    )


def handmade(
    path: Path, rows: Iterable[str], *, dimension: str = LYING, head: str = "", bombed: str = ""
) -> Path:
    """A workbook of one sheet holding `rows` (XML) after `head`, claiming `dimension`;
    `bombed` names the part that starts with an XML bomb."""
    sheet = (
        f'<worksheet xmlns="{MAIN}"><dimension ref="{dimension}"/>{head}'
        f"<sheetData>{''.join(rows)}</sheetData></worksheet>"
    )
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{SML}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{SML}.worksheet+xml"/>'
            "</Types>"
        ),
        "xl/workbook.xml": (
            f'<workbook xmlns="{MAIN}" xmlns:r="{RELATIONS}"><sheets>'
            '<sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{PACKAGE}"><Relationship Id="rId1" '
            f'Type="{RELATIONS}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
        ),
        "xl/worksheets/sheet1.xml": sheet,
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, xml in parts.items():
            prolog = BOMB if name == bombed else ""
            archive.writestr(name, f'<?xml version="1.0" encoding="UTF-8"?>{prolog}{xml}')
    return path


def lying_dimension(path: Path) -> Path:
    """The measured attack: 20,000 rows of one short cell in a sheet claiming A1:XFD1048576
    (openpyxl made each row 16,384 cells wide: 2.7 GB)."""
    rows = [cells(1, "name", "country", "birthplace", "date")]
    rows += [cells(number, "x") for number in range(2, 20_002)]
    return handmade(path, rows)


def petitionbot(tmp_path: Path, *args: str) -> dict[str, Any]:
    """`petitionbot ...` in a process of its own, started by a fresh interpreter whose only
    child it is: its RUSAGE_CHILDREN peak is that process's own."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TELEGRAM_", "WEBHOOK_", "MESSENGER_", "DATABASE_", "IMPORT_"))
    }
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'petition.sqlite3'}"
    done = subprocess.run(  # noqa: S603 - our own program, fixed arguments
        [sys.executable, "-c", RUNNER, sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,  # no .env file
        timeout=360,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def sheet_from(lines: list[str], path: Path) -> Path:
    """A CSV text's rows as a workbook saved by openpyxl, as Excel would."""
    book = openpyxl.Workbook()
    for line in lines:
        book.active.append(line.split(","))
    book.save(path)
    return path


# ---------------------------------------------------------------- in a process of its own


def test_openpyxl_parses_with_defusedxml() -> None:
    assert openpyxl.xml.DEFUSEDXML


def test_a_lying_dimension_is_not_believed(tmp_path: Path) -> None:
    hostile = lying_dimension(tmp_path / "hostile.xlsx")
    assert 50_000 < hostile.stat().st_size < 200_000  # about 100 KB
    run = petitionbot(tmp_path, "import", str(hostile))
    assert run["code"] == 0, run["err"]
    lines = run["out"].splitlines()
    assert lines[0] == "hostile.xlsx: 20,000 rows read."
    assert lines[-1] == "Nothing written (a dry run)."
    assert run["peak_mb"] < PEAK_MB


def test_a_row_of_a_million_empty_cells_is_refused_before_it_is_built(tmp_path: Path) -> None:
    # A few KB; openpyxl reads a row's XML whole: 350 MB for this one, even with true limits.
    rows = [cells(1, "name", "country", "birthplace", "date"), '<row r="2">' + "<c/>" * 1_000_000]
    hostile = handmade(tmp_path / "wide.xlsx", [*rows, "</row>"], dimension="A1:D2")
    assert hostile.stat().st_size < 20_000
    run = petitionbot(tmp_path, "import", str(hostile))
    assert (run["code"], run["out"]) == (2, "")
    assert run["err"].splitlines() == [
        "wide.xlsx: the sheet has more than 50 columns; delete the ones not needed"
    ]
    assert run["peak_mb"] < PEAK_MB


@pytest.mark.parametrize("part", ["xl/worksheets/sheet1.xml", "xl/workbook.xml"])
def test_an_xml_bomb_is_one_line_and_exit_2(tmp_path: Path, part: str) -> None:
    laughs = '<row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row>'
    bomb = handmade(tmp_path / "bomb.xlsx", [laughs], bombed=part)
    run = petitionbot(tmp_path, "import", str(bomb), "--apply")
    assert "Traceback" not in run["err"]
    assert (run["code"], run["out"]) == (2, "")
    assert run["err"].splitlines() == [
        "bomb.xlsx: not a readable XLSX file (it declares XML entities, which no spreadsheet needs)"
    ]
    assert run["peak_mb"] < PEAK_MB


# ---------------------------------------------------------------- through the shell


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("IMPORT_MAX_ROWS=10", "the sheet has more than 10 rows; split it into smaller files"),
        ("IMPORT_MAX_COLUMNS=8", "the sheet has more than 8 columns; delete the ones not needed"),
    ],
)
async def test_a_sheet_over_a_limit_is_refused_and_nothing_is_written(
    app: App,
    shell: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    setting: str,
    message: str,
) -> None:
    # PAPER is a header and ten rows, the last column (Notes) filled in on the header only.
    name, value = setting.split("=")
    monkeypatch.setenv(name, value)
    path = tmp_path / f"long-beach.{kind}"
    if kind == "csv":
        path.write_text("\n".join(PAPER) + "\n", encoding="utf-8")
    else:
        sheet_from(PAPER, path)
    code, said, err = await shell("import", str(path), "--apply", "--skip-rejected")
    assert (code, said) == (2, "")
    assert err.splitlines() == [f"long-beach.{kind}: {message}"]
    assert [signature.source for signature in await signatures(app)] == ["chat", "chat"]
    assert await audit_actions(app) == []

    monkeypatch.setenv(name, str(int(value) + 1))  # at the limit: read
    code, said, _ = await shell("import", str(path))
    assert code == 0
    assert said.startswith(f"long-beach.{kind}: 9 rows read.")


async def test_a_normal_xlsx_still_imports(
    app: App, shell: Callable[..., Any], tmp_path: Path
) -> None:
    sheet = sheet_from(PAPER, tmp_path / "long-beach.xlsx")
    code, said, err = await shell("import", str(sheet), "--apply", "--skip-rejected")
    assert (code, err) == (0, "")
    assert "Added 3 signatures (source import, channel paper); 5 signatures count now." in said
    added = (await signatures(app))[2:]
    assert [(s.full_name, s.source) for s in added] == [
        ("សុខ សុភា", "import"), ("Chan Dara", "import"), ("Ros Serey", "import"),
    ]  # fmt: skip


async def test_a_handmade_xlsx_reads_as_its_csv(shell: Callable[..., Any], tmp_path: Path) -> None:
    """The hand-made workbooks above are refused for what they hold, not for their making."""
    paper = tmp_path / "long-beach.csv"
    paper.write_text("\n".join(PAPER) + "\n", encoding="utf-8")
    rows = [cells(number, *line.split(",")) for number, line in enumerate(PAPER, start=1)]
    sheet = handmade(tmp_path / "long-beach.xlsx", rows, dimension="A1:I11")
    _, from_csv, _ = await shell("import", str(paper))
    code, from_xlsx, err = await shell("import", str(sheet))
    assert (code, err) == (0, "")
    assert from_xlsx.replace(".xlsx:", ".csv:") == from_csv
    assert "3 would be added" in from_csv


# ---------------------------------------------------------------- reading, limit by limit


def test_the_limits_are_settings_of_positive_numbers() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.import_max_rows, settings.import_max_columns) == (
        spreadsheets.MAX_ROWS,
        spreadsheets.MAX_COLUMNS,
    )
    for name in ("import_max_rows", "import_max_columns"):
        with pytest.raises(ValidationError) as refused:
            Settings(_env_file=None, **{name: 0})  # type: ignore[call-arg]
        assert describe_error(refused.value).startswith(f"Configuration error: {name.upper()}:")


def test_blank_rows_and_cells_past_the_limits_do_not_count(tmp_path: Path) -> None:
    text = tmp_path / "blank.csv"
    text.write_text("a,b,,,\n1,2,,,\n\n,,\n", encoding="utf-8")
    assert list(read_rows(text, max_rows=2, max_columns=2)) == [["a", "b"], ["1", "2"]]
    # Styled cells with no value, as Excel writes them, after the last column and row.
    rows = [
        '<row r="1"><c r="A1" t="inlineStr"><is><t>a</t></is></c><c r="XFD1" s="1"/></row>',
        '<row r="2"><c r="A2"><v>7</v></c><c r="C2" s="1"/></row>',
        '<row r="1048576"><c r="A1048576" s="1"/></row>',
    ]
    sheet = handmade(tmp_path / "blank.xlsx", rows)
    assert list(read_rows(sheet, max_rows=2, max_columns=2)) == [["a"], ["7"]]


def _csv(text: str) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / "sheet.csv"
        path.write_text(text, encoding="utf-8")
        return path

    return make


def _xlsx(*rows: str, head: str = "") -> Callable[[Path], Path]:
    return lambda folder: handmade(folder / "sheet.xlsx", rows, head=head)


LONG = "x" * 10_001
TOO_BIG = "not a readable XLSX file \\(more XML than {} rows of {} columns need\\)"
SMALL = {"max_rows": 10, "max_columns": 5}
# What read_rows refuses, with the default limits unless given: a file, a message, limits.
HOSTILE: dict[str, tuple[Callable[[Path], Path], str, dict[str, int]]] = {
    "csv rows": (_csv("name\n" * 100_001), "the sheet has more than 100,000 rows", {}),
    "csv columns": (_csv(",".join("a" * 51)), "the sheet has more than 50 columns", {}),
    "csv cell": (_csv(f"name\n{LONG}\n"), "row 2 has a cell longer than 10,000 characters", {}),
    "csv commas": (_csv("," * 600_000), "row 1 is longer than 500,150 characters", {}),
    "csv field": (_csv('"' + "x" * 200_000), "row 1: field larger than field limit", {}),
    "xlsx row number": (_xlsx(cells(100_001, "Sok")), "the sheet has more than 100,000 rows", {}),
    "xlsx rows alike": (
        _xlsx(*[cells(1, "Sok")] * 100_001),
        "the sheet has more than 100,000 rows",
        {},
    ),
    "xlsx column": (
        _xlsx('<row r="1"><c r="AY1"><v>1</v></c></row>'),
        "the sheet has more than 50 columns",
        {},
    ),
    "xlsx cell": (_xlsx(cells(1, LONG)), "row 1 has a cell longer than 10,000 characters", {}),
    "xlsx head": (_xlsx(head="<x/>" * 20_001), TOO_BIG.format("100,000", 50), {}),
    "xlsx elements": (_xlsx('<row r="1">' + "<c/>" * 201 + "</row>"), TOO_BIG.format(10, 5), SMALL),
    "xlsx unzipped": (_xlsx(head=" " * 5 * 2**20), TOO_BIG.format(10, 5), SMALL),
    "xlsx broken": (
        _xlsx("<row><c>"),
        "not a readable XLSX file \\(mismatched tag: line 1, column",
        {},
    ),
    "xlsx row named": (
        _xlsx('<row r="two"/>'),
        "not a readable XLSX file \\('two' is not a row number\\)",
        {},
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_each_limit_is_one_clear_line(tmp_path: Path, case: str) -> None:
    make, message, limits = HOSTILE[case]
    with pytest.raises(SpreadsheetError, match=message) as refused:
        list(read_rows(make(tmp_path), **limits))
    assert "\n" not in str(refused.value)
    assert str(refused.value).startswith("sheet.")
