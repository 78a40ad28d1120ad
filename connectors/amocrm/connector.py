"""Calls to one amoCRM account: reuse the caller's contact, add a call note to their open deal or create an
incoming SIP lead (or a deal in a chosen pipeline), and read deals back."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from connectors.amocrm import mapping
from connectors.amocrm.client import PER_SECOND, AmoClient, AmoError
from connectors.amocrm.provider import check_account
from connectors.base import (
    AccountContext,
    DealUpdate,
    DeliveryItem,
    DeliveryOutcome,
    DeliveryResult,
    ItemKind,
    PulledSpend,
    RateLimit,
    TokenExpired,
)

log = logging.getLogger(__name__)
BATCH = 50  # amoCRM's limit of leads per complex or unsorted request
LOOKBACK = dt.timedelta(days=2)  # how far before an item's call find_delivered reads notes
# What the deal webhook subscribes to: the events whose body carries a lead's current state (webhooks.EVENTS).
DEAL_WEBHOOK_EVENTS = ["add_lead", "update_lead", "status_lead"]


class _Stop(Exception):
    """A failure that ends this push: the remaining items are retried later, not hammered now."""

    def __init__(self, error: str, retry_after: float | None) -> None:
        super().__init__(error)
        self.error = error
        self.retry_after = retry_after


class AmoConnector:
    name = "amocrm"

    def __init__(self, ctx: AccountContext, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.ctx = ctx
        self.settings = dict(ctx.settings)
        base = ctx.api_base
        if "{" in base or not base.startswith(("http://", "https://")):
            raise ValueError("the amoCRM connection has no account host: connect it again")
        if urlsplit(base).hostname == ctx.account.get("host"):
            # Built from the stored account rather than configured: the token goes there, so it must be
            # a real account host.
            check_account(ctx.account)
        self.client = AmoClient(base, ctx.access_token, sleep=sleep, session=ctx.http)
        self.mode = str(self.settings.get("mode") or "unsorted")
        self._codes: set[str] | None = None
        self.dedupe = bool(self.settings.get("dedupe_open_deals", True))

    def rate_limit(self) -> RateLimit:
        return RateLimit(per_second=PER_SECOND, burst=int(PER_SECOND))

    # --- push -----

    def push(self, items: Sequence[DeliveryItem]) -> list[DeliveryResult]:
        results: dict[int, DeliveryResult] = {}
        to_create: list[tuple[DeliveryItem, dict[str, Any] | None]] = []
        pending = list(items)
        try:
            for item in items:
                if item.kind != ItemKind.CALL:
                    results[item.id] = DeliveryResult(
                        item.id,
                        DeliveryOutcome.SKIPPED,
                        error="amoCRM is where deals come from, not where they go",
                    )
                    continue
                try:
                    outcome = self._prepare(item)
                except AmoError as exc:
                    if exc.transient:
                        raise
                    # Refused outright (a 400 on this caller's look-up): this item cannot go as it is.
                    results[item.id] = DeliveryResult(
                        item.id, DeliveryOutcome.DEAD, error=_validation_text(exc, item.key)
                    )
                    continue
                if isinstance(outcome, DeliveryResult):
                    results[item.id] = outcome
                else:
                    to_create.append((item, outcome))
            for start in range(0, len(to_create), BATCH):
                results.update(self._create(to_create[start : start + BATCH]))
        except _Stop as stop:
            for item in pending:
                results.setdefault(
                    item.id,
                    DeliveryResult(
                        item.id, DeliveryOutcome.RETRY, error=stop.error, retry_after=stop.retry_after
                    ),
                )
        except TokenExpired:
            if not results:
                raise  # nothing sent yet: the pipeline refreshes the token and sends the batch again
            for item in pending:
                results.setdefault(
                    item.id,
                    DeliveryResult(item.id, DeliveryOutcome.RETRY, error="token refused", retry_after=0),
                )
        return [results[i.id] for i in items]

    def _call(self, fn: Callable[..., Any], *args: Any, writes: bool = False) -> Any:
        """Run one request. A 429 stops the push (nothing was done); so does any passing failure of a read.
        A write that failed without a clear answer (5xx, no answer) may have happened: that error goes up to
        the pipeline, which treats the batch as in doubt and asks ``find_delivered`` before sending again."""
        try:
            return fn(*args)
        except AmoError as exc:
            if exc.account_wide or (exc.transient and not writes):
                raise _Stop(
                    f"amoCRM answered {exc.status or 'nothing'}: {exc.message}", exc.retry_after
                ) from None
            raise

    def _prepare(self, item: DeliveryItem) -> DeliveryResult | dict[str, Any] | None:
        """A finished result (a note on an open deal), or the contact to attach to a new lead."""
        caller = item.payload.get("caller")
        if not caller:
            return None
        contact = self._find_contact(caller)
        if contact is None:
            return mapping.new_contact(caller)
        if self.dedupe:
            lead_id = self._open_lead(int(contact["id"]))
            if lead_id is not None:
                note = mapping.call_note(item.payload, item.key, lead_id, self.settings)
                try:
                    self._call(self.client.add_notes, [note], writes=True)
                except AmoError as exc:
                    if exc.transient:
                        raise
                    return DeliveryResult(
                        item.id, DeliveryOutcome.DEAD, error=_validation_text(exc, item.key)
                    )
                return DeliveryResult(item.id, DeliveryOutcome.DONE, external_id=str(lead_id))
        return {"id": int(contact["id"])}

    def _find_contact(self, caller: str) -> dict[str, Any] | None:
        query = mapping.digits(caller)[-10:]
        for contact in self._call(self.client.find_contacts, query):
            if any(mapping.same_phone(caller, p) for p in mapping.contact_phones(contact)):
                return contact
        return None

    def _open_lead(self, contact_id: int) -> int | None:
        ids = self._call(self.client.contact_leads, contact_id)
        leads = self._call(self.client.leads_by_id, ids) if ids else []
        open_ = [lead for lead in leads if int(lead.get("status_id") or 0) not in (mapping.WON, mapping.LOST)]
        if not open_:
            return None
        return int(max(open_, key=lambda lead: int(lead.get("updated_at") or 0))["id"])

    def _tracking_codes(self) -> set[str]:
        """The account's field codes, read once per connector: tracking fields are filled only if present."""
        if self._codes is None:
            try:
                self._codes = set(self._call(self.client.lead_field_codes))
            except AmoError as exc:
                if exc.transient:
                    raise
                # The field list is refused to this user: the leads still go, with the mapped fields only.
                log.warning("amoCRM lead fields not readable (%s); tracking fields not filled", exc.status)
                self._codes = set()
        return self._codes

    def _create(self, batch: list[tuple[DeliveryItem, dict[str, Any] | None]]) -> dict[int, DeliveryResult]:
        by_key = {item.key: item for item, _ in batch}
        codes = self._tracking_codes()
        if self.mode == "lead":
            body = [mapping.complex_lead(i.payload, i.key, c, self.settings, codes) for i, c in batch]
            send: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] = self.client.add_complex
        else:
            body = [mapping.unsorted_sip(i.payload, i.key, c, self.settings, codes) for i, c in batch]
            send = self.client.add_unsorted_sip
        try:
            answer = self._call(send, body, writes=True)
        except AmoError as exc:
            if exc.transient:
                raise
            return _rejected(exc, batch)
        created: dict[str, int] = {}
        for row in answer:
            request_ids = row.get("request_id")
            key = request_ids[0] if isinstance(request_ids, list) else request_ids
            lead_id = row.get("id") or (((row.get("_embedded") or {}).get("leads") or [{}])[0].get("id"))
            if key in by_key and lead_id:
                created[str(key)] = int(lead_id)
        results = {}
        for key, item in by_key.items():
            if key in created:
                results[item.id] = DeliveryResult(
                    item.id, DeliveryOutcome.DONE, external_id=str(created[key])
                )
            else:
                # Sent, yet not in the answer: look it up before any re-send.
                results[item.id] = DeliveryResult(
                    item.id,
                    DeliveryOutcome.RETRY,
                    error="amoCRM's answer did not list this lead",
                    retry_after=30,
                )
        if self.mode == "lead" and created:
            notes = [
                mapping.call_note(by_key[k].payload, k, lead, self.settings) for k, lead in created.items()
            ]
            try:
                self._call(self.client.add_notes, notes, writes=True)
            except (AmoError, _Stop) as exc:
                # The deals exist; a missing note is not worth a duplicate deal.
                log.warning("amoCRM call notes not added: %s", exc)
        return results

    # --- in doubt -----

    def find_delivered(self, items: Sequence[DeliveryItem]) -> dict[int, str]:
        keys = {i.key: i.id for i in items}
        found: dict[int, str] = {}
        times = [mapping.unix(i.payload.get("called_at")) for i in items]
        since = min((t for t in times if t), default=int(time.time())) - int(LOOKBACK.total_seconds())
        for note in self.client.call_notes_since(since):
            uniq = (note.get("params") or {}).get("uniq")
            if uniq in keys:
                found[keys[uniq]] = str(note.get("entity_id"))
        if self.mode != "lead":
            for row in self.client.unsorted_sip():
                key = row.get("source_uid")
                leads = (row.get("_embedded") or {}).get("leads") or []
                if key in keys and leads:
                    found.setdefault(keys[key], str(leads[0]["id"]))
        return found

    # --- the deal webhook -----

    def register_deal_webhook(self, destination: str) -> str:
        """Subscribe ``destination`` to deal changes (POST /api/v4/webhooks); the webhook's id."""
        return str(self.client.add_webhook(destination, DEAL_WEBHOOK_EVENTS)["id"])

    def remove_deal_webhook(self, destination: str) -> None:
        """Unsubscribe ``destination``; one already gone is fine."""
        try:
            self.client.delete_webhook(destination)
        except AmoError as exc:
            if exc.status != 404:
                raise

    # --- pull -----

    def pull_deals(self, since: dt.datetime) -> Iterable[DealUpdate]:
        for lead in self.client.leads_updated_since(int(since.timestamp())):
            yield mapping.deal_update(lead, self.ctx.currency)

    def pull_spend(self, start: dt.date, end: dt.date) -> Iterable[PulledSpend]:
        return []


def _validation_text(exc: AmoError, key: str) -> str:
    for entry in exc.validation:
        if str(entry.get("request_id")) == key:
            return "; ".join(f"{e.get('path')}: {e.get('detail')}" for e in entry.get("errors") or [])
    return f"amoCRM refused ({exc.status}): {exc.message}"


def _rejected(exc: AmoError, batch: list[tuple[DeliveryItem, Any]]) -> dict[int, DeliveryResult]:
    """A 400 refuses the whole request: the items it names are dead, the others go again on their own."""
    named = {str(e.get("request_id")) for e in exc.validation}
    out = {}
    for item, _ in batch:
        if item.key in named or not named:
            out[item.id] = DeliveryResult(
                item.id, DeliveryOutcome.DEAD, error=_validation_text(exc, item.key)
            )
        else:
            out[item.id] = DeliveryResult(
                item.id, DeliveryOutcome.RETRY, error="sent with a refused item; sending again", retry_after=0
            )
    return out
