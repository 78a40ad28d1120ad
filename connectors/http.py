"""The connectors' one way to make an HTTP request: session, timeout, throttle and the error decision.

Each API client builds an ``ApiClient`` with how it authenticates, how its error bodies read
(``read_problem``) and the rules particular to that API; a refused answer is run through the client's rules,
then the common ones, and the first rule that matches decides: retry later, refresh the token, re-authorise
the connection, or give up on the request. The connector then decides what that means for each item.
"""

from __future__ import annotations

import enum
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import urlsplit

import requests

from connectors.base import AuthRevoked, TokenExpired
from connectors.pacing import Throttle, retry_after_header


class Verdict(enum.StrEnum):
    RETRY = "retry"  # passing: quota, overload, network; ask again later
    TOKEN_EXPIRED = "token_expired"  # noqa: S105  (a verdict name) the access token was refused: refresh it and repeat
    REVOKED = "revoked"  # the grant or the account is gone: a person has to re-authorise
    DEAD = "dead"  # this request will never succeed as it is


@dataclass(frozen=True)
class Problem:
    """A refused answer as the API explains it. ``status`` is 0 when no HTTP answer arrived."""

    status: int
    code: str = ""  # the API's own error code or type, as text ("quota_requests_by_uid", "52")
    message: str = ""
    body: Any = None  # the decoded JSON body, when there was one
    retry_after: float | None = None


@dataclass(frozen=True)
class Rule:
    """``verdict`` when the status is one of ``statuses`` (any status when empty), the code one of
    ``codes`` (any code when empty) and ``when`` (if given) agrees."""

    verdict: Verdict
    statuses: frozenset[int] = frozenset()
    codes: frozenset[str] = frozenset()
    when: Callable[[Problem], bool] | None = None
    retry_after: float | None = None  # the wait when the answer names none

    def matches(self, problem: Problem) -> bool:
        return (
            (not self.statuses or problem.status in self.statuses)
            and (not self.codes or problem.code in self.codes)
            and (self.when is None or self.when(problem))
        )


def rule(
    verdict: Verdict,
    statuses: Iterable[int] = (),
    codes: Iterable[str | int] = (),
    *,
    when: Callable[[Problem], bool] | None = None,
    retry_after: float | None = None,
) -> Rule:
    return Rule(verdict, frozenset(statuses), frozenset(str(c) for c in codes), when, retry_after)


# What holds for every HTTP API unless a client's own rules said otherwise first.
COMMON_RULES: tuple[Rule, ...] = (
    rule(Verdict.RETRY, (0,)),
    rule(Verdict.TOKEN_EXPIRED, (401,)),
    rule(Verdict.RETRY, (429,), retry_after=1.0),
    rule(Verdict.RETRY, (500, 502, 503, 504)),
)


class ApiError(Exception):
    """A request that failed and is not about the token. ``transient``: worth repeating later."""

    def __init__(self, problem: Problem, verdict: Verdict) -> None:
        super().__init__(f"{problem.status} {problem.code}: {problem.message}".replace(" : ", ": "))
        self.problem = problem
        self.verdict = verdict
        self.status = problem.status
        self.code = problem.code
        self.message = problem.message
        self.retry_after = problem.retry_after

    @property
    def transient(self) -> bool:
        return self.verdict == Verdict.RETRY


def decide(problem: Problem, rules: Iterable[Rule]) -> tuple[Verdict, Problem]:
    """The first matching rule's verdict (DEAD when none matches), with its default wait filled in."""
    for candidate in (*rules, *COMMON_RULES):
        if candidate.matches(problem):
            if problem.retry_after is None and candidate.retry_after is not None:
                problem = Problem(
                    problem.status, problem.code, problem.message, problem.body, candidate.retry_after
                )
            return candidate.verdict, problem
    return Verdict.DEAD, problem


def raise_for(problem: Problem, rules: Iterable[Rule], error: type[ApiError] = ApiError) -> NoReturn:
    """Turn a refused answer into the exception its verdict calls for."""
    verdict, problem = decide(problem, rules)
    if verdict == Verdict.TOKEN_EXPIRED:
        raise TokenExpired(problem.message or f"HTTP {problem.status}")
    if verdict == Verdict.REVOKED:
        raise AuthRevoked(f"{problem.status} {problem.code}: {problem.message}")
    raise error(problem, verdict)


