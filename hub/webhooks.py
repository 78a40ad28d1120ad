"""Telephony webhooks: /hooks/v1/<provider>/<integration_key>/...

Each request is matched to an integration by the key in its URL, verified with that integration's secret,
parsed by the provider's adapter and ingested in one transaction. Anything refused (unknown key, bad
signature, unreadable payload) answers 4xx, stores nothing, and is logged without secrets or bodies.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any, cast

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from sqlalchemy import bindparam, select, text
from sqlalchemy import event as sa_event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from hub.extensions import db
from hub.schemas import error_json
from tracking.calls import discard_unfinished, ingest
from tracking.crypto import SecretUnreadable, decrypt_json
from tracking.db import utcnow
from tracking.models import TelephonyIntegration, TrackingNumber
from tracking.telephony import generic, mango, outage, twilio, zadarma
from tracking.telephony.base import PayloadInvalid, ProviderEvent, SignatureInvalid, check_event

bp = Blueprint("webhooks", __name__)
log = logging.getLogger(__name__)

# Telephony payloads are small; anything larger is not a call event.
MAX_BODY = 64 * 1024


class Refused(Exception):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


@bp.errorhandler(Refused)
def _refused(exc: Refused) -> Any:
    # The key is logged shortened: enough to tell integrations apart, useless for calling the hook.
    key = (request.view_args or {}).get("key", "")
    log.warning(
        "webhook refused: %s %s key=%s… status=%s reason=%s",
        request.method,
        request.path.split("/")[3] if request.path.count("/") >= 3 else "",
        key[:4],
        exc.status,
        exc.message,
    )
    db().rollback()
    resp = jsonify(error_json(exc.error, exc.message))
    resp.status_code = exc.status
    return resp


# CRM webhooks carry batches of deals.
LARGER_BODIES = {"webhooks.amocrm_webhook": MAX_BODY * 4}


@bp.before_request
def _limit_body() -> None:
    limit = LARGER_BODIES.get(request.endpoint or "", MAX_BODY)
    if request.content_length is not None:
        if request.content_length > limit:
            raise Refused(413, "payload_too_large", "webhook body is too large")
        return
    # A chunked body has no length to check: read one byte past the limit (Werkzeug stops there rather than
    # failing, so a cut-off body would otherwise be parsed as if whole). Later readers get the cached bytes.
    request.max_content_length = limit + 1
    if len(request.get_data(cache=True)) > limit:
        raise Refused(413, "payload_too_large", "webhook body is too large")


# Built once: a statement built per request costs more Python (construction, the compiled-cache key) than
# running it.
_BY_KEY = select(TelephonyIntegration).where(TelephonyIntegration.integration_key == bindparam("key"))


def _integration(providers: tuple[str, ...], key: str) -> tuple[TelephonyIntegration, dict[str, str]]:
    integ = db().scalars(_BY_KEY, {"key": key}).first()
    if integ is None or not integ.active or integ.provider not in providers:
        raise Refused(404, "unknown_integration", "no active integration with this key")
    try:
        secrets = decrypt_json(current_app.config["ENCRYPTION_KEY"], integ.secrets_encrypted)
    except SecretUnreadable:
        raise Refused(403, "invalid_signature", "integration secret is unreadable; re-enter it") from None
    return integ, secrets


def _ingest(integ: TelephonyIntegration, event: ProviderEvent | None) -> None:
    if event is None:
        return
    _guard(lambda: check_event(event, utcnow()))
    ingest(db(), integ, event)
    db().commit()


def _headers() -> Mapping[str, str]:
    # Werkzeug's Headers is a case-insensitive mapping in all but its declared type.
    return cast(Mapping[str, str], request.headers)


def _guard(fn: Any) -> Any:
    try:
        return fn()
    except SignatureInvalid as exc:
        raise Refused(403, "invalid_signature", str(exc)) from None
    except PayloadInvalid as exc:
        raise Refused(400, "invalid_payload", str(exc)) from None


# --- Twilio -------------------------------------------------------------------------------------------


def _twilio_urls() -> list[str]:
    query = request.query_string.decode()
    path = request.path + (f"?{query}" if query else "")
    # Behind a proxy Twilio signed the public URL; locally it signed the URL this server sees.
    return [current_app.config["BASE_URL"] + path, request.url]


def _twiml(body: str) -> Response:
    return Response(body, mimetype="application/xml")


# How long the voice webhook waits for PostgreSQL before answering from the outage snapshot: well inside
# Twilio's 15 s, so the caller is connected either way.
VOICE_DB_TIMEOUT_MS = 3000


def _status_url(key: str) -> str:
    return f"{current_app.config['BASE_URL']}/hooks/v1/twilio/{key}/status"


@bp.post("/twilio/<key>/voice")
def twilio_voice(key: str) -> Any:
    try:
        return _twilio_voice(key)
    except SQLAlchemyError as exc:
        with contextlib.suppress(SQLAlchemyError):
            db().rollback()
        return _twilio_voice_without_database(key, exc)


def _twilio_voice(key: str) -> Any:
    if db().get_bind().dialect.name == "postgresql":
        db().execute(text(f"SET LOCAL statement_timeout = {VOICE_DB_TIMEOUT_MS}"))
    integ, secrets = _integration(("twilio",), key)
    form = request.form
    _guard(lambda: twilio.verify(secrets, _twilio_urls(), form, _headers()))
    event = _guard(lambda: twilio.parse_voice(form, utcnow()))
    forward_to = db().scalar(
        select(TrackingNumber.forward_to).where(
            TrackingNumber.e164 == event.called, TrackingNumber.client_id == integ.client_id
        )
    )
    _drain_spool()
    _ingest(integ, event)
    _heal_snapshot(key, event.called, forward_to)
    return _twiml(twilio.dial_twiml(forward_to, _status_url(key), caller_id=event.caller))


def _twilio_voice_without_database(key: str, exc: Exception) -> Any:
    """Connect the caller from the outage snapshot; keep the call's start to ingest later."""
    log.error("Twilio voice webhook answered without the database: %s", type(exc).__name__)
    directory = current_app.config["INSTANCE_DIR"]
    entry = outage.read_snapshot(directory).get(key)
    default = current_app.config.get("TWILIO_FALLBACK_DIAL")
    form = request.form
    if entry is None:
        # Unknown to the snapshot, so the signature cannot be checked: only the configured default is
        # dialled, and nothing is recorded.
        if not default:
            raise Refused(503, "database_unavailable", "the database is unavailable; try again")
        return _twiml(twilio.dial_twiml(default, _status_url(key), caller_id=None))
    try:
        secrets = decrypt_json(current_app.config["ENCRYPTION_KEY"], entry["secrets"])
    except SecretUnreadable:
        raise Refused(403, "invalid_signature", "integration secret is unreadable; re-enter it") from None
    _guard(lambda: twilio.verify(secrets, _twilio_urls(), form, _headers()))
    event = _guard(lambda: twilio.parse_voice(form, utcnow()))
    _guard(lambda: check_event(event, utcnow()))
    outage.spool(directory, key, event)
    forward_to = entry["numbers"].get(event.called) or default
    return _twiml(twilio.dial_twiml(forward_to, _status_url(key), caller_id=event.caller))


