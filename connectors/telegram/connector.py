"""Sending notifications with the Telegram Bot API's ``sendMessage``.

Wire facts from core.telegram.org/bots/api: requests go to ``{base}/bot<token>/<method>`` ("Making
requests"); every answer is ``{"ok": true, "result": …}`` or ``{"ok": false, "error_code", "description",
"parameters"?}``; ``parameters.retry_after`` says how long to wait after flood control (429) and
``parameters.migrate_to_chat_id`` names a group's new supergroup id ("ResponseParameters"); ``sendMessage``
takes ``chat_id`` and ``text`` of 1–4096 characters and returns the sent Message (``message_id``).

Answers → outcomes: ok → done (external id = message id); 429 and 5xx → retry after ``retry_after``;
401 (a wrong token) and 403 (the bot was blocked or removed) and other 400s → dead with Telegram's words.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import requests

from connectors.base import (
    AccountContext,
    DeliveryItem,
    DeliveryOutcome,
    DeliveryResult,
    ItemKind,
    PushOnly,
    RateLimit,
)
from connectors.http import ApiClient, ApiError, Problem, Verdict, json_body, rule

MAX_TEXT = 4096
TIMEOUT = 20.0
# A bot token is not an OAuth token: 401 is a wrong token, 403 a bot blocked or removed — both need a person.
RULES = (rule(Verdict.DEAD, (401, 403)),)


def read_problem(response: requests.Response) -> Problem:
    """``{"ok": false, "error_code", "description", "parameters": {"retry_after", "migrate_to_chat_id"}}``."""
    answer = json_body(response)
    answer = answer if isinstance(answer, dict) else {}
    params = answer.get("parameters") or {}
    description = str(answer.get("description") or response.text[:200])
    if params.get("migrate_to_chat_id"):
        description += f" (the group is now chat {params['migrate_to_chat_id']}: link that chat instead)"
    retry = params.get("retry_after")
    return Problem(
        response.status_code,
        code=str(answer.get("error_code") or ""),
        message=description,
        body=answer,
        retry_after=float(retry) if retry is not None else None,
    )


class TelegramConnector(PushOnly):
    name = "telegram"
    max_batch = 1
    # Telegram offers no look-up of sent messages: an interrupted send is not repeated (see jobs.deliver).
    resend_in_doubt = False

    def __init__(self, ctx: AccountContext, *, http: requests.Session | None = None) -> None:
        self.ctx = ctx
        self._token = ctx.extra.get("bot_token", "")
        # The base URL holds the token: errors name the status and Telegram's words, never the URL.
        self.api = ApiClient(
            f"{ctx.api_base.rstrip('/')}/bot{self._token}",
            dict,
            read_problem,
            RULES,
            timeout=TIMEOUT,
            session=http or ctx.http or requests.Session(),
        )

    def rate_limit(self) -> RateLimit:
        # Telegram's FAQ: about one message a second to one chat, 20 a minute to a group.
        return RateLimit(per_second=1.0, burst=3)

    def text(self, item: DeliveryItem) -> str:
        p = item.payload
        parts = [str(p.get("subject") or ""), str(p.get("text") or "")]
        if p.get("path"):
            parts.append(f"{self.ctx.hub_base_url}{p['path']}")
        text = "\n\n".join(x for x in parts if x)
        return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"

    def push(self, items: Sequence[DeliveryItem]) -> list[DeliveryResult]:
        if not self._token:
            return [
                DeliveryResult(
                    i.id, DeliveryOutcome.DEAD, error="no Telegram bot token (OTKUDA_TELEGRAM_BOT_TOKEN)"
                )
                for i in items
            ]
        return [self._send(i) for i in items]

    def _send(self, item: DeliveryItem) -> DeliveryResult:
        if item.kind != ItemKind.NOTIFICATION:
            return DeliveryResult(item.id, DeliveryOutcome.SKIPPED, error="not a notification")
        body = {
            "chat_id": self.ctx.account.get("chat_id"),
            "text": self.text(item),
            "link_preview_options": {"is_disabled": True},
        }
        try:
            resp = self.api.send("POST", "/sendMessage", json=body)
        except ApiError as exc:
            p = exc.problem
            if p.status == 0:
                return DeliveryResult(
                    item.id, DeliveryOutcome.RETRY, error=f"Telegram unreachable: {p.message}"
                )
            outcome = DeliveryOutcome.RETRY if exc.transient else DeliveryOutcome.DEAD
            return DeliveryResult(
                item.id, outcome, error=f"Telegram {p.status}: {p.message}", retry_after=exc.retry_after
            )
        answer: dict[str, Any] = json_body(resp) or {}
        if not answer.get("ok"):
            return DeliveryResult(
                item.id, DeliveryOutcome.DEAD, error=f"Telegram 200: {answer.get('description')}"
            )
        return DeliveryResult(item.id, DeliveryOutcome.DONE, external_id=str(answer["result"]["message_id"]))
