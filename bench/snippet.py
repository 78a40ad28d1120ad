"""Size of the served snippet, and its swap time on a large gallery page against a baseline page in Chromium.

The page is the theme page of ``tests/snippet_gallery`` (header, footer, split, typeset and must-stay numbers,
prices, registration numbers) repeated ``--copies`` times. Each run refills the page's content from a
``<template>`` and then, in one synchronous step,

* baseline (the same page without the snippet): walks every text node and reads it, the least any script
  that looks for numbers on a page must do;
* snippet: the snippet's MutationObserver callback for that new content, which finds and swaps every
  number in its own shape, the ``tel:`` links and ``data-phone`` attributes.

The refill itself is timed on its own and left out of both. Medians over ``--runs`` runs after a warm-up,
and the ratio snippet / baseline. The hub is a small local server that serves the build ``hub.public`` makes
and answers the visit with ``hub.public.replace_rules`` for a site like the gallery's, so the figures are the
snippet's own DOM work and not the network's.

    python -m bench.snippet [--copies 100] [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.public import replace_rules, snippet_build, snippet_tag
from tests.browser import CHROMIUM
from tracking.models import Site

ROOT = Path(__file__).resolve().parent.parent
GALLERY_PAGE = ROOT / "tests" / "snippet_gallery" / "theme.html"
SITE_KEY = "bench-site"
TRACKING = "+74997000123"

# In snippet mode the swap runs in the snippet's MutationObserver callback, a microtask queued by the
# refill and so run before the awaited continuation: the way any new content on a page is swapped.
TIMED = """async (mode) => {
  const box = document.getElementById('box'), tpl = document.getElementById('tpl');
  const t0 = performance.now();
  box.replaceChildren(tpl.content.cloneNode(true));
  const t1 = performance.now();
  if (mode === 'snippet') await null;
  else {
    const tw = document.createTreeWalker(document.body, 4);
    let n, chars = 0;
    while ((n = tw.nextNode())) chars += n.nodeValue.length;
    window.chars = chars;
  }
  const t2 = performance.now();
  return [t1 - t0, t2 - t1];
}"""


def _body(copies: int) -> str:
    html = GALLERY_PAGE.read_text(encoding="utf-8")
    body = html[html.index("<body>") + len("<body>") : html.index("<script>window.galleryDone")]
    return body * copies


def _page(tag: str, copies: int) -> str:
    return (
        f'<!doctype html><html lang="ru"><head><meta charset="utf-8"><title>bench</title>{tag}</head>'
        f'<body><template id="tpl">{_body(copies)}</template><div id="box"></div></body></html>'
    )


def _visit_answer() -> bytes:
    site = Site(
        replace_numbers=["+74951234567", "+78005553535"],
        display_template="+7 (XXX) XXX-XX-XX",
        swap_attributes=["data-phone"],
        swap_local_numbers=False,
    )
    return json.dumps(
        {
            "session_id": "bench",
            "live": True,
            "hold_until": None,
            "heartbeat_seconds": 3600,
            "number": {"e164": TRACKING, "display": "+7 (499) 700-01-23"},
            "replace": replace_rules(site, TRACKING),
            "attributes": site.swap_attributes,
        }
    ).encode()


def _serve(pages: dict[str, str]) -> tuple[ThreadingHTTPServer, str]:
    build, answer = snippet_build(), _visit_answer()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin") or "*")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/t/v1/otkuda.js":
                self._send(200, build.body, "application/javascript")
            elif self.path in pages:
                self._send(200, pages[self.path].encode(), "text/html; charset=utf-8")
            else:
                self._send(404, b"", "text/plain")

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._send(200, answer if self.path.endswith("/visit") else b"{}", "application/json")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=100)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    pages: dict[str, str] = {}
    server, url = _serve(pages)
    pages["/plain"] = _page("", args.copies)
    pages["/snippet"] = _page(snippet_tag(url, SITE_KEY), args.copies)
    build = snippet_build()
    sizes = f"{len(build.body)} B minified, {len(build.gzip)} B gzip, {len(build.brotli)} B br"
    print(f"snippet {build.path}: {sizes}")
    results: dict[str, list[tuple[float, float]]] = {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            for mode in ("baseline", "snippet"):
                page = browser.new_page()
                page.goto(f"{url}/{'plain' if mode == 'baseline' else 'snippet'}")
                if mode == "snippet":
                    page.wait_for_function("window.Otkuda && Otkuda.status === 'ready'")
                page.evaluate(TIMED, mode)  # warm-up
                results[mode] = [tuple(page.evaluate(TIMED, mode)) for _ in range(args.runs)]
                if mode == "snippet":
                    swapped = page.evaluate("document.querySelectorAll('a[href^=\"tel:84997\"]').length")
                    assert swapped == args.copies, f"expected {args.copies} swapped links, got {swapped}"
                page.close()
            browser.close()
    finally:
        server.shutdown()
    nodes = _body(1).count("<") * args.copies
    print(f"page: the gallery theme page x{args.copies} (~{nodes} tags), median of {args.runs} runs")
    print(f"{'step':<34}{'ms':>10}{'x baseline':>12}")
    base = statistics.median(r[1] for r in results["baseline"])
    for mode, label in (
        ("baseline", "baseline: walk all text nodes"),
        ("snippet", "snippet: swap the new content"),
    ):
        fill = statistics.median(r[0] for r in results[mode])
        work = statistics.median(r[1] for r in results[mode])
        print(f"{label:<34}{work:>10.2f}{work / base:>12.1f}   (refill {fill:.2f} ms, not counted)")


if __name__ == "__main__":
    main()
