"""What the Twilio voice webhook needs when the database is down or too slow to answer in time.

A caller must still reach the business. So the hub keeps, beside the database, a snapshot of what answering
a call takes: per Twilio integration key its (still encrypted) secrets, to check the signature, and each
number's forwarding destination. It is rewritten whenever numbers or integrations change. The voice event
of a call answered from the snapshot is spooled as a file and ingested once the database answers again
(the next Twilio request drains the spool; its status callbacks are also retried by Twilio).

Files are written to a temporary name and renamed, so a reader in another worker never sees half a file.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tracking.models import TelephonyIntegration, TrackingNumber
from tracking.telephony.base import ProviderEvent

log = logging.getLogger(__name__)

SNAPSHOT = "twilio-forwarding.json"
SPOOL = "twilio-spool"


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_snapshot(db: Session) -> dict[str, Any]:
    """Active Twilio integrations by key: encrypted secrets and the forwarding of each client number."""
    integrations = db.scalars(
        select(TelephonyIntegration).where(
            TelephonyIntegration.provider == "twilio", TelephonyIntegration.active.is_(True)
        )
    ).all()
    forwarding: dict[int, dict[str, str]] = {}
    client_ids = {i.client_id for i in integrations}
    if client_ids:
        rows = db.execute(
            select(TrackingNumber.client_id, TrackingNumber.e164, TrackingNumber.forward_to).where(
                TrackingNumber.client_id.in_(client_ids), TrackingNumber.forward_to.is_not(None)
            )
        )
        for client_id, e164, forward_to in rows:
            if forward_to:
                forwarding.setdefault(client_id, {})[e164] = forward_to
    return {
        i.integration_key: {"secrets": i.secrets_encrypted, "numbers": forwarding.get(i.client_id, {})}
        for i in integrations
    }


def write_snapshot(db: Session, directory: str | Path) -> None:
    _write_atomically(Path(directory) / SNAPSHOT, json.dumps(build_snapshot(db), sort_keys=True).encode())


def read_snapshot(directory: str | Path) -> dict[str, Any]:
    try:
        return json.loads((Path(directory) / SNAPSHOT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def spool(directory: str | Path, integration_key: str, event: ProviderEvent) -> None:
    """Keep an event the database could not take, to be ingested later."""
    body = json.dumps({"integration_key": integration_key, "event": event.data()}).encode()
    name = f"{event.occurred_at.timestamp():.6f}-{uuid.uuid4().hex}.json"
    _write_atomically(Path(directory) / SPOOL / name, body)


def drain(
    db: Session,
    directory: str | Path,
    ingest: Callable[[Session, TelephonyIntegration, ProviderEvent], Any],
) -> int:
    """Ingest spooled events (oldest first), committing each; returns how many were taken.

    Concurrent drains in several workers are harmless: ingestion recognises a repeated event.
    """
    folder = Path(directory) / SPOOL
    if not folder.is_dir():
        return 0
    taken = 0
    for path in sorted(folder.glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue  # another worker took it
        except ValueError:
            log.warning("unreadable spooled call event %s left in place", path.name)
            continue
        integ = db.scalar(
            select(TelephonyIntegration).where(
                TelephonyIntegration.integration_key == record.get("integration_key")
            )
        )
        if integ is not None:
            ingest(db, integ, ProviderEvent.from_data(record["event"]))
            db.commit()
            taken += 1
        path.unlink(missing_ok=True)
    return taken
