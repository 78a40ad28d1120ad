"""The shared connector error table: client rules first, then the common ones, DEAD when none matches."""

from __future__ import annotations

import pytest

from connectors.base import AuthRevoked, TokenExpired
from connectors.http import ApiError, Problem, Verdict, decide, raise_for, rule

RULES = (
    rule(Verdict.RETRY, (403,), when=lambda p: "blocked" in p.message, retry_after=900.0),
    rule(Verdict.REVOKED, (403,)),
    rule(Verdict.RETRY, codes=(52, 1000)),
)


@pytest.mark.parametrize(
    ("problem", "verdict", "wait"),
    [
        (Problem(403, "", "Account is blocked"), Verdict.RETRY, 900.0),
        (
            Problem(403, "", "Account is blocked", retry_after=30.0),
            Verdict.RETRY,
            30.0,
        ),  # the server's wait wins
        (Problem(403, "", "Forbidden"), Verdict.REVOKED, None),
        (
            Problem(400, "52", "Server temporarily unavailable"),
            Verdict.RETRY,
            None,
        ),  # the code, whatever status
        (Problem(200, "1000", "Service temporarily unavailable"), Verdict.RETRY, None),
        (Problem(429, "", "Too many"), Verdict.RETRY, 1.0),  # common rule with its default wait
        (Problem(503, "", ""), Verdict.RETRY, None),
        (Problem(0, "network", "ConnectTimeout"), Verdict.RETRY, None),
        (Problem(401, "", "Unauthorized"), Verdict.TOKEN_EXPIRED, None),
        (Problem(400, "8000", "Invalid request"), Verdict.DEAD, None),  # nothing matches
    ],
)
def test_first_matching_rule_decides(problem: Problem, verdict: Verdict, wait: float | None) -> None:
    got, filled = decide(problem, RULES)
    assert (got, filled.retry_after) == (verdict, wait)


def test_verdicts_become_the_connector_exceptions() -> None:
    with pytest.raises(TokenExpired):
        raise_for(Problem(401, "", "Unauthorized"), RULES)
    with pytest.raises(AuthRevoked, match="403"):
        raise_for(Problem(403, "", "Forbidden"), RULES)
    with pytest.raises(ApiError) as info:
        raise_for(Problem(400, "52", "later"), RULES)
    assert info.value.transient and info.value.code == "52"
    with pytest.raises(ApiError) as info:
        raise_for(Problem(400, "8000", "bad"), RULES)
    assert not info.value.transient and info.value.verdict == Verdict.DEAD
