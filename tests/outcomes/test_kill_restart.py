"""A delivery worker (``otkuda worker``) killed mid-send and restarted: one notification and one processed
webhook per event."""

from __future__ import annotations

import collections
import datetime as dt
import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from jobs.deliver import IN_DOUBT_NOT_RESENT
from tests import factories as h
from tests.conftest import TEST_ENCRYPTION_KEY
from tests.factories import make_tenant
from tests.fakes.telegram import FakeTelegram
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.outcomes.test_target_calls import _call
from tests.pipeline.test_scale_out import ROOT, _start
from tests.pipeline.test_scale_out import _wait_for as wait_for
from tracking.crypto import SecretBox
from tracking.db import utcnow
from tracking.models import Connection, Delivery, DeliveryStatus

BOT = "777:kill-test"
CHAT = "4242"
SECRET = "whsec_kill"


def _env(database_url: str, tg: FakeTelegram, tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "OTKUDA_DATABASE_URL": database_url,
            "OTKUDA_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
            "OTKUDA_INSTANCE_DIR": str(tmp_path / "instance"),
            "OTKUDA_BASE_URL": "http://hub.test",
            # A killed worker's hold on its destination lapses quickly, so the next one takes it over.
            "OTKUDA_DELIVERY_HOLD_SECONDS": "2",
            "OTKUDA_WORKER_POLL_SECONDS": "0.2",
            "OTKUDA_TELEGRAM_BOT_TOKEN": BOT,
            "OTKUDA_TELEGRAM_API_BASE": tg.url,
            "OTKUDA_WEBHOOK_ALLOW_PRIVATE": "1",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return _start(["worker", "--threads", "1"], env, log)


def _wait(what: str, check, proc: subprocess.Popen[bytes]) -> None:  # type: ignore[no-untyped-def]
    wait_for(what, check, [proc])


@pytest.mark.slow
def test_killed_twice_mid_send_each_event_is_notified_once_and_processed_once(
    db, database_url, tmp_path, outbox
) -> None:
    tg = FakeTelegram(BOT).start()
    tg.chats[CHAT] = "private"
    hook = WebhookReceiver(SECRET).start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        t = make_tenant(db)
        box = SecretBox(TEST_ENCRYPTION_KEY)
        # The webhook comes first (lower id), so the worker reaches it before the Telegram chat.
        webhook = Connection(
            agency_id=t.agency.id,
            client_id=t.client.id,
            provider="webhook",
            connectors=["webhook"],
            account={"url": hook.url + "/in"},
            settings={"events": ["call.finalised"]},
            access_token_enc=box.seal(SECRET),
        )
        chat = Connection(
            agency_id=t.agency.id,
            client_id=t.client.id,
            provider="telegram",
            connectors=["telegram"],
            account={"chat_id": CHAT},
            settings={"events": ["missed_call"]},
        )
        db.add_all([webhook, chat])
        db.commit()
        integ = h.make_integration(db, t, "generic", {"secret": "s"})
        at = utcnow() - dt.timedelta(minutes=10)
        calls = [
            _call(db, integ, f"k{i}", at=at + dt.timedelta(minutes=i), talk=0, caller=f"+7900000000{i}")
            for i in range(3)
        ]
        middle = calls[1]
        hook.hang_on = f"otkuda-call-{middle.id}"
        tg.hang_on_text = middle.caller
        env = _env(database_url, tg, tmp_path)
        log = tmp_path / "worker.log"

        first = _worker(env, log)
        procs.append(first)
        _wait("the webhook receiver to hang", hook.hanging.is_set, first)
        first.kill()  # SIGKILL while the middle event's answer is outstanding
        first.wait()
        hook.hang_on = None
        hook.release.set()

        second = _worker(env, log)
        procs.append(second)
        _wait("Telegram to hang", tg.hanging.is_set, second)
        second.kill()  # again, while the middle notification's answer is outstanding
        second.wait()
        tg.hang_on_text = None
        tg.release.set()

        third = _worker(env, log)
        procs.append(third)

        def settled() -> bool:
            db.expire_all()
            return all(
                d.status in (DeliveryStatus.DONE, DeliveryStatus.SKIPPED)
                for d in db.scalars(select(Delivery))
            )

        _wait("every delivery to settle", settled, third)

        # Telegram: one message per missed call, the interrupted one included, and none twice.
        texts = collections.Counter(m["text"].splitlines()[0] for m in tg.messages)
        assert texts == {f"Missed call from {c.caller}": 1 for c in calls}
        rows = {d.key: d for d in db.scalars(select(Delivery).where(Delivery.connector == "telegram"))}
        interrupted = rows[f"notify-missed-{middle.id}"]
        assert interrupted.status == DeliveryStatus.SKIPPED and interrupted.last_error == IN_DOUBT_NOT_RESENT
        assert all(
            rows[f"notify-missed-{c.id}"].status == DeliveryStatus.DONE for c in calls if c is not middle
        )

        # Webhooks: each event processed once; only the interrupted one was sent again, with the same id.
        assert hook.counts() == {f"otkuda-call-{c.id}": 1 for c in calls}
        sent = collections.Counter(r["headers"]["Otkuda-Event-Id"] for r in hook.requests)
        assert sent == {
            f"otkuda-call-{calls[0].id}": 1,
            f"otkuda-call-{middle.id}": 2,
            f"otkuda-call-{calls[2].id}": 1,
        }
        assert all(r["verified"] for r in hook.requests)
        assert all(
            d.status == DeliveryStatus.DONE
            for d in db.scalars(select(Delivery).where(Delivery.connector == "webhook"))
        )
    finally:
        tg.release.set()
        hook.release.set()
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        tg.stop()
        hook.stop()