def json_body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


@dataclass
class ApiClient:
    """One API's requests: base URL, auth headers, throttle, timeout and error rules."""

    base: str
    headers: Callable[[], Mapping[str, str]]  # per request, so a refreshed token is picked up
    read_problem: Callable[[requests.Response], Problem]
    rules: tuple[Rule, ...] = ()
    error: type[ApiError] = ApiError
    throttle: Throttle | None = None
    timeout: float = 60.0
    ok_statuses: frozenset[int] = frozenset({200})
    sleep: Callable[[float], None] = time.sleep
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.base = self.base.rstrip("/")

    def send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """The answer when its status is one of ``ok_statuses``; raises what the rules decide otherwise."""
        if self.throttle is not None:
            self.throttle.wait()
        headers = {**self.headers(), **kwargs.pop("headers", {})}
        url = path if path.startswith("http") else f"{self.base}{path}"
        try:
            response = self.session.request(method, url, headers=headers, timeout=self.timeout, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise_for(Problem(0, "network", type(exc).__name__), self.rules, self.error)
        if response.status_code in self.ok_statuses:
            return response
        problem = self.read_problem(response)
        if problem.retry_after is None:
            header = retry_after_header(response)
            if header is not None:
                problem = Problem(problem.status, problem.code, problem.message, problem.body, header)
        raise_for(problem, self.rules, self.error)


class KeptSession(requests.Session):
    """A session kept for one account between runs.

    requests reads the proxy and CA settings from the environment on every request (a scan of the whole
    environment, twice), which was a good part of the CPU a small push costs; a kept session reads them
    once per origin, as a process's environment does not change under it. A request that passes its own
    proxies, verify, cert or stream goes the ordinary way.
    """

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[str, dict[str, Any]] = {}

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        if proxies or stream is not None or verify is not None or cert is not None:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(str(url))
        origin = f"{parts.scheme}://{parts.netloc}"
        settings = self._environment.get(origin)
        if settings is None:
            settings = super().merge_environment_settings(url, {}, None, None, None)
            self._environment[origin] = settings
        return {**settings, "proxies": dict(settings["proxies"] or {})}


class SessionShelf:
    """``requests.Session`` objects kept between runs, one per key (an account at a destination), so that
    the next run to the same account reuses its open connection instead of connecting (and shaking hands
    over TLS) again.

    A session is taken for the exclusive use of one run and given back after it; two runs for the same key
    at once get two sessions. A session belongs to one key only, so cookies an API sets for one account are
    never sent for another (the token itself goes with each request, never on the session). At most
    ``keep`` sessions are kept; the least recently used and those idle longer than ``idle`` seconds are
    closed.
    """

    def __init__(
        self, keep: int = 256, idle: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.keep = keep
        self.idle = idle
        self._clock = clock
        self._lock = threading.Lock()
        self._shelf: OrderedDict[Hashable, tuple[requests.Session, float]] = OrderedDict()

    def take(self, key: Hashable) -> requests.Session:
        with self._lock:
            kept = self._shelf.pop(key, None)
        if kept is not None:
            session, since = kept
            if self._clock() - since <= self.idle:
                return session
            session.close()
        return KeptSession()

    def give_back(self, key: Hashable, session: requests.Session, *, keep: bool = True) -> None:
        """Keep ``session`` for the next run with ``key``; ``keep=False`` closes it (the run broke off)."""
        if not keep:
            session.close()
            return
        now = self._clock()
        closing: list[requests.Session] = []
        with self._lock:
            old = self._shelf.pop(key, None)
            if old is not None:
                closing.append(old[0])
            self._shelf[key] = (session, now)
            while len(self._shelf) > self.keep:
                closing.append(self._shelf.popitem(last=False)[1][0])
            while self._shelf:
                first = next(iter(self._shelf.values()))
                if now - first[1] <= self.idle:
                    break
                closing.append(self._shelf.popitem(last=False)[1][0])
        for s in closing:
            s.close()

    def __len__(self) -> int:
        return len(self._shelf)

    def close(self) -> None:
        with self._lock:
            kept = list(self._shelf.values())
            self._shelf.clear()
        for session, _ in kept:
            session.close()
