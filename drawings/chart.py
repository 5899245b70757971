"""The `/stats` chart: signatures per day, the total toward the goal, the top countries.

Drawn with Pillow alone: matplotlib cannot shape Khmer (its vowels and subscript consonants
need complex text layout), and importing it would cost more than drawing this picture.
Pillow shapes text through libraqm; Khmer labels need it and a font with Khmer glyphs
(Noto Sans Khmer, OFL, in `assets/fonts/`). Without either, the chart is labelled in
English (`khmer_ready`), and that is logged once.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path

from babel.dates import format_date
from PIL import Image, ImageDraw, ImageFont, features

from words.text import format_number, format_percent_of, khmer_digits

logger = logging.getLogger(__name__)

WIDTH, HEIGHT = 1200, 900
FONT_FILE = (
    Path(__file__).resolve().parent.parent / "assets" / "fonts" / "NotoSansKhmer-Variable.ttf"
)
MIN_DAYS, MAX_DAYS = 14, 120  # days on the axis: a fresh campaign still gets a readable axis
TOP_COUNTRIES = 5

# Cambodia's flag blue and red, on white, with quiet greys for the frame.
BLUE, RED = (3, 46, 161), (224, 0, 37)
LIGHT_BLUE, PALE_BLUE = (120, 146, 222), (226, 232, 250)
INK, GREY, GRID, BACKGROUND = (33, 37, 41), (108, 117, 125), (222, 226, 230), (255, 255, 255)
GOLD = (196, 140, 0)

FontType = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True, slots=True)
class ChartText:
    """The words on the chart, already in the chart's language."""

    title: str
    per_day: str
    total: str
    goal: str  # with {goal}
    progress: str  # with {total}, {goal}, {percent}
    countries: str
    empty: str
    updated: str  # with {day}


@dataclass(frozen=True, slots=True)
class ChartData:
    """What the chart shows: counted signatures per UTC day, the goal, the top countries
    (names in the chart's language)."""

    per_day: Sequence[tuple[date, int]]
    goal: int
    total: int
    countries: Sequence[tuple[str, int]]
    today: date


@cache
def _raqm() -> bool:
    return bool(features.check_feature("raqm"))


@cache
def khmer_ready() -> bool:
    """Whether Khmer can be drawn correctly: libraqm for shaping and a Khmer font.

    Logged once when not, since the chart then falls back to English.
    """
    if not _raqm():
        logger.warning("libraqm is missing (Pillow without raqm/fribidi): charts in English")
        return False
    if not FONT_FILE.exists():
        logger.warning("no Khmer font at %s: charts in English", FONT_FILE)
        return False
    return True


@cache
def font(size: int, *, bold: bool = False) -> FontType:
    """The chart's font at a size (Noto Sans Khmer also covers Latin), shaped by raqm when
    available; Pillow's own font if the file is missing."""
    if not FONT_FILE.exists():
        return ImageFont.load_default(size)
    engine = ImageFont.Layout.RAQM if _raqm() else ImageFont.Layout.BASIC
    loaded = ImageFont.truetype(str(FONT_FILE), size, layout_engine=engine)
    loaded.set_variation_by_name("Bold" if bold else "Regular")
    return loaded


def _long_day(day: date, language: str) -> str:
    shown = format_date(day, format="d MMMM y", locale=language)
    return khmer_digits(shown) if language == "km" else shown


def _short_day(day: date, language: str) -> str:
    shown = format_date(day, format="d MMM", locale=language)
    return khmer_digits(shown) if language == "km" else shown


