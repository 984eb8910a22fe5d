"""Trend charts drawn on the server as SVG: no CDN, no script, nothing for CSP to refuse."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import pgettext

WIDTH, HEIGHT, PAD = 320, 120, 28
FONT = 10  # px, every label
# Label extents are estimated on the wide side (a 10 px digit is 5.5–6 px wide in the usual sans fonts), so
# boxes that do not touch are labels that do not touch, whatever font the browser picks.
CHAR_WIDTH = 6.0
NARROW_CHARS = {".": 3.0, "-": 4.0, "/": 4.0, ",": 3.0}
HALO_WIDTH = 3  # the white stroke under a value label
GAP = 1.0  # px at least between two label boxes
DATE_BASELINE = HEIGHT - 8
VALUE_BOTTOM = DATE_BASELINE - FONT - GAP  # value labels stay above the row of dates
DOT = 3  # radius of a point
# Value labels sit on a white halo: the line or a neighbouring point passing under one never hides its digits.
HALO = f'paint-order="stroke" stroke="#fff" stroke-width="{HALO_WIDTH}" stroke-linejoin="round"'
# Where a value label may go around its point, in order of preference: (text-anchor, dx, baseline dy).
# Above, below, then beside it (clear of a line that rises or falls through the point).
PLACES = [
    ("middle", 0, -(DOT + 3)),
    ("middle", 0, DOT + 2 + FONT),
    ("end", -(DOT + 2), -(DOT + 1)),
    ("start", DOT + 2, -(DOT + 1)),
    ("end", -(DOT + 2), DOT + 1 + FONT),
    ("start", DOT + 2, DOT + 1 + FONT),
]


@dataclass(frozen=True)
class Box:
    left: float
    top: float
    right: float
    bottom: float

    def overlaps(self, other: Box, gap: float = GAP) -> bool:
        return (
            self.left < other.right + gap
            and other.left < self.right + gap
            and self.top < other.bottom + gap
            and other.top < self.bottom + gap
        )

    def crosses(self, a: tuple[float, float], b: tuple[float, float]) -> bool:
        """Whether the segment a–b passes through the box (Liang–Barsky clipping)."""
        (x0, y0), (x1, y1) = a, b
        dx, dy = x1 - x0, y1 - y0
        low, high = 0.0, 1.0
        for p, q in ((-dx, x0 - self.left), (dx, self.right - x0), (-dy, y0 - self.top), (dy, self.bottom - y0)):
            if p == 0:
                if q < 0:
                    return False
                continue
            t = q / p
            if p < 0:
                low = max(low, t)
            else:
                high = min(high, t)
            if low > high:
                return False
        return True


def text_width(text: str) -> float:
    return sum(NARROW_CHARS.get(char, CHAR_WIDTH) for char in text)


def label_box(x: float, baseline: float, text: str, anchor: str = "middle", *, halo: bool = False) -> Box:
    """The box a label of ``text`` drawn at (x, baseline) covers: the font's full height above the baseline
    (digits need less), the halo around it."""
    width = text_width(text)
    left = {"start": x, "middle": x - width / 2, "end": x - width}[anchor]
    pad = HALO_WIDTH / 2 if halo else 0.0
    return Box(left - pad, baseline - FONT - pad, left + width + pad, baseline + pad)


def _value_place(
    x: float, y: float, text: str, taken: list[Box], segments: list[tuple[tuple[float, float], ...]], dots: list[Box]
) -> tuple[str, float, float, Box] | None:
    """Where the value label of the point (x, y) goes: the first place (PLACES) inside the chart that touches
    no label written before and is clear of the line and the other points, else the first that touches no
    label; None when every place would touch one (the value stays in the point's tooltip)."""
    free = []
    for anchor, dx, dy in PLACES:
        box = label_box(x + dx, y + dy, text, anchor, halo=True)
        if box.left < 0 or box.right > WIDTH or box.top < 0 or box.bottom > VALUE_BOTTOM:
            continue
        if any(box.overlaps(other) for other in taken):
            continue
        placed = (anchor, x + dx, y + dy, box)
        if not any(box.crosses(a, b) for a, b in segments) and not any(box.overlaps(dot, 0) for dot in dots):
            return placed
        free.append(placed)
    return free[0] if free else None


def trend_svg(
    points: list[tuple[dt.date, float]],
    *,
    title: str,
    unit: str = "",
    spoken_unit: str = "",
    show: Callable[[float], str] | None = None,
) -> SafeString:
    """A line chart of (exam date, value) points in time order, with the values written at each point.
    Points stand as far apart as their dates: four years between two checkups look like four years.
    ``show`` writes a value as the page's table does (BMI 22.0, not 22)."""
    show = show or (lambda value: f"{value:g}")
    values = [value for _, value in points]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    first, last = points[0][0].toordinal(), points[-1][0].toordinal()
    days = (last - first) or 1
    coords = [
        (
            PAD + (day.toordinal() - first) / days * (WIDTH - 2 * PAD) if last > first else WIDTH / 2,
            HEIGHT - PAD - (value - low) / span * (HEIGHT - 2 * PAD),
        )
        for day, value in points
    ]
    # The picture's text alternative reads the series (role="img" hides the points' own titles).
    separator = pgettext("list separator", "、")
    said = f" {spoken_unit or unit}".rstrip()  # the page may write the unit beside the chart instead of in it
    series = separator.join(f"{day:%Y-%m-%d} {show(value)}{said}" for day, value in points)
    described = f"{title}{pgettext('bracket', '（')}{series}{pgettext('bracket', '）')}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(described)}" class="trend">',
        f"<title>{escape(title)}</title>",
        '<polyline fill="none" stroke="#0b6e4f" stroke-width="2" points="'
        + " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        + '"/>',
    ]
    taken: list[Box] = []  # the boxes of the labels written so far
    if unit:
        parts.append(f'<text x="4" y="12" font-size="{FONT}">{escape(unit)}</text>')
        taken.append(label_box(4, 12, unit, "start"))
    segments = list(pairwise(coords))
    dots = [Box(x - DOT, y - DOT, x + DOT, y + DOT) for x, y in coords]
    # Labels from the newest point back, so the newest date and value are always written. A value goes above
    # its point, else below or beside it, wherever it touches no other label (and, if it can, not the line);
    # a date left of the next one written by less than a date's width is left out. Each point keeps its
    # date and value as a tooltip either way.
    dated = WIDTH * 2.0
    for index in reversed(range(len(points))):
        (day, value), (x, y) = points[index], coords[index]
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{DOT}" fill="#0b6e4f">'
            f"<title>{day:%Y-%m-%d}: {show(value)}</title></circle>"
        )
        text = show(value)
        others = dots[:index] + dots[index + 1 :]
        place = _value_place(x, y, text, taken, segments, others)
        if place is not None:
            anchor, at_x, baseline, box = place
            parts.append(
                f'<text x="{at_x:.1f}" y="{baseline:.1f}" font-size="{FONT}" text-anchor="{anchor}" {HALO}>'
                f"{text}</text>"
            )
            taken.append(box)
        label = f"{day:%Y-%m-%d}"  # as every checkup page writes a date
        if dated - x >= text_width(label) + GAP:
            parts.append(
                f'<text x="{x:.1f}" y="{DATE_BASELINE}" font-size="{FONT}" text-anchor="middle">{label}</text>'
            )
            dated = x
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  (every text part above is escaped or a number or a date)
