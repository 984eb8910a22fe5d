"""Trend charts drawn on the server as SVG: no CDN, no script, nothing for CSP to refuse."""

from __future__ import annotations

import datetime as dt

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT, PAD = 320, 120, 28
LABEL_GAP = 46  # px between two date labels: closer ones would overlap (the value above each point stays)


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
    labelled = -LABEL_GAP
    for (day, value), (x, y) in zip(points, coords, strict=True):
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#0b6e4f"><title>{day:%Y-%m-%d}</title></circle>')
        parts.append(f'<text x="{x:.1f}" y="{y - 6:.1f}" font-size="10" text-anchor="middle">{value:g}</text>')
        if x - labelled >= LABEL_GAP:
            label = f"{day.year}/{day.month}/{day.day}"
            parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 8}" font-size="10" text-anchor="middle">{label}</text>')
            labelled = x
    parts.append(f'<text x="4" y="12" font-size="10">{escape(unit)}</text></svg>')
    return mark_safe("".join(parts))  # noqa: S308  (every text part above is escaped or a number or a date)
