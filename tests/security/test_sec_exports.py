"""Spreadsheet formula injection through exported text: leading TAB/CR/whitespace before = + - @ must not
let a cell run as a formula, in CSV or XLSX; non-finite numbers become empty cells."""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from decimal import Decimal

from openpyxl import load_workbook

from hub.exports import csv_bytes, xlsx_bytes
from tests.factories import make_tenant
from tracking.models import AttributionMethod, Call, CallStatus, Channel

PAYLOADS = [
    '\t=HYPERLINK("http://evil.example","x")',
    "\r=1+1",
    "\r\n=1+1",
    " =cmd|' /C calc'!A0",
    "\u3000@SUM(A1:A9)",
    "\x0b-2+3",
    "\t+1",
    "\uff1d1+1",
]


def _is_formula_like(cell: str) -> bool:
    if cell[:1] == "+" and cell[1:].isdigit():
        return False  # a phone number
    text = cell.lstrip()
    while text and ord(text[0]) < 0x20:
        text = text[1:].lstrip()
    return text[:1] in "=+-@\uff1d" or cell[:1] in "\t\r"


def test_exported_text_never_starts_a_formula(client, db) -> None:
    t = make_tenant(db)
    channel = Channel(client_id=t.client.id, name=PAYLOADS[3])
    db.add(channel)
    db.flush()
    db.add(
        Call(
            client_id=t.client.id,
            provider="generic",
            provider_call_id="x1",
            caller="+79001234567",
            called_number="+74951110000",
            called_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
            status=CallStatus.ANSWERED,
            attribution_method=AttributionMethod.MANUAL,
            channel_id=channel.id,
            tags=PAYLOADS[4:],
            notes=PAYLOADS[0],
            recording_url=PAYLOADS[1],
        )
    )
    db.commit()
    auth = {"Authorization": f"Bearer {t.token}"}
    resp = client.get(f"/api/v1/clients/{t.client.id}/calls.csv", headers=auth)
    assert resp.status_code == 200
    rows = list(csv.reader(io.StringIO(resp.get_data().decode("utf-8-sig"))))
    cells = [c for c in rows[1] if c]
    assert any("HYPERLINK" in c for c in cells)
    assert [c for c in cells if _is_formula_like(c) and not c.startswith("'")] == []

    book = client.get(f"/api/v1/clients/{t.client.id}/calls.xlsx", headers=auth)
    ws = load_workbook(io.BytesIO(book.get_data())).active
    for cell in list(ws.iter_rows())[1]:
        assert cell.data_type != "f", cell.value
        if isinstance(cell.value, str):
            assert not _is_formula_like(cell.value) or cell.value.startswith("'"), repr(cell.value)


def test_each_payload_is_neutralised_and_numbers_stay_finite() -> None:
    rows = [[p, Decimal("NaN"), float("inf"), Decimal("12.50")] for p in PAYLOADS]
    out = list(csv.reader(io.StringIO(csv_bytes(["text", "a", "b", "c"], rows).decode("utf-8-sig"))))[1:]
    assert len(out) == len(PAYLOADS) and all(r[0].startswith("'") for r in out)
    assert all(r[1:] == ["", "", "12.50"] for r in out)
    ws = load_workbook(io.BytesIO(xlsx_bytes(["text", "a", "b", "c"], rows))).active
    for row in list(ws.iter_rows(values_only=True))[1:]:
        assert row[0].startswith("'") and row[1] is None and row[2] is None
        assert not math.isnan(row[3])
