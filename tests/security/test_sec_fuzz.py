"""Property-based fuzzing: no input to the API, the snippet endpoints or a telephony webhook gives a 5xx.

The REST API is driven by schemathesis from its own OpenAPI document (valid and invalid requests, with a
seeded agency's token); the snippet and webhook bodies come from Hypothesis strategies that mix the
fields each endpoint reads with wrong types, huge and non-finite numbers, odd strings and unknown keys.
Webhook bodies are signed with the integration's secret, so they reach the parsers instead of stopping
at the signature check. The number of examples is kept small so this runs in ``make test``.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator

from tests import factories as h
from tests.factories import make_tenant
from tracking.telephony import generic, mango, zadarma

API_EXAMPLES = 4
BODY_EXAMPLES = 25
FUZZ = settings(
    max_examples=BODY_EXAMPLES,
    deadline=None,
    database=None,
    # The same examples on every run: a failure in CI is one anybody can reproduce, never a flake.
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)

# Values a careless or hostile sender puts anywhere.
NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1e12, 1e20, 10**12, 2**63, -(2**63) - 1]),
)
TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["", " ", "\x00", "null", "NaN", "1e20", "²", "٣", "+7 (495) 111-00-00", "2026-13-45T99:99:99Z"]
    ),
    st.from_regex(r"[0-9]{1,30}", fullmatch=True),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
ANY_JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
)


def _objects(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects over the keys an endpoint reads (each present or not), plus stray keys."""
    known = st.fixed_dictionaries({}, optional={k: ANY_JSON for k in keys})
    extra = st.dictionaries(st.text(max_size=10), ANY_JSON, max_size=2)
    return st.builds(lambda a, b: {**b, **a}, known, extra)


def _json_text(value: Any) -> str:
    # Python writes NaN and Infinity, which JavaScript's JSON does not; senders have been seen doing both.
    return json.dumps(value, allow_nan=True)


def _no_5xx(resp: Any, what: Any) -> None:
    assert resp.status_code < 500, (resp.status_code, what, resp.get_data(as_text=True)[:300])


@pytest.fixture
def fuzz_app(make_hub):
    # The limits are not under test here and would turn a long run into 429s.
    return make_hub(RATELIMIT_ENABLED=False)


