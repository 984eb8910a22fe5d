"""CSV for spreadsheets: cells that a spreadsheet would run as a formula are defused."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from django.http import HttpResponse

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """The cell as text; a leading = + - @ TAB or CR gets a ' so Excel shows it instead of running it."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_bytes(header: Iterable[str], rows: Iterable[Iterable[object]], *, bom: bool = True) -> bytes:
    """UTF-8 CSV (with a BOM so Excel in Japan opens it correctly), every cell defused."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return ("\ufeff" if bom else "").encode() + buffer.getvalue().encode("utf-8")


def csv_response(filename: str, header: Iterable[str], rows: Iterable[Iterable[object]]) -> HttpResponse:
    response = HttpResponse(csv_bytes(header, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