def _drain_spool() -> None:
    """With the database back, ingest the call events kept during an outage, before this request's own
    event, so a call's start is known before its end finalises it."""
    try:
        taken = outage.drain(db(), current_app.config["INSTANCE_DIR"], ingest)
    except (SQLAlchemyError, OSError) as exc:  # left in the spool; the next request tries again
        db().rollback()
        log.warning("Twilio outage spool not drained: %s", type(exc).__name__)
        return
    if taken:
        log.info("ingested %d Twilio call event(s) kept during a database outage", taken)


def _heal_snapshot(key: str, called: str | None, forward_to: str | None) -> None:
    """Rewrite the outage snapshot if it disagrees with the database (changed outside the hub's sessions)."""
    directory = current_app.config["INSTANCE_DIR"]
    if (
        not called
        or (outage.read_snapshot(directory).get(key) or {}).get("numbers", {}).get(called) == forward_to
    ):
        return
    try:
        outage.write_snapshot(db(), directory)
    except (SQLAlchemyError, OSError) as exc:
        db().rollback()
        log.warning("Twilio outage snapshot not rewritten: %s", type(exc).__name__)


def init_outage_snapshot(app: Flask) -> None:
    """Rewrite the outage snapshot after every commit that changed numbers or telephony integrations."""
    sessions = app.extensions["otkuda.sessions"]
    directory = app.config["INSTANCE_DIR"]

    def _matters(session: Session, obj: object) -> bool:
        if isinstance(obj, TelephonyIntegration):
            return True
        if not isinstance(obj, TrackingNumber):
            return False
        if obj in session.new or obj in session.deleted:
            return True
        # Holds change on every visit; only what a call needs makes the snapshot stale.
        attrs = sa_inspect(obj).attrs
        return any(attrs[name].history.has_changes() for name in ("e164", "forward_to", "client_id"))

    @sa_event.listens_for(sessions, "after_flush")
    def _note_changes(session: Session, _ctx: Any) -> None:
        if any(_matters(session, obj) for obj in (*session.new, *session.dirty, *session.deleted)):
            session.info["twilio_snapshot_stale"] = True

    @sa_event.listens_for(sessions, "after_commit")
    def _rewrite(session: Session) -> None:
        if not session.info.pop("twilio_snapshot_stale", False):
            return
        try:
            with sessions() as fresh:
                outage.write_snapshot(fresh, directory)
        except (SQLAlchemyError, OSError) as exc:  # the next change or call rewrites it
            log.warning("could not rewrite the Twilio outage snapshot: %s", type(exc).__name__)

    @sa_event.listens_for(sessions, "after_rollback")
    def _forget(session: Session) -> None:
        session.info.pop("twilio_snapshot_stale", None)


