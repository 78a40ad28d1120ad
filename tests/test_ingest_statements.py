"""Round trips per webhook event: a change that adds a statement to ingestion fails here.

Counted are the statements the hub sends for each signed generic-PBX request of a call's lifecycle (start,
answer, end, recording), the integration lookup included and the commit not. PostgreSQL appends the event
and reads the call's earlier ones in one statement; SQLite, in process, takes two.
"""

from __future__ import annotations

import json
import time

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tests.factories import make_channel, make_integration, make_static, make_tenant
from tracking.telephony import generic

# start: integration, create-or-lock the call, append + read events, client and number in one read,
# first-time, overflow pool, attribution history, update. answer/recording: integration, lock, append + read,
# update. end: the same plus the payload's rows (the client among them) in one read, target rules, the
# destinations to queue for.
EXPECTED = {
    "postgresql": {"start": 8, "answer": 4, "end": 7, "recording": 4},
    "sqlite": {"start": 9, "answer": 5, "end": 8, "recording": 5},
}


def _post(client, key: str, payload: dict):
    body = json.dumps(payload).encode()
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Otkuda-Timestamp": stamp,
        "X-Otkuda-Signature": generic.sign("gen-secret", stamp, body),
    }
    return client.post(f"/hooks/v1/generic/{key}", data=body, headers=headers)


def _lifecycle(call_id: str) -> list[dict]:
    return [
        {"event": "start", "call_id": call_id, "caller": "+79001234567", "called": "+74951110000",
         "at": "2026-11-30T10:00:00Z"},
        {"event": "answer", "call_id": call_id, "forwarded_to": "101", "at": "2026-11-30T10:00:06Z"},
        {"event": "end", "call_id": call_id, "status": "answered", "talk_seconds": 80,
         "at": "2026-11-30T10:01:26Z"},
        {"event": "recording", "call_id": call_id, "recording_url": f"https://pbx.test/{call_id}.mp3",
         "at": "2026-11-30T10:01:30Z"},
    ]  # fmt: skip


def test_statements_per_event(app: Flask, client, db: Session) -> None:
    t = make_tenant(db)
    ch = make_channel(db, t.site, "Radio")
    make_static(db, ch, e164="+74951110000", forward_to="+74950000001")
    integ = make_integration(db, t, "generic", {"secret": "gen-secret"})
    engine: Engine = app.extensions["otkuda.engine"]
    seen: list[str] = []

    def listener(_conn, _cursor, statement, *_rest) -> None:
        seen.append(statement)

    counts: list[dict[str, int]] = []
    event.listen(engine, "before_cursor_execute", listener)
    try:
        # The second call is a repeat caller: the first-time query finds the first, nothing else differs.
        for call_id in ("c1", "c2"):
            counts.append({})
            for payload in _lifecycle(call_id):
                seen.clear()
                assert _post(client, integ.integration_key, payload).status_code == 200
                counts[-1][payload["event"]] = len(seen)
        seen.clear()
        assert _post(client, integ.integration_key, _lifecycle("c2")[2]).status_code == 200
        redelivered = len(seen)
    finally:
        event.remove(engine, "before_cursor_execute", listener)

    expected = EXPECTED[engine.dialect.name]
    assert counts == [expected, expected]
    # A redelivered event stops once the append finds it stored: integration, lock, append.
    assert redelivered == 3
