"""A fake Telegram Bot API that speaks ``sendMessage`` as the real one does.

Sources (core.telegram.org/bots/api):
- "Making requests": ``POST /bot<token>/<METHOD_NAME>``; the answer is a JSON object with ``ok``; on
  success the value is in ``result``; on failure ``error_code`` and ``description``, and sometimes
  ``parameters`` ("ResponseParameters": ``retry_after``, ``migrate_to_chat_id``).
- "sendMessage": ``chat_id`` (integer or ``@channelusername``) and ``text`` (1-4096 characters after
  entity parsing) are required; returns the sent "Message" (``message_id``, ``date``, ``chat``, ``text``).
- Status codes and descriptions used below are the ones the Bot API answers in practice: 401
  "Unauthorized" for a bad token, 400 "Bad Request: chat not found" / "…: message text is empty" /
  "…: message is too long", 403 "Forbidden: bot was blocked by the user", 429 "Too Many Requests: retry
  after N" with ``parameters.retry_after`` (Bot FAQ, "My bot is hitting limits").
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from tests.fakes.http import FakeServer, Response, json_response


def _error(code: int, description: str, parameters: dict[str, Any] | None = None) -> Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return json_response(code, body)


class FakeTelegram(FakeServer):
    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.lock = threading.Lock()
        self.chats: dict[str, str] = {}  # chat id -> type ("private", "group", "supergroup", "channel")
        self.blocked: set[str] = set()
        self.messages: list[dict[str, Any]] = []
        self.flood: list[int] = []  # queued retry_after values: the next sends answer 429
        self.hang_on_text: str | None = None  # record a message containing this, then hang
        self.hanging = threading.Event()
        self.release = threading.Event()
        self._next_id = 1

    def texts(self) -> list[str]:
        with self.lock:
            return [m["text"] for m in self.messages]

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes, headers: dict[str, str]
    ) -> Response:
        # POST /bot<token>/sendMessage — https://core.telegram.org/bots/api#making-requests and
        # https://core.telegram.org/bots/api#sendmessage; any other method 404
        if not path.startswith("/bot") or "/" not in path[4:]:
            return _error(404, "Not Found")
        token, api_method = path[4:].split("/", 1)
        if token != self.token:
            return _error(401, "Unauthorized")
        if api_method != "sendMessage":
            return _error(404, "Not Found: method not found")
        try:
            args = json.loads(body or b"{}")
        except ValueError:
            return _error(400, "Bad Request: can't parse JSON")
        chat_id = str(args.get("chat_id", ""))
        text = args.get("text")
        with self.lock:
            if self.flood:
                wait = self.flood.pop(0)
                return _error(429, f"Too Many Requests: retry after {wait}", {"retry_after": wait})
            if not chat_id:
                return _error(400, "Bad Request: chat_id is empty")
            if chat_id not in self.chats:
                return _error(400, "Bad Request: chat not found")
            if chat_id in self.blocked:
                return _error(403, "Forbidden: bot was blocked by the user")
            if not isinstance(text, str) or not text.strip():
                return _error(400, "Bad Request: message text is empty")
            if len(text) > 4096:
                return _error(400, "Bad Request: message is too long")
            message = {
                "message_id": self._next_id,
                "date": int(time.time()),
                "chat": {
                    "id": int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id,
                    "type": self.chats[chat_id],
                },
                "text": text,
            }
            self._next_id += 1
            self.messages.append(message)
        if self.hang_on_text and self.hang_on_text in text:
            # The message is sent (as Telegram would have) but the answer never comes back.
            self.hanging.set()
            self.release.wait()
        return json_response(200, {"ok": True, "result": message})
