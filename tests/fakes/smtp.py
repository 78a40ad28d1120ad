"""A local SMTP server (aiosmtpd) that keeps what it accepts and refuses unknown mailboxes.

Replies follow RFC 5321: 250 accepted; ``550 5.1.1`` for a mailbox that does not exist; a queued
temporary failure answers ``451 4.3.0`` to the next RCPT (greylisting-like).
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class _Handler:
    def __init__(self, fake: FakeSmtp) -> None:
        self.fake = fake

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        with self.fake.lock:
            if self.fake.temporary_failures:
                self.fake.temporary_failures -= 1
                return "451 4.3.0 Try again later"
        if self.fake.mailboxes and address.lower() not in self.fake.mailboxes:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.fake.lock:
            self.fake.messages.append(msg)  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


class FakeSmtp:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[EmailMessage] = []
        self.mailboxes: set[str] = set()  # empty: every address exists
        self.temporary_failures = 0
        # aiosmtpd's controller checks it is up by connecting to its port, so the port is chosen first.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)

    def config(self) -> dict[str, Any]:
        return {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.port),
            "SMTP_SECURITY": "none",
            "SMTP_FROM": "hub@otkuda.test",
        }

    def start(self) -> FakeSmtp:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
