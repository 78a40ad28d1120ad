"""The connectors' one way to make an HTTP request: session, timeout, throttle and the error decision.

Each API client builds an ``ApiClient`` with how it authenticates, how its error bodies read
(``read_problem``) and the rules particular to that API; a refused answer is run through the client's rules,
then the common ones, and the first rule that matches decides: retry later, refresh the token, re-authorise
the connection, or give up on the request. The connector then decides what that means for each item.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

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
