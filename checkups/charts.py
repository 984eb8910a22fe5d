"""Trend charts drawn on the server as SVG: no CDN, no script, nothing for CSP to refuse."""

from __future__ import annotations

import datetime as dt

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT, PAD = 320, 120, 28
LABEL_GAP = 46  # px between two date labels: closer ones would overlap
VALUE_GAP = 24, 14  # px apart (across, up) two value labels must be not to touch (10 px text, a halo)
# Value labels sit on a white halo: the line or a neighbouring point passing under one never hides its digits.
HALO = 'paint-order="stroke" stroke="#fff" stroke-width="3" stroke-linejoin="round"'


def trend_svg(points: list[tuple[dt.date, float]], *, title: str, unit: str = "") -> SafeString:
    """A line chart of (exam date, value) points in time order, with the values written at each point.
    Points stand as far apart as their dates: four years between two checkups look like four years."""
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
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(title)}" class="trend">',
        f"<title>{escape(title)}</title>",
        '<polyline fill="none" stroke="#0b6e4f" stroke-width="2" points="'
        + " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        + '"/>',
    ]
    # Labels from the newest point back, so the newest date and value are always written; a label that
    # would overlap the one written after it is left out (each point keeps its date and value as a tooltip).
    dated, valued = WIDTH + LABEL_GAP, (WIDTH + VALUE_GAP[0], 0.0)
    for (day, value), (x, y) in reversed(list(zip(points, coords, strict=True))):
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#0b6e4f"><title>{day:%Y-%m-%d}: {value:g}</title></circle>'
        )
        if valued[0] - x >= VALUE_GAP[0] or abs(valued[1] - y) >= VALUE_GAP[1]:
            top = max(y - 6, 10)  # above its point, never cut off at the top edge
            parts.append(f'<text x="{x:.1f}" y="{top:.1f}" font-size="10" text-anchor="middle" {HALO}>{value:g}</text>')
            valued = (x, y)
        if dated - x >= LABEL_GAP:
            label = f"{day.year}/{day.month}/{day.day}"
            parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 8}" font-size="10" text-anchor="middle">{label}</text>')
            dated = x
    if unit:
        parts.append(f'<text x="4" y="12" font-size="10">{escape(unit)}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  (every text part above is escaped or a number or a date)
