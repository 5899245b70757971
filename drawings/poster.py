"""QR posters: a share link as a QR code sized for an A4 page, as PNG and SVG.

The PNG is 2,480 pixels wide: an A4 page's width at 300 dpi (and it says 300 dpi, so it
prints at that width). The code takes as much of it as its quiet zone allows, about 17 cm,
so each module is 4-5 mm: phones read that from two metres and more. The error correction
is at least level Q (a quarter of the code can be lost to a fold, a stain or tape), raised
to H whenever that fits in the same size. The link is written under the code, and the
share code's name over it as a title.

Pillow shapes text through libraqm; the name is drawn with DejaVu Sans, or with a font in
`assets/fonts/` for the scripts DejaVu lacks (Khmer: Noto Sans Khmer). When no font covers
the name, the image has only the link (`Poster.titled` is False) and the caller says the name
in the message; the SVG always carries it (the viewer's fonts draw it).
"""

from __future__ import annotations

import contextlib
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFont, features

from words.text import normalise

if TYPE_CHECKING:
    import segno

ROOT = Path(__file__).resolve().parent.parent
FONT_DIR = ROOT / "assets" / "fonts"
DPI = 300
PAGE_WIDTH = 2480  # A4's 210 mm at 300 dpi
MAX_SYMBOL = 2067  # 17.5 cm at 300 dpi: the code itself, without its quiet zone
QUIET = 4  # modules of white around the code, as the QR standard asks
MARGIN = 120  # pixels of white at the top and bottom of the page
TITLE_SIZES = (120, 110, 100, 90, 80, 72, 64, 56, 48, 40)  # pixels; 120 px is about 10 mm
LINK_SIZES = (84, 76, 68, 60, 54, 48, 42, 36)
TITLE_LINES = 2
_SVG_FONTS = "DejaVu Sans, Noto Sans Khmer, Khmer OS, Khmer UI, Leelawadee UI, sans-serif"


@dataclass(frozen=True, slots=True)
class Poster:
    """A QR poster in both formats."""

    png: bytes
    svg: bytes
    titled: bool  # the PNG shows the title (False: no font here draws it)
    version: str  # the QR symbol's version and error level, e.g. "5-Q"