def _nice_top(value: int, steps: int = 4) -> tuple[int, int]:
    """An axis top at or above `value` and its step: 1, 2 or 5 times a power of ten."""
    if value <= 0:
        return steps, 1
    raw = value / steps
    power = 10 ** max(len(str(int(raw))) - 1, 0)
    for factor in (1, 2, 5, 10):
        step = max(factor * power, 1)
        if step >= raw:
            return step * steps, step
    return value, max(value // steps, 1)  # not reached


def _days_shown(data: ChartData) -> tuple[list[date], list[int], int]:
    """The days on the axis, the signatures of each, and how many came before the first."""
    last = data.today
    first = data.per_day[0][0] if data.per_day else last
    first = min(first, last - timedelta(days=MIN_DAYS - 1))
    first = max(first, last - timedelta(days=MAX_DAYS - 1))
    counts = dict(data.per_day)
    before = sum(count for day, count in data.per_day if day < first)
    days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    return days, [counts.get(day, 0) for day in days], before


def render(data: ChartData, words: ChartText, *, language: str) -> bytes:
    """The chart as PNG bytes, 1200×900, labelled in `language` ("km" needs `khmer_ready`)."""
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    left, right = 60, WIDTH - 60

    # Heading: title, progress bar toward the goal, date of the figures.
    draw.text((left, 64), words.title, font=font(44, bold=True), fill=BLUE, anchor="ls")
    updated = words.updated.format(day=_long_day(data.today, language))
    draw.text((right, 64), updated, font=font(24), fill=GREY, anchor="rs")
    percent = format_percent_of(data.total, data.goal, language)
    progress = words.progress.format(
        total=format_number(data.total, language),
        goal=format_number(data.goal, language),
        percent=percent,
    )
    draw.text((left, 114), progress, font=font(30, bold=True), fill=INK, anchor="ls")
    bar_top, bar_bottom = 132, 154
    draw.rounded_rectangle((left, bar_top, right, bar_bottom), radius=11, fill=PALE_BLUE)
    done = min(data.total / data.goal, 1.0) if data.goal > 0 else 1.0
    if done > 0:
        end = left + max(int((right - left) * done), 22)
        draw.rounded_rectangle((left, bar_top, end, bar_bottom), radius=11, fill=RED)

    _draw_days(draw, data, words, language, box=(110, 246, WIDTH - 140, 566))
    _draw_countries(draw, data, words, language, top=650)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def _draw_days(
    draw: ImageDraw.ImageDraw,
    data: ChartData,
    words: ChartText,
    language: str,
    *,
    box: tuple[int, int, int, int],
) -> None:
    """Bars of signatures per day (left axis) and the running total with the goal (right)."""
    x0, y0, x1, y1 = box
    days, counts, before = _days_shown(data)
    small, label = font(20), font(22)

    # Legend above the plot.
    legend_y = y0 - 34
    draw.rectangle((x0, legend_y - 9, x0 + 22, legend_y + 9), fill=LIGHT_BLUE)
    draw.text((x0 + 32, legend_y), words.per_day, font=label, fill=INK, anchor="lm")
    start = x0 + 52 + int(draw.textlength(words.per_day, font=label))
    draw.line((start, legend_y, start + 28, legend_y), fill=RED, width=5)
    draw.text((start + 38, legend_y), words.total, font=label, fill=INK, anchor="lm")

    day_top, day_step = _nice_top(max(counts, default=0))
    running = before + sum(counts)
    total_top, total_step = _nice_top(int(max(data.goal, running) * 1.05))
    height = y1 - y0

    def y_day(value: float) -> float:
        return y1 - height * value / day_top

    def y_total(value: float) -> float:
        return y1 - height * value / total_top

    # Grid and the two axes' labels: per day on the left (blue), total on the right (red).
    for tick in range(5):
        y = y1 - height * tick / 4
        draw.line((x0, y, x1, y), fill=GRID, width=1)
        per_day_label = format_number(day_step * tick, language)
        draw.text((x0 - 10, y), per_day_label, font=small, fill=BLUE, anchor="rm")
        total_label = format_number(total_step * tick, language)
        draw.text((x1 + 10, y), total_label, font=small, fill=RED, anchor="lm")

    slot = (x1 - x0) / len(days)
    gap = 1 if slot < 6 else max(int(slot * 0.2), 2)
    for index, count in enumerate(counts):
        if count:
            left = x0 + index * slot
            draw.rectangle(
                (left + gap / 2, y_day(count), left + slot - gap / 2, y1), fill=LIGHT_BLUE
            )

    # The goal line, dashed, with its label.
    goal_y = y_total(data.goal)
    for dash in range(x0, x1, 18):
        draw.line((dash, goal_y, min(dash + 10, x1), goal_y), fill=GOLD, width=3)
    goal_text = words.goal.format(goal=format_number(data.goal, language))
    _label_on_white(draw, (x0 + 8, goal_y - 8), goal_text, label, anchor="ld", fill=GOLD)

    # The running total toward the goal.
    points = []
    total = before
    for index, count in enumerate(counts):
        total += count
        points.append((x0 + (index + 0.5) * slot, y_total(total)))
    if len(points) == 1:
        points.append(points[0])
    draw.line(points, fill=RED, width=5, joint="curve")
    last_x, last_y = points[-1]
    draw.ellipse((last_x - 7, last_y - 7, last_x + 7, last_y + 7), fill=RED)

    draw.line((x0, y1, x1, y1), fill=GREY, width=2)
    # Dates under the axis: about six, evenly spaced back from today's.
    every = -(-len(days) // 6)
    for index in range(len(days) - 1, -1, -every):
        x = x0 + (index + 0.5) * slot
        draw.line((x, y1, x, y1 + 6), fill=GREY, width=2)
        shown = _short_day(days[index], language)
        draw.text((x, y1 + 12), shown, font=small, fill=GREY, anchor="mt")
    if running == 0:
        _label_on_white(draw, ((x0 + x1) / 2, (y0 + y1) / 2), words.empty, font(30), anchor="mm")


def _label_on_white(
    draw: ImageDraw.ImageDraw,
    at: tuple[float, float],
    text: str,
    chosen: FontType,
    *,
    anchor: str,
    fill: tuple[int, int, int] = GREY,
) -> None:
    """Text on a white patch, readable over grid and lines."""
    box = draw.textbbox(at, text, font=chosen, anchor=anchor)
    draw.rectangle((box[0] - 8, box[1] - 5, box[2] + 8, box[3] + 5), fill=BACKGROUND)
    draw.text(at, text, font=chosen, fill=fill, anchor=anchor)


def _draw_countries(
    draw: ImageDraw.ImageDraw, data: ChartData, words: ChartText, language: str, *, top: int
) -> None:
    """Horizontal bars for the countries with the most signatures."""
    left, right = 60, WIDTH - 60
    draw.text((left, top), words.countries, font=font(30, bold=True), fill=BLUE, anchor="ls")
    countries = list(data.countries[:TOP_COUNTRIES])
    if not countries:
        draw.text((left, top + 60), words.empty, font=font(24), fill=GREY, anchor="ls")
        return
    name_font, count_font = font(24), font(24, bold=True)
    label_width = max(int(draw.textlength(name, font=name_font)) for name, _ in countries)
    bar_left = left + min(label_width, 380) + 20
    bar_right = right - 200
    largest = max(count for _, count in countries) or 1
    row = 44
    for index, (name, count) in enumerate(countries):
        middle = top + 40 + index * row
        draw.text(
            (bar_left - 14, middle),
            _fit(draw, name, name_font, 380),
            font=name_font,
            fill=INK,
            anchor="rm",
        )
        end = bar_left + max(int((bar_right - bar_left) * count / largest), 4)
        colour = BLUE if index == 0 else LIGHT_BLUE
        draw.rounded_rectangle((bar_left, middle - 14, end, middle + 14), radius=6, fill=colour)
        shown = (
            f"{format_number(count, language)} ({format_percent_of(count, data.total, language)})"
        )
        draw.text((end + 12, middle), shown, font=count_font, fill=INK, anchor="lm")


def _fit(draw: ImageDraw.ImageDraw, text: str, chosen: FontType, width: int) -> str:
    """The text, cut with "…" if it is wider than `width` pixels."""
    if draw.textlength(text, font=chosen) <= width:
        return text
    while text and draw.textlength(text + "…", font=chosen) > width:
        text = text[:-1]
    return text + "…"
