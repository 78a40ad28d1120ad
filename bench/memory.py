"""Resident memory of a web worker and of the scheduler side with the Google Ads connector loaded.

Each role runs in a fresh interpreter so imports do not leak between them; a bare interpreter measured in
the same run is the baseline. Prints VmRSS (current) and VmHWM (peak) in MiB and the ratios.

    python bench/memory.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120  # seconds per role; the whole run stays under a few minutes

PROBE = """
import json, sys
def rss():
    fields = {}
    for line in open('/proc/self/status'):
        key, _, value = line.partition(':')
        if key in ('VmRSS', 'VmHWM'):
            fields[key] = int(value.split()[0]) / 1024
    return fields
"""

BASELINE = (
    PROBE
    + """
print(json.dumps({**rss(), 'google_ads_loaded': 'google.ads' in sys.modules}))
"""
)

WEB_WORKER = (
    PROBE
    + """
db = sys.argv[1]
from tracking.migrate import upgrade
upgrade(db)
from hub import create_app
app = create_app({'DATABASE_URL': db, 'TESTING': True})
from connectors import registry
provider = registry.load('google_ads').PROVIDER  # the connect page needs the description, not the client
client = app.test_client()
for path in ('/login', '/api/v1/openapi.json', '/login'):
    status = client.get(path).status_code
    assert status < 500, (path, status)
print(json.dumps({**rss(), 'google_ads_loaded': 'google.ads' in sys.modules}))
"""
)

SCHEDULER = (
    PROBE
    + """
db = sys.argv[1]
from apscheduler.schedulers.background import BackgroundScheduler
import tracking.models
from tracking.db import make_engine, make_session_factory
from connectors import registry
from connectors.base import AccountContext
engine = make_engine(db)
sessions = make_session_factory(engine)
scheduler = BackgroundScheduler(timezone='UTC')
scheduler.start(paused=True)
with_google = sys.argv[2] == 'google'
module = registry.load('google_ads')
ctx = AccountContext(
    connection_id=1, provider='google', api_base=module.PROVIDER.api_base,
    account={'customer_id': '123-456-7890'}, settings={}, access_token=lambda: 'unused',
    extra={'developer_token': 'unused'},
)
if with_google:
    connector = module.make_connector(ctx)
    connector.api.prepare()  # both services loaded, channel created (nothing is sent)
scheduler.shutdown(wait=False)
print(json.dumps({**rss(), 'google_ads_loaded': 'google.ads' in sys.modules}))
"""
)


def run(code: str, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{Path(tmp) / 'bench.db'}"
        base = run(BASELINE)
        web = run(WEB_WORKER, db)
        bare_sched = run(SCHEDULER, db, "plain")
        sched = run(SCHEDULER, db, "google")
    print(f"{'process':<34}{'RSS MiB':>10}{'peak MiB':>10}{'× bare':>9}  google.ads loaded")
    for name, m in (
        ("bare python (baseline)", base),
        ("web worker (app + 3 requests)", web),
        ("scheduler, no Google Ads client", bare_sched),
        ("scheduler + Google Ads client", sched),
    ):
        print(
            f"{name:<34}{m['VmRSS']:>10.1f}{m['VmHWM']:>10.1f}{m['VmRSS'] / base['VmRSS']:>9.2f}"
            f"  {m['google_ads_loaded']}"
        )
    print(f"scheduler / web worker RSS ratio: {sched['VmRSS'] / web['VmRSS']:.2f}")
    print(f"Google Ads client in the scheduler: +{sched['VmRSS'] - bare_sched['VmRSS']:.1f} MiB")
    print(f"(ran in {time.monotonic() - started:.1f} s)")
    if web["google_ads_loaded"]:
        sys.exit("a web worker imported google.ads")


if __name__ == "__main__":
    main()