@lru_cache(maxsize=32)  # a volunteer asks for the same poster again: no second render
def make_poster(link: str, title: str | None = None) -> Poster:
    """The QR code of `link` on an A4-wide page, the link under it and `title` over it."""
    import segno  # here, not at the top: only admins make posters

    symbol = segno.make(link, error="q", boost_error=True, micro=False)
    modules = int(symbol.symbol_size(border=0)[0])
    scale = min(PAGE_WIDTH // (modules + 2 * QUIET), MAX_SYMBOL // modules)
    side = modules * scale
    title = "".join(char for char in normalise(title) if char.isprintable()) if title else None
    heading = _layout(title, _title_fonts(), TITLE_SIZES, TITLE_LINES) if title else None
    link_layout = _layout(link, [_dejavu(bold=False)], LINK_SIZES, 1)
    assert link_layout is not None  # DejaVu has every character a link can hold
    # The quiet zone (QUIET modules) separates the code from the text above and below it.
    top = MARGIN + (heading.height + QUIET * scale if heading else QUIET * scale)
    link_top = top + side + QUIET * scale
    height = link_top + link_layout.height + MARGIN
    png = _png(symbol, scale, top, side, heading, link_layout, link_top, height)
    svg = _svg(symbol, scale, top, side, title, heading, link, link_layout, link_top, height)
    return Poster(png=png, svg=svg, titled=heading is not None, version=symbol.designator)


# ---------------------------------------------------------------- fonts and text layout


@dataclass(frozen=True, slots=True)
class _Font:
    path: Path
    bold: bool = False  # for a variable font: use its bold weight

    def load(self, size: int) -> ImageFont.FreeTypeFont:
        return _load_font(self.path, size, self.bold)

    def covers(self, char: str) -> bool:
        return ord(char) in _characters(self.path) or not char.isprintable()


@dataclass(frozen=True, slots=True)
class _Layout:
    lines: list[list[tuple[str, _Font]]]  # each line: runs of text in one font
    size: int
    widths: list[float]

    @property
    def line_height(self) -> int:
        return round(self.size * 1.35)  # room for Khmer's stacked vowels and subscripts

    @property
    def height(self) -> int:
        return self.line_height * len(self.lines)


@cache
def _load_font(path: Path, size: int, bold: bool) -> ImageFont.FreeTypeFont:
    engine = ImageFont.Layout.RAQM if features.check("raqm") else ImageFont.Layout.BASIC
    font = ImageFont.truetype(str(path), size, layout_engine=engine)
    if bold:
        with contextlib.suppress(OSError, ValueError):  # a variable font: its bold weight
            font.set_variation_by_name("Bold")
    return font


@cache
def _characters(path: Path) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    with TTFont(str(path), lazy=True) as font:
        return frozenset(font["cmap"].getBestCmap())


DEJAVU = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf")  # Latin text (assets/fonts/README.md)


def _dejavu(*, bold: bool) -> _Font:
    return _Font(FONT_DIR / DEJAVU[1 if bold else 0])


def _title_fonts() -> list[_Font]:
    # DejaVu first (it has every Latin letter); then the others in assets/fonts (Khmer).
    extra = sorted(
        path
        for path in FONT_DIR.glob("*")
        if path.suffix.lower() in {".ttf", ".otf"} and path.name not in DEJAVU
    )
    return [_dejavu(bold=True), *(_Font(path, bold=True) for path in extra)]


def _runs(text: str, fonts: Sequence[_Font]) -> list[tuple[str, _Font]] | None:
    """The text in runs of one font each: one font for all when one covers it (it looks
    even), else each character in the first font that has it. None if some font lacks one."""
    for font in fonts:
        if all(font.covers(char) for char in text):
            return [(text, font)]
    runs: list[tuple[str, _Font]] = []
    for char in text:
        if runs and runs[-1][1].covers(char):
            runs[-1] = (runs[-1][0] + char, runs[-1][1])
            continue
        first = next((font for font in fonts if font.covers(char)), None)
        if first is None:
            return None
        runs.append((char, first))
    return runs


def _width(runs: list[tuple[str, _Font]], size: int) -> float:
    return sum(font.load(size).getlength(text) for text, font in runs)


def _layout(
    text: str, fonts: Sequence[_Font], sizes: Sequence[int], max_lines: int
) -> _Layout | None:
    """The largest size at which `text` fits the page's width in one line, or in up to
    `max_lines` lines of even length broken at spaces; None when a character has no font."""
    if _runs(text, fonts) is None:
        return None
    room = PAGE_WIDTH - 2 * MARGIN
    words = text.split(" ")
    # One line, or two halves at each space: the most even split first.
    splits = [[text]]
    if max_lines > 1:
        splits += [[" ".join(words[:cut]), " ".join(words[cut:])] for cut in range(1, len(words))]
    best: _Layout | None = None
    for size in sizes:
        best = None
        for lines in splits:
            laid = [_runs(line, fonts) or [] for line in lines]
            widths = [_width(runs, size) for runs in laid]
            if best is None or max(widths) < max(best.widths):
                best = _Layout(lines=laid, size=size, widths=widths)
            if max(best.widths) <= room and len(best.lines) == 1:
                break  # one line is better than two
        if best is not None and max(best.widths) <= room:
            return best
    # Wider than the page even at the smallest size (not for a name of 100 characters or a
    # link): the most even split at that size.
    return best


# ---------------------------------------------------------------- PNG


def _png(
    symbol: segno.QRCode,
    scale: int,
    top: int,
    side: int,
    heading: _Layout | None,
    link: _Layout,
    link_top: int,
    height: int,
) -> bytes:
    page = Image.new("L", (PAGE_WIDTH, height), 255)
    drawing = ImageDraw.Draw(page)
    if heading is not None:
        _draw(drawing, heading, MARGIN)
    code = io.BytesIO()
    symbol.save(code, kind="png", scale=scale, border=0)
    code.seek(0)
    with Image.open(code) as image:
        page.paste(image.convert("L"), ((PAGE_WIDTH - side) // 2, top))
    _draw(drawing, link, link_top)
    out = io.BytesIO()
    page.save(out, format="PNG", dpi=(DPI, DPI), optimize=True)
    return out.getvalue()


def _draw(drawing: ImageDraw.ImageDraw, layout: _Layout, top: int) -> None:
    for number, (runs, width) in enumerate(zip(layout.lines, layout.widths, strict=True)):
        x = (PAGE_WIDTH - width) / 2
        baseline = top + number * layout.line_height + round(layout.size * 1.0)
        for text, font in runs:
            loaded = font.load(layout.size)
            drawing.text((x, baseline), text, font=loaded, fill=0, anchor="ls")
            x += loaded.getlength(text)


# ---------------------------------------------------------------- SVG


def _svg(
    symbol: segno.QRCode,
    scale: int,
    top: int,
    side: int,
    title: str | None,
    heading: _Layout | None,
    link: str,
    link_layout: _Layout,
    link_top: int,
    height: int,
) -> bytes:
    """The same page as the PNG, in the PNG's pixels as SVG units, 210 mm wide."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="210mm" '
        f'height="{height * 210 / PAGE_WIDTH:.1f}mm" viewBox="0 0 {PAGE_WIDTH} {height}">',
        f"<title>{html.escape(title or link)}</title>",
        '<rect width="100%" height="100%" fill="#fff"/>',
    ]
    if title:
        if heading is not None:
            lines = ["".join(text for text, _font in runs) for runs in heading.lines]
            size, line_height = heading.size, heading.line_height
        else:  # no font here to measure it: one line, sized by its length
            lines = [title]
            size = max(TITLE_SIZES[-1], min(TITLE_SIZES[0], int(2000 / max(len(title), 1))))
            line_height = round(size * 1.35)
        for number, line in enumerate(lines):
            parts.append(_svg_text(line, MARGIN + number * line_height + size, size, bold=True))
    x = (PAGE_WIDTH - side) // 2
    parts.append(f'<g transform="translate({x} {top}) scale({scale})">')
    parts.append(symbol.svg_inline(scale=1, border=0))
    parts.append("</g>")
    parts.append(_svg_text(link, link_top + link_layout.size, link_layout.size, bold=False))
    parts.append("</svg>")
    return "\n".join(parts).encode()


def _svg_text(text: str, baseline: int, size: int, *, bold: bool) -> str:
    weight = ' font-weight="bold"' if bold else ""
    return (
        f'<text x="{PAGE_WIDTH // 2}" y="{baseline}" text-anchor="middle" '
        f'font-family="{_SVG_FONTS}" font-size="{size}"{weight}>{html.escape(text)}</text>'
    )
