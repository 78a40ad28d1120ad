"""Tables as downloads: a flat CSV (UTF-8, header row, ISO dates, dot decimals) or an XLSX workbook.

One writer for every export, so the ROMI table and the calls journal open the same way in a spreadsheet
or Power BI, and the guard against spreadsheet formulas lives in one place.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from flask import Response
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

FORMATS = ("csv", "xlsx")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _is_phone(value: str) -> bool:
    return value.startswith("+") and value[1:].isdigit()


# What starts a formula: = + - @ and their full-width forms, which some spreadsheet locales accept too.
_FORMULA = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")
# Spreadsheets skip or split on these before looking for a formula ("\t=cmd", "\r=cmd", " =cmd").
_SKIPPED = frozenset("\t\r\n\x0b\x0c")


def safe_text(value: str) -> str:
    """A cell a spreadsheet would read as a formula gets a leading apostrophe so it stays text.

    That is a cell starting with = + - @, also after leading whitespace or control characters, and any
    cell starting with TAB or CR (OWASP's list). Phone numbers (+79991234567) are left alone.
    """
    stripped = value.lstrip()
    while stripped and ord(stripped[0]) < 0x20:
        stripped = stripped[1:].lstrip()
    if value[:1] in _SKIPPED or (stripped[:1] in _FORMULA and not _is_phone(value)):
        return "'" + value
    return value


def _number(value: float | Decimal) -> float | Decimal | None:
    # NaN and infinities stored by an older version or sent by a provider become empty cells, not "nan".
    return value if math.isfinite(value) else None


def _csv_cell(value: Any) -> Any:
    if isinstance(value, float | Decimal):
        value = _number(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return safe_text(value)
    return value


def _xlsx_cell(value: Any) -> Any:
    if isinstance(value, float | Decimal):
        value = _number(value)
        return float(value) if value is not None else None
    if isinstance(value, dt.datetime):
        # Spreadsheets have no time zones: write UTC wall time, the column name says so.
        return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, str):
        # XLSX cannot hold most control characters (openpyxl refuses the whole file): drop them.
        return safe_text(ILLEGAL_CHARACTERS_RE.sub("", value))
    return value


def csv_bytes(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(v) for v in row])
    # A byte-order mark lets Excel read UTF-8 (Cyrillic campaign names) without an import dialog.
    return b"\xef\xbb\xbf" + out.getvalue().encode()


def xlsx_bytes(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str = "Export") -> bytes:
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title[:31])
    ws.append(list(columns))
    for row in rows:
        ws.append([_xlsx_cell(v) for v in row])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def download(
    filename: str, fmt: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str = "Export"
) -> Response:
    """``filename`` without extension; ``fmt`` is ``csv`` or ``xlsx``."""
    if fmt == "xlsx":
        resp = Response(xlsx_bytes(columns, rows, title), mimetype=XLSX)
    elif fmt == "csv":
        resp = Response(csv_bytes(columns, rows), mimetype="text/csv", content_type="text/csv; charset=utf-8")
    else:
        raise ValueError(f"unknown export format {fmt!r}")
    resp.headers["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    return resp
