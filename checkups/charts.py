"""Trend charts drawn on the server as SVG: no CDN, no script, nothing for CSP to refuse."""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT, PAD = 320, 120, 28


def trend_svg(points: list[tuple[str, float]], *, title: str, unit: str = "") -> SafeString:
    """A line chart of (label, value) points, with the values written at each point."""
    values = [value for _, value in points]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (WIDTH - 2 * PAD) / max(len(points) - 1, 1)
    coords = [
        (PAD + i * step, HEIGHT - PAD - (value - low) / span * (HEIGHT - 2 * PAD))
        for i, (_, value) in enumerate(points)
    ]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(title)}" class="trend">',
        f"<title>{escape(title)}</title>",
        '<polyline fill="none" stroke="#0b6e4f" stroke-width="2" points="'
        + " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        + '"/>',
    ]
    for (label, value), (x, y) in zip(points, coords, strict=True):
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#0b6e4f"/>')
        parts.append(f'<text x="{x:.1f}" y="{y - 6:.1f}" font-size="10" text-anchor="middle">{value:g}</text>')
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 8}" font-size="10" text-anchor="middle">{escape(label)}</text>')
    parts.append(f'<text x="4" y="12" font-size="10">{escape(unit)}</text></svg>')
    return mark_safe("".join(parts))  # noqa: S308  (every text part above is escaped)