def test_the_api_never_answers_5xx(fuzz_app, db: Session) -> None:
    schemathesis = pytest.importorskip("schemathesis")
    from schemathesis.generation import GenerationMode

    t = make_tenant(db)
    h.make_pool_setup(db, t.site, "+749522200", 2, [h.make_channel(db, t.site, "SEO")])
    auth = {"Authorization": f"Bearer {t.token}"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzz_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:
        strategy = operation.as_strategy(GenerationMode.POSITIVE, headers=auth) | operation.as_strategy(
            GenerationMode.NEGATIVE, headers=auth
        )

        @settings(FUZZ, max_examples=API_EXAMPLES)
        @given(case=strategy)
        def run(case: Any) -> None:
            resp = case.call(headers=auth)
            assert resp.status_code < 500, (case.method, case.formatted_path, case.body, resp.text[:300])

        run()


VISIT_KEYS = ["visitor_id", "url", "referrer", "screen", "ym_uid", "ga", "session_id", "utm_source", "gclid"]


def test_the_snippet_endpoints_never_answer_5xx(fuzz_app, db: Session) -> None:
    t = make_tenant(db)
    h.make_pool_setup(db, t.site, "+749522200", 2)
    client = fuzz_app.test_client()
    origin = {"Origin": f"https://{t.site.domains[0]}"}
    live = client.post(
        f"/t/v1/{t.site.site_key}/visit", data=json.dumps({"visitor_id": "f" * 32}), headers=origin
    ).get_json()["session_id"]

    @FUZZ
    @given(
        action=st.sampled_from(["visit", "heartbeat", "release"]),
        body=_objects(VISIT_KEYS) | ANY_JSON,
        known_session=st.booleans(),
    )
    def run(action: str, body: Any, known_session: bool) -> None:
        if known_session and isinstance(body, dict):
            body = {**body, "session_id": live}
        resp = client.post(
            f"/t/v1/{t.site.site_key}/{action}",
            data=_json_text(body),
            headers=origin,
            content_type="text/plain",
        )
        _no_5xx(resp, (action, body))

    run()


GENERIC_KEYS = [
    "event",
    "call_id",
    "at",
    "caller",
    "called",
    "started_at",
    "answered_at",
    "forwarded_to",
    "status",
    "talk_seconds",
    "recording_url",
]
GENERIC_EVENTS = st.sampled_from(["start", "answer", "end", "recording", "transfer"])


def test_the_generic_pbx_webhook_never_answers_5xx(fuzz_app, db: Session) -> None:
    t = make_tenant(db)
    integ = h.make_integration(db, t, "generic", {"secret": "gen-secret"})
    client = fuzz_app.test_client()

    @FUZZ
    @given(body=_objects(GENERIC_KEYS), event=GENERIC_EVENTS, call_id=TEXT, stamp=st.one_of(st.none(), TEXT))
    def run(body: dict[str, Any], event: str, call_id: str, stamp: str | None) -> None:
        body = {"event": event, "call_id": call_id, **body}
        raw = _json_text(body).encode()
        ts = stamp if stamp is not None else str(int(time.time()))
        headers = {
            "X-Otkuda-Timestamp": ts,
            "X-Otkuda-Signature": generic.sign("gen-secret", ts, raw),
            "Content-Type": "application/json",
        }
        try:
            resp = client.post(f"/hooks/v1/generic/{integ.integration_key}", data=raw, headers=headers)
        except ValueError:
            return  # a header value werkzeug itself refuses to send (a NUL, a newline): never reaches us
        _no_5xx(resp, (headers["X-Otkuda-Timestamp"], body))

    run()


ZADARMA_FIELDS = [
    "caller_id",
    "called_did",
    "call_start",
    "pbx_call_id",
    "destination",
    "internal",
    "duration",
    "disposition",
    "status_code",
    "is_recorded",
    "call_id_with_rec",
]
ZADARMA_EVENTS = st.sampled_from(sorted(zadarma.SIGNED_FIELDS))


def test_the_zadarma_webhook_never_answers_5xx(fuzz_app, db: Session) -> None:
    t = make_tenant(db)
    integ = h.make_integration(db, t, "zadarma", {"api_secret": "zd-secret"}, timezone="Europe/Moscow")
    client = fuzz_app.test_client()
    field_text = TEXT | st.sampled_from(["2026-11-20 15:00:00", "1763640000", "answered", "79001234567"])

    @FUZZ
    @given(
        event=ZADARMA_EVENTS,
        fields=st.fixed_dictionaries({}, optional=dict.fromkeys(ZADARMA_FIELDS, field_text)),
    )
    def run(event: str, fields: dict[str, str]) -> None:
        form = {"event": event, **{k: v.replace("\x00", "") for k, v in fields.items()}}
        headers = {"Signature": zadarma.signature("zd-secret", form)}
        resp = client.post(
            f"/hooks/v1/zadarma/{integ.integration_key}",
            data=urlencode(form),
            headers=headers,
            content_type="application/x-www-form-urlencoded",
        )
        _no_5xx(resp, form)

    run()


MANGO_KEYS = [
    "entry_id",
    "call_id",
    "timestamp",
    "seq",
    "call_state",
    "from",
    "to",
    "create_time",
    "end_time",
]


def test_the_mango_webhook_never_answers_5xx(fuzz_app, db: Session) -> None:
    t = make_tenant(db)
    integ = h.make_integration(db, t, "mango", {"api_key": "mg-key", "api_salt": "mg-salt"})
    client = fuzz_app.test_client()
    party = st.fixed_dictionaries(
        {}, optional={"number": ANY_JSON, "line_number": ANY_JSON, "extension": ANY_JSON}
    )

    @FUZZ
    @given(
        kind=st.sampled_from(["call", "summary"]),
        payload=_objects(MANGO_KEYS) | ANY_JSON,
        sides=st.fixed_dictionaries({}, optional={"from": party, "to": party}),
    )
    def run(kind: str, payload: Any, sides: dict[str, Any]) -> None:
        if isinstance(payload, dict):
            payload = {**payload, **sides}
        text = _json_text(payload)
        form = {"vpbx_api_key": "mg-key", "sign": mango.sign("mg-key", text, "mg-salt"), "json": text}
        resp = client.post(f"/hooks/v1/mango/{integ.integration_key}/events/{kind}", data=form)
        _no_5xx(resp, (kind, payload))

    run()


TWILIO_KEYS = [
    "CallSid",
    "ParentCallSid",
    "From",
    "To",
    "CallStatus",
    "Direction",
    "CallDuration",
    "DialCallStatus",
    "DialCallDuration",
    "RecordingUrl",
    "Timestamp",
]


def test_the_twilio_webhooks_never_answer_5xx(fuzz_app, db: Session) -> None:
    t = make_tenant(db)
    h.make_static(db, h.make_channel(db, t.site, "Radio"), e164="+74951110000", forward_to="+74957770000")
    integ = h.make_integration(db, t, "twilio", {"auth_token": "tw-token"})
    client = fuzz_app.test_client()
    value = (TEXT | st.sampled_from(["+74951110000", "completed", "ringing", "inbound", "CA1", "15"])).map(
        lambda s: s.replace("\x00", "")
    )

    @FUZZ
    @given(
        kind=st.sampled_from(["voice", "status"]),
        params=st.fixed_dictionaries(
            {"AccountSid": st.just("AC" + "0" * 32)}, optional=dict.fromkeys(TWILIO_KEYS, value)
        ),
    )
    def run(kind: str, params: dict[str, str]) -> None:
        path = f"/hooks/v1/twilio/{integ.integration_key}/{kind}"
        sig = RequestValidator("tw-token").compute_signature("http://hub.test" + path, params)
        resp = client.post(path, data=params, headers={"X-Twilio-Signature": sig})
        _no_5xx(resp, (kind, params))

    run()
