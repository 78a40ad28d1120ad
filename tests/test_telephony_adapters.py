"""Signature checks and parsing of each provider's webhook, with the vectors from the protocol notes."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from werkzeug.datastructures import MultiDict

from tracking.telephony import generic, mango, twilio, zadarma
from tracking.telephony.base import CallOutcome, EventKind, PayloadInvalid, SignatureInvalid, to_e164

NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)


def test_twilio_signature_vector_from_protocol_notes() -> None:
    params = MultiDict(
        {
            "CallSid": "CA1234567890ABCDE",
            "Caller": "+12349013030",
            "Digits": "1234",
            "From": "+12349013030",
            "To": "+18005551212",
        }
    )
    headers = {"X-Twilio-Signature": "0/KCTR6DLpKmkAf8muzZqo1nDgQ="}
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    twilio.verify({"auth_token": "12345"}, [url], params, headers)
    # The validator also accepts the same URL with the default port written out.
    twilio.verify(
        {"auth_token": "12345"}, ["https://mycompany.com:443/myapp.php?foo=1&bar=2"], params, headers
    )
    with pytest.raises(SignatureInvalid):
        twilio.verify({"auth_token": "12346"}, [url], params, headers)
    tampered = MultiDict(params)
    tampered["To"] = "+18005551213"
    with pytest.raises(SignatureInvalid):
        twilio.verify({"auth_token": "12345"}, [url], tampered, headers)
    with pytest.raises(SignatureInvalid):
        twilio.verify({"auth_token": "12345"}, [url], params, {})


def test_twilio_signature_vector_of_the_official_library() -> None:
    # twilio/twilio-python tests/unit/test_request_validator.py: token, URI, params and expected values.
    params = MultiDict(
        {
            "CallSid": "CA1234567890ABCDE",
            "Digits": "1234",
            "From": "+14158675309",
            "To": "+18005551212",
            "Caller": "+14158675309",
        }
    )
    uri = "https://mycompany.com/myapp.php?foo=1&bar=2"
    twilio.verify(
        {"auth_token": "12345"}, [uri], params, {"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="}
    )
    # "adds port on https": the signature of the URI with :443 written out is accepted for the bare URI.
    twilio.verify(
        {"auth_token": "12345"}, [uri], params, {"X-Twilio-Signature": "kvajT1Ptam85bY51eRf/AJRuM3w="}
    )
    # "adds port on http" (port 80 written out) and "with port" (an explicit :1234 over http).
    http = uri.replace("https", "http")
    twilio.verify(
        {"auth_token": "12345"}, [http], params, {"X-Twilio-Signature": "0ZXoZLH/DfblKGATFgpif+LLRf4="}
    )
    port = uri.replace(".com", ".com:1234").replace("https", "http")
    twilio.verify(
        {"auth_token": "12345"}, [port], params, {"X-Twilio-Signature": "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="}
    )
    duplicates = MultiDict(
        [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]
    )
    twilio.verify(
        {"auth_token": "12345"}, [uri], duplicates, {"X-Twilio-Signature": "IK+Dwps556ElfBT0I3Rgjkr1wJU="}
    )
    with pytest.raises(SignatureInvalid):
        twilio.verify(
            {"auth_token": "12345"}, [uri], params, {"X-Twilio-Signature": "IK+Dwps556ElfBT0I3Rgjkr1wJU="}
        )


def test_twilio_dial_action_with_recording_keeps_status_duration_and_recording() -> None:
    # With recording on, the <Dial action> request carries the recording and the dialled leg's outcome.
    action = {
        "CallSid": "CA1",
        "CallStatus": "in-progress",
        "DialCallSid": "CA2",
        "DialCallStatus": "completed",
        "DialCallDuration": "42",
        "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1",
        "RecordingSid": "RE1",
        "RecordingDuration": "40",
    }
    event = twilio.parse_status(action, NOW)
    assert event is not None and event.kind == EventKind.ANSWER and event.talk_seconds == 42
    assert (event.recording_url, event.recording_ref) == (action["RecordingUrl"], "RE1")
    busy = twilio.parse_status({**action, "DialCallStatus": "busy", "DialCallDuration": "0"}, NOW)
    assert busy is not None and (busy.kind, busy.outcome) == (EventKind.END, CallOutcome.BUSY)
    assert busy.recording_url == action["RecordingUrl"]


def test_twilio_shared_key_signature_uses_sha256() -> None:
    from twilio.request_validator import RequestValidator

    params = {"CallSid": "CA1", "From": "+79001234567", "To": "+74951234567"}
    url = "https://hub.example/hooks/v1/twilio/k/voice"
    sig = RequestValidator("shared").compute_signature(url, params, "HMAC_SHA256")
    headers = {
        "X-Twilio-Signature": sig,
        "X-Twilio-Webhooks-Signature-Settings": "key=k1,algorithm=HMAC_SHA256",
    }
    twilio.verify({"auth_token": "other", "shared_key_secret": "shared"}, [url], params, headers)
    with pytest.raises(SignatureInvalid):
        twilio.verify({"auth_token": "shared"}, [url], params, headers)


def test_twilio_parsing_folds_child_legs_into_the_parent_call() -> None:
    start = twilio.parse_voice({"CallSid": "CA1", "From": "+79001234567", "To": "+74951234567"}, NOW)
    assert (start.kind, start.provider_call_id, start.caller, start.called) == (
        EventKind.START,
        "CA1",
        "+79001234567",
        "+74951234567",
    )
    child = twilio.parse_status(
        {"CallSid": "CA2", "ParentCallSid": "CA1", "CallStatus": "in-progress", "To": "+74950000001"}, NOW
    )
    assert child is not None and (child.kind, child.provider_call_id) == (EventKind.ANSWER, "CA1")
    assert child.forwarded_to == "+74950000001"
    assert (
        twilio.parse_status({"CallSid": "CA2", "ParentCallSid": "CA1", "CallStatus": "ringing"}, NOW) is None
    )
    done = twilio.parse_status(
        {"CallSid": "CA1", "CallStatus": "no-answer", "Timestamp": "Fri, 20 Nov 2026 12:00:30 +0000"}, NOW
    )
    assert done is not None and done.kind == EventKind.END and done.outcome == CallOutcome.MISSED
    assert done.ended_at == NOW + dt.timedelta(seconds=30) and not done.received_times
    rec = twilio.parse_status({"CallSid": "CA1", "RecordingUrl": "https://api.twilio.com/r/RE1"}, NOW)
    assert rec is not None and rec.kind == EventKind.RECORD and rec.recording_url.endswith("RE1")
    dial = twilio.parse_status({"CallSid": "CA1", "DialCallStatus": "busy"}, NOW)
    assert dial is not None and dial.outcome == CallOutcome.BUSY
    with pytest.raises(PayloadInvalid):
        twilio.parse_voice({"From": "+79001234567", "To": "+74951234567"}, NOW)
    with pytest.raises(PayloadInvalid):
        twilio.parse_status({"CallSid": "CA1", "CallStatus": "exploded"}, NOW)


def test_twilio_twiml_dials_records_and_reports_back() -> None:
    xml = twilio.dial_twiml("+74950000001", "https://hub.example/hooks/v1/twilio/k/status?a=1&b=2")
    import xml.etree.ElementTree as ET

    root = ET.fromstring(xml)
    dial = root.find("Dial")
    assert dial is not None and dial.get("record") == "record-from-answer-dual"
    assert dial.get("action") == "https://hub.example/hooks/v1/twilio/k/status?a=1&b=2"
    assert dial.get("recordingStatusCallback") == dial.get("action")
    number = dial.find("Number")
    assert number is not None and number.text == "+74950000001"
    assert "completed" in number.get("statusCallbackEvent", "")


def test_zadarma_signature_vector_from_protocol_notes() -> None:
    fields = {
        "event": "NOTIFY_START",
        "caller_id": "+79001234567",
        "called_did": "+74951234567",
        "call_start": "2024-01-01 12:00:00",
        "pbx_call_id": "in_1",
    }
    expected = "YWY3MzAxNTZkMWEyOThhYTI2YzY1NWE1MjQ2ZTdlNzU1YmU4NDYyYg=="
    assert zadarma.signature("secret", fields) == expected
    zadarma.verify("secret", fields, {"Signature": expected})
    with pytest.raises(SignatureInvalid):
        zadarma.verify("other", fields, {"Signature": expected})
    with pytest.raises(SignatureInvalid):
        zadarma.verify("secret", {**fields, "called_did": "+74951234568"}, {"Signature": expected})
    record = {"event": "NOTIFY_RECORD", "pbx_call_id": "in_1", "call_id_with_rec": "1700000000.123"}
    zadarma.verify("secret", record, {"Signature": zadarma.signature("secret", record)})


def test_zadarma_parsing_reads_local_start_times_and_outcomes() -> None:
    start = zadarma.parse(
        {
            "event": "NOTIFY_START",
            "pbx_call_id": "in_1",
            "caller_id": "79001234567",
            "called_did": "74951234567",
            "call_start": "2026-11-20 15:00:00",
        },
        NOW,
        tz="Europe/Moscow",
    )
    assert start is not None and start.started_at == NOW and start.caller == "+79001234567"
    end = zadarma.parse(
        {
            "event": "NOTIFY_END",
            "pbx_call_id": "in_1",
            "caller_id": "79001234567",
            "called_did": "74951234567",
            "call_start": "2026-11-20 15:00:00",
            "duration": "42",
            "disposition": "answered",
            "is_recorded": "1",
            "call_id_with_rec": "1700000000.1",
        },
        NOW + dt.timedelta(minutes=1),
        tz="Europe/Moscow",
    )
    assert end is not None and end.outcome == CallOutcome.ANSWERED and end.talk_seconds == 42
    assert end.recording_ref == "1700000000.1"
    busy = zadarma.parse(
        {
            **{"event": "NOTIFY_END", "pbx_call_id": "in_2", "called_did": "74951234567"},
            "call_start": str(int(NOW.timestamp())),
        },
        NOW,
    )
    assert busy is not None and busy.outcome == CallOutcome.MISSED and busy.caller is None
    assert zadarma.parse({"event": "NOTIFY_OUT_START", "pbx_call_id": "x"}, NOW) is None
    with pytest.raises(PayloadInvalid):
        zadarma.parse(
            {"event": "NOTIFY_START", "pbx_call_id": "x", "called_did": "1", "call_start": "soon"}, NOW
        )


def _mango_form(payload: dict, key: str = "vpbx-key", salt: str = "salt") -> dict[str, str]:
    text = json.dumps(payload)
    return {"vpbx_api_key": key, "sign": mango.sign(key, text, salt), "json": text}


def test_mango_sign_and_events() -> None:
    secrets_ = {"api_key": "vpbx-key", "api_salt": "salt"}
    appeared = {
        "entry_id": "MTIz",
        "call_id": "leg1",
        "timestamp": int(NOW.timestamp()),
        "seq": 1,
        "call_state": "Appeared",
        "from": {"number": "79001234567"},
        "to": {"number": "74951234567", "line_number": "74951234567"},
    }
    form = _mango_form(appeared)
    mango.verify(secrets_, form)
    # The sign is over the raw string: re-serialising with other spacing would not match.
    with pytest.raises(SignatureInvalid):
        mango.verify(secrets_, {**form, "json": json.dumps(appeared, indent=1)})
    with pytest.raises(SignatureInvalid):
        mango.verify({**secrets_, "api_key": "another"}, form)
    event = mango.parse_call(form, NOW)
    assert event is not None and event.kind == EventKind.START and event.called == "+74951234567"
    assert event.started_at == NOW
    summary = {
        "entry_id": "MTIz",
        "call_direction": 1,
        "from": {"number": "79001234567"},
        "to": {"extension": "101", "number": "74950000001"},
        "line_number": "74951234567",
        "create_time": int(NOW.timestamp()),
        "forward_time": int(NOW.timestamp()) + 2,
        "talk_time": int(NOW.timestamp()) + 10,
        "end_time": int(NOW.timestamp()) + 70,
        "entry_result": 1,
    }
    end = mango.parse_summary(_mango_form(summary), NOW)
    assert end is not None and end.outcome == CallOutcome.ANSWERED and end.talk_seconds == 60
    assert end.answered_at == NOW + dt.timedelta(seconds=10)
    missed = mango.parse_summary(_mango_form({**summary, "talk_time": 0, "entry_result": 0}), NOW)
    assert missed is not None and missed.outcome == CallOutcome.MISSED and missed.answered_at is None
    assert mango.not_inbound(_mango_form(summary)) is None
    with pytest.raises(PayloadInvalid):
        mango.parse_call({"json": "{not json"}, NOW)


def test_mango_outgoing_and_internal_legs_start_no_call() -> None:
    # VPBX API v1.10, "Примеры поведения": an employee's outgoing call, leg by leg.
    outgoing = {"location": "abonent", "call_state": "Appeared", "from": {"extension": "1234"}}
    outgoing |= {"to": {"number": "12345678"}, "entry_id": "OUT1", "timestamp": int(NOW.timestamp())}
    assert mango.parse_call(_mango_form(outgoing), NOW) is None
    connected = {**outgoing, "call_state": "Connected"}
    assert mango.parse_call(_mango_form(connected), NOW) is None
    internal = {**outgoing, "to": {"extension": "101"}}
    assert mango.parse_call(_mango_form(internal), NOW) is None
    # Dialled out through a line: still the employee's call, not an incoming one.
    via_line = {**outgoing, "to": {"number": "74951234567", "line_number": "74951234567"}}
    assert mango.parse_call(_mango_form(via_line), NOW) is None
    # The summary of an outgoing (2) or internal (0) call is no incoming call either.
    for direction in (2, 0):
        summary = {"entry_id": "OUT1", "call_direction": direction, "from": {"extension": "1234"}}
        summary |= {"to": {"number": "12345678"}, "create_time": int(NOW.timestamp()), "talk_time": 0}
        assert mango.parse_summary(_mango_form(summary), NOW) is None
        assert mango.not_inbound(_mango_form(summary)) == "OUT1"


def test_mango_call_that_ended_in_the_ivr_is_missed() -> None:
    # VPBX API v1.10: a call that ended in the IVR menu — entry_result 1, but nobody talked.
    start = int(NOW.timestamp())
    ivr_leg = {"entry_id": "IVR1", "call_state": "Connected", "location": "ivr", "timestamp": start + 1}
    ivr_leg |= {"from": {"number": "79001234567"}, "to": {"line_number": "74951234567", "extension": "0"}}
    assert mango.parse_call(_mango_form(ivr_leg), NOW) is None  # the menu picking up is no answer
    summary = {
        "entry_id": "IVR1",
        "call_direction": 1,
        "from": {"number": "79001234567"},
        "to": {"number": "74951234567"},
        "line_number": "74951234567",
        "create_time": start,
        "forward_time": 0,
        "talk_time": 0,
        "end_time": start + 40,
        "entry_result": 1,
        "disconnect_reason": 1110,
    }
    end = mango.parse_summary(_mango_form(summary), NOW)
    assert end is not None and end.outcome == CallOutcome.MISSED
    assert (end.answered_at, end.talk_seconds) == (None, 0)


def test_generic_signature_and_stale_timestamps() -> None:
    body = json.dumps(
        {
            "event": "start",
            "call_id": "c1",
            "caller": "+79001234567",
            "called": "+74951234567",
            "at": NOW.isoformat(),
        }
    ).encode()
    ts = str(int(NOW.timestamp()))
    headers = {"X-Otkuda-Timestamp": ts, "X-Otkuda-Signature": generic.sign("s3", ts, body)}
    generic.verify("s3", headers, body, NOW + dt.timedelta(minutes=4))
    with pytest.raises(SignatureInvalid):
        generic.verify("s3", headers, body, NOW + dt.timedelta(minutes=6))
    with pytest.raises(SignatureInvalid):
        generic.verify("s4", headers, body, NOW)
    with pytest.raises(SignatureInvalid):
        generic.verify("s3", headers, body + b" ", NOW)
    event = generic.parse(body)
    assert event.kind == EventKind.START and event.started_at == NOW
    with pytest.raises(PayloadInvalid):
        generic.parse(b'{"event": "start", "call_id": "c1", "at": "2026-11-20T12:00:00"}')
    with pytest.raises(PayloadInvalid):
        generic.parse(b'{"event": "end", "call_id": "c1", "at": 1, "status": "great"}')


def test_phone_normalisation_and_withheld_callers() -> None:
    assert to_e164("8 (495) 123-45-67") == "+74951234567"
    assert to_e164("79001234567") == "+79001234567"
    assert to_e164("anonymous") is None and to_e164("") is None
    assert to_e164("101") == "101"  # an extension is kept, not lost
