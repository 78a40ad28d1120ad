"""Nonsense from a telephony webhook (NUL characters, absurd numbers and times, oversized chunked bodies)
answers 4xx and stores nothing; never a 500, never a row that breaks reports."""

from __future__ import annotations

import io
import json
import time
from urllib.parse import urlencode

import pytest
from sqlalchemy.orm import Session

from tests import factories as h
from tests.factories import make_tenant
from tests.test_webhooks import _counts, _generic, _zd
from tracking.telephony import generic

NOW = int(time.time())
START = {"event": "start", "call_id": "pbx-1", "caller": "+79001234567", "called": "+74951110000", "at": NOW}

FORGED_BODIES = [
    {**START, "call_id": "pbx\x00-1"},
    {**START, "event": "answer", "forwarded_to": "10\x001"},
    {**START, "event": "recording", "recording_url": "https://pbx.example/\x00.mp3"},
    {**START, "at": 1e20},
    {**START, "at": -1},
    {**START, "at": "9999999999999999999999999999"},
    {**START, "at": "10000-01-01T00:00:00Z"},
    {**START, "at": NOW - 40 * 86400},  # weeks ago: not a delivery delay
    {**START, "at": NOW + 3 * 86400},  # days ahead: not a time zone
    {**START, "event": "end", "status": "answered", "talk_seconds": 1e12},
    {**START, "event": "end", "status": "answered", "talk_seconds": -3},
    {**START, "event": "end", "status": "answered", "talk_seconds": 90000},
    {**START, "started_at": 1e20},
    {**START, "caller": 79001234567},
]


@pytest.fixture
def integ(db: Session):
    return h.make_integration(db, make_tenant(db), "generic", {"secret": "gen-secret"})


@pytest.mark.parametrize("body", FORGED_BODIES, ids=range(len(FORGED_BODIES)))
def test_generic_nonsense_is_4xx(client, db: Session, integ, body) -> None:
    resp = _generic(client, integ.integration_key, body)
    if body.get("caller") == 79001234567:
        assert resp.status_code == 200  # a number sent as a JSON number is still a caller
        return
    assert 400 <= resp.status_code < 500, resp.get_data(as_text=True)
    assert _counts(db) == (0, 0)


def test_nan_and_infinite_json_numbers(client, db: Session, integ) -> None:
    for raw in (
        '{"event":"start","call_id":"x","called":"+74951110000","at":NaN}',
        '{"event":"start","call_id":"x","called":"+74951110000","at":Infinity}',
    ):
        assert _generic(client, integ.integration_key, raw.encode()).status_code == 400
    assert _counts(db) == (0, 0)


@pytest.mark.parametrize("stamp", ["1" * 30, "١٧٦٤٥٠٠٠٠٠", "²", "-5", "1e9", " "])
def test_odd_timestamp_header_is_refused(client, db: Session, integ, stamp) -> None:
    body = json.dumps(START).encode()
    headers = {
        "X-Otkuda-Timestamp": stamp,
        "X-Otkuda-Signature": generic.sign("gen-secret", stamp, body),
        "Content-Type": "application/json",
    }
    resp = client.post(f"/hooks/v1/generic/{integ.integration_key}", data=body, headers=headers)
    assert resp.status_code == 403
    assert _counts(db) == (0, 0)


def _chunked(client, path: str, body: bytes, headers: dict[str, str]):
    # What a WSGI server hands over for "Transfer-Encoding: chunked": no Content-Length, a terminated stream.
    return client.post(
        path,
        input_stream=io.BytesIO(body),
        headers={**headers, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )


def test_chunked_bodies_obey_the_size_limit(client, db: Session, integ) -> None:
    t = make_tenant(db, "Zed")
    zd = h.make_integration(db, t, "zadarma", {"api_secret": "zd-secret"})
    big = {**START, "pad": "x" * 100_000}
    body = json.dumps(big).encode()
    stamp = str(int(time.time()))
    gen_headers = {
        "X-Otkuda-Timestamp": stamp,
        "X-Otkuda-Signature": generic.sign("gen-secret", stamp, body),
        "Content-Type": "application/json",
    }
    resp = _chunked(client, f"/hooks/v1/generic/{integ.integration_key}", body, gen_headers)
    assert resp.status_code == 413 and resp.get_json()["error"] == "payload_too_large"

    fields = {
        "event": "NOTIFY_START",
        "pbx_call_id": "in_1",
        "caller_id": "79001234567",
        "called_did": "74951110000",
        "call_start": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "pad": "x" * 100_000,
    }
    resp = _chunked(
        client, f"/hooks/v1/zadarma/{zd.integration_key}", urlencode(fields).encode(), _zd(fields)
    )
    assert resp.status_code == 413
    amo = _chunked(
        client,
        "/hooks/v1/amocrm/1/" + "0" * 40,
        urlencode({"leads[status][0][id]": "1", "pad": "x" * 400_000}).encode(),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert amo.status_code == 413
    assert _counts(db) == (0, 0)
    # The same request within the limit is stored.
    small = json.dumps(START).encode()
    gen_headers["X-Otkuda-Signature"] = generic.sign("gen-secret", stamp, small)
    assert (
        _chunked(client, f"/hooks/v1/generic/{integ.integration_key}", small, gen_headers).status_code == 200
    )
    assert _counts(db) == (1, 1)