@bp.post("/twilio/<key>/status")
def twilio_status(key: str) -> Any:
    integ, secrets = _integration(("twilio",), key)
    form = request.form
    _guard(lambda: twilio.verify(secrets, _twilio_urls(), form, _headers()))
    _drain_spool()
    _ingest(integ, _guard(lambda: twilio.parse_status(form, utcnow())))
    # Also the <Dial action> target: an empty response ends the call once the forwarded leg is over.
    return _twiml(twilio.EMPTY_TWIML)


# --- Zadarma / Novofon -----------------------------------------------------------------------------------


@bp.route("/<any(zadarma, novofon):provider>/<key>", methods=["GET", "POST"])
def zadarma_notify(provider: str, key: str) -> Any:
    integ, secrets = _integration((provider,), key)
    if request.method == "GET":
        echo = request.args.get("zd_echo")
        if not echo:
            raise Refused(400, "invalid_payload", "zd_echo is required")
        return Response(echo, mimetype="text/plain")
    form = request.form
    _guard(lambda: zadarma.verify(secrets.get("api_secret", ""), form, _headers()))
    tz = integ.settings.get("timezone") or "UTC"
    _ingest(integ, _guard(lambda: zadarma.parse(form, utcnow(), provider=provider, tz=tz)))
    return jsonify(ok=True)


# --- Mango Office ------------------------------------------------------------------------------------------


@bp.route("/mango/<key>/ping", methods=["GET", "POST"])
def mango_ping(key: str) -> Any:
    _integration(("mango",), key)
    return jsonify(result=1000)


@bp.post("/mango/<key>/events/<any(call, summary):kind>")
def mango_event(key: str, kind: str) -> Any:
    integ, secrets = _integration(("mango",), key)
    form = request.form
    _guard(lambda: mango.verify(secrets, form))
    parser = mango.parse_call if kind == "call" else mango.parse_summary
    _ingest(integ, _guard(lambda: parser(form, utcnow())))
    if kind == "summary" and (entry_id := mango.not_inbound(form)):
        # Not an incoming call after all: a call its legs started is settled by going away.
        discard_unfinished(db(), integ, entry_id)
        db().commit()
    return jsonify(result=1000)


@bp.post("/mango/<key>/events/<other>")
def mango_other(key: str, other: str) -> Any:
    # Recording, DTMF and other notifications are signed like the rest; accepted so Mango does not retry,
    # but they carry nothing a call record needs.
    _integ, secrets = _integration(("mango",), key)
    _guard(lambda: mango.verify(secrets, request.form))
    return jsonify(result=1000)


# --- Generic PBX ------------------------------------------------------------------------------------------


@bp.post("/generic/<key>")
def generic_event(key: str) -> Any:
    integ, secrets = _integration(("generic",), key)
    body = request.get_data(cache=False)
    _guard(lambda: generic.verify(secrets.get("secret", ""), _headers(), body, utcnow()))
    _ingest(integ, _guard(lambda: generic.parse(body)))
    return jsonify(ok=True)
