"""One local HTTP server speaking Yandex OAuth, the Metrika Management API and the Direct Reports API.

The three live on disjoint paths, as on Yandex's own hosts, so one server (one base URL) can stand in for
all of them; each part keeps its own state and shares the token store, as one Yandex login does.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.fakes.metrika import FakeMetrika
from tests.fakes.oauth import YANDEX, AccessTokens, FakeOAuth
from tests.fakes.yandex_direct import FakeDirect


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status, headers, mimetype="application/json")


@dataclass
class FakeYandex:
    tokens: AccessTokens = field(default_factory=AccessTokens)
    oauth: FakeOAuth = field(init=False)
    metrika: FakeMetrika = field(init=False)
    direct: FakeDirect = field(init=False)
    base_url: str = ""
    log: list[tuple[str, str]] = field(default_factory=list)  # (method, path) of every request

    def __post_init__(self) -> None:
        self.oauth = FakeOAuth(YANDEX, self.tokens, owner="agency-login")
        self.metrika = FakeMetrika(self.tokens)
        self.direct = FakeDirect(self.tokens)

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.log.append((request.method, request.path))
        answer = self.oauth.handle(
            request.method,
            request.path,
            request.args.to_dict(flat=False),
            request.get_data(),
            dict(request.headers),
        )
        if answer is not None:
            status, headers, body = answer
            return Response(body, status, headers)(environ, start_response)
        for part in (self.metrika, self.direct):
            response = part.handle(request)
            if response is not None:
                return response(environ, start_response)
        return json_response(404, {"error": "not_found", "message": request.path})(environ, start_response)


@contextmanager
def running_yandex() -> Iterator[FakeYandex]:
    fake = FakeYandex()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server("127.0.0.1", 0, fake.wsgi, threaded=True)
    fake.base_url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        thread.join()
