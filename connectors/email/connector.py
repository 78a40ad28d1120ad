"""Sending notifications as e-mail with the standard library's SMTP client.

SMTP replies → outcomes (RFC 5321 §4.2.1): 2xx sent; 4xx (greylisting, a full mailbox, "try later") retry;
5xx (no such mailbox, refused, authentication failed) dead with the server's words; no connection retry.
The Message-ID is derived from the notification's key, so a mail client shows a second copy as the same
message.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate

from connectors.base import (
    AccountContext,
    DeliveryItem,
    DeliveryOutcome,
    DeliveryResult,
    ItemKind,
    PushOnly,
    RateLimit,
)

TIMEOUT = 30.0


class EmailConnector(PushOnly):
    name = "email"
    max_batch = 1
    # Mail cannot be looked up once handed over: an interrupted send is not repeated (see jobs.deliver).
    resend_in_doubt = False

    def __init__(self, ctx: AccountContext) -> None:
        self.ctx = ctx
        extra = ctx.extra
        self.host = extra.get("host", "")
        self.port = int(extra.get("port") or 587)
        self.security = (extra.get("security") or "starttls").lower()
        self.user = extra.get("user", "")
        self._password = extra.get("password", "")
        self.sender = extra.get("from") or "otkuda@localhost"

    def rate_limit(self) -> RateLimit:
        return RateLimit(per_second=2.0, burst=5)

    def message(self, item: DeliveryItem) -> EmailMessage:
        p = item.payload
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = str(self.ctx.account.get("to", ""))
        msg["Subject"] = str(p.get("subject") or "Otkuda")
        msg["Date"] = formatdate(localtime=False)
        domain = self.sender.rsplit("@", 1)[-1] or "otkuda"
        msg["Message-ID"] = f"<{item.key}.{self.ctx.connection_id}@{domain}>"
        text = str(p.get("text") or "")
        if p.get("path"):
            text += f"\n\n{self.ctx.hub_base_url}{p['path']}"
        msg.set_content(text)
        return msg

    def _smtp(self) -> smtplib.SMTP:
        if self.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=TIMEOUT, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=TIMEOUT)
            if self.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
        if self.user:
            smtp.login(self.user, self._password)
        return smtp

    def push(self, items: Sequence[DeliveryItem]) -> list[DeliveryResult]:
        if not self.host:
            return [
                DeliveryResult(i.id, DeliveryOutcome.DEAD, error="SMTP is not configured (OTKUDA_SMTP_HOST)")
                for i in items
            ]
        wrong = [i for i in items if i.kind != ItemKind.NOTIFICATION]
        results = [DeliveryResult(i.id, DeliveryOutcome.SKIPPED, error="not a notification") for i in wrong]
        todo = [i for i in items if i.kind == ItemKind.NOTIFICATION]
        if not todo:
            return results
        try:
            smtp = self._smtp()
        except smtplib.SMTPResponseException as exc:
            return results + [self._refused(i, exc.smtp_code, exc.smtp_error) for i in todo]
        except (OSError, smtplib.SMTPException) as exc:
            return results + [
                DeliveryResult(
                    i.id, DeliveryOutcome.RETRY, error=f"SMTP server unreachable: {type(exc).__name__}"
                )
                for i in todo
            ]
        try:
            for item in todo:
                results.append(self._send(smtp, item))
        finally:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                smtp.quit()
        return results

    def _refused(self, item: DeliveryItem, code: int, error: bytes | str) -> DeliveryResult:
        text = error.decode(errors="replace") if isinstance(error, bytes) else str(error)
        outcome = DeliveryOutcome.RETRY if 400 <= code < 500 else DeliveryOutcome.DEAD
        return DeliveryResult(item.id, outcome, error=f"SMTP {code}: {text[:300]}")

    def _send(self, smtp: smtplib.SMTP, item: DeliveryItem) -> DeliveryResult:
        msg = self.message(item)
        try:
            refused = smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            code, error = next(iter(exc.recipients.values()))
            return self._refused(item, code, error)
        except smtplib.SMTPResponseException as exc:
            return self._refused(item, exc.smtp_code, exc.smtp_error)
        except (OSError, smtplib.SMTPException) as exc:
            return DeliveryResult(item.id, DeliveryOutcome.RETRY, error=f"SMTP: {type(exc).__name__}")
        if refused:
            code, error = next(iter(refused.values()))
            return self._refused(item, code, error)
        return DeliveryResult(item.id, DeliveryOutcome.DONE, external_id=msg["Message-ID"])
