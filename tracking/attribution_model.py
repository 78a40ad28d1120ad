"""The call-attribution model: how likely each hypothesis is to have made a call to a pool number.

Every session that was shown a number is a source of calls to it, at a rate that depends on where the
visitor is: on the page (a steady rate while the page is alive), or gone for ``gap`` seconds (a mixture of
"soon after leaving", "within a couple of hours" and "hours or a day later", the number written down).
A caller who called before brings the sessions behind that earlier call (a redial of a missed call, a
second call about the same order), and anyone else can dial the number too (a misdial, the number passed
on): the *outsider*, at a constant rate per number. A hypothesis's posterior probability is its rate
divided by the sum of all rates, so the probabilities are meant literally: among calls given 0.8, eight
in ten are right. The parameters below were fitted by ``bench/attribution.py --fit`` against the
simulator's ground truth (maximum likelihood of the true hypothesis) and are versioned: each call stores
the version that attributed it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

MODEL_VERSION = "2026.11-2"


@dataclass(frozen=True)
class Params:
    # Calls per second from a session whose page is alive (heard from within the heartbeat period).
    on_page_rate: float = 1.62e-4
    # Mobile visitors tap the number: their on-page rate is this many times higher.
    mobile_factor: float = 1.22
    # After the page went quiet: expected calls of a session "soon after" (exponential, mean soon_tau s) ...
    soon_share: float = 0.031
    soon_tau: float = 215.0
    # ... "within a couple of hours" (log-normal with median mid_median s and shape mid_sigma) ...
    mid_share: float = 0.0100
    mid_median: float = 2278.0
    mid_sigma: float = 0.693
    # ... and "hours or a day later".
    late_share: float = 0.0190
    late_median: float = 23480.0
    late_sigma: float = 1.05
    # The caller's earlier calls were tied to this visitor (cookie) / to another visitor.
    same_visitor_factor: float = 110.0
    other_visitor_factor: float = 0.282
    # Calls per second that repeat an earlier call of the same caller (a redial), exponential decay.
    redial_share: float = 5.55
    redial_tau: float = 1004.0
    # Calls per second to a number from people who are no hypothesis (misdials, the number passed on or
    # found in a browser's history): a little for any number, more the more people were shown it.
    outsider_base: float = 1e-7
    outsider_per_hold: float = 0.01
    # A session is named only when it is at least this likely (and likelier than the outsider); below, the
    # call is "channel known, visit uncertain" when its channel is at least channel_threshold likely.
    session_threshold: float = 0.3
    channel_threshold: float = 0.3

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def with_values(self, **values: float) -> Params:
        return replace(self, **values)


PARAMS = Params()

# Parameters a fit may move (the thresholds are decisions, not likelihoods).
FITTED = (
    "on_page_rate",
    "mobile_factor",
    "soon_share",
    "soon_tau",
    "mid_share",
    "mid_median",
    "mid_sigma",
    "late_share",
    "late_median",
    "late_sigma",
    "same_visitor_factor",
    "other_visitor_factor",
    "redial_share",
    "redial_tau",
    "outsider_base",
    "outsider_per_hold",
)

# The outsider's rate counts the holds of the number over this many seconds (the holder look-back).
HOLDS_WINDOW_SECONDS = 48 * 3600.0


def _lognormal_pdf(x: float, median: float, sigma: float) -> float:
    if x <= 0:
        return 0.0
    z = (math.log(x) - math.log(median)) / sigma
    return math.exp(-0.5 * z * z) / (x * sigma * math.sqrt(2 * math.pi))


def after_leaving_rate(gap: float, p: Params = PARAMS) -> float:
    """Calls per second from a session whose page has been quiet for ``gap`` seconds."""
    gap = max(gap, 1.0)
    return (
        p.soon_share * math.exp(-gap / p.soon_tau) / p.soon_tau
        + p.mid_share * _lognormal_pdf(gap, p.mid_median, p.mid_sigma)
        + p.late_share * _lognormal_pdf(gap, p.late_median, p.late_sigma)
    )


def outsider_rate(holds: int, p: Params = PARAMS) -> float:
    """Calls per second to a number held ``holds`` times in the look-back, from no hypothesis."""
    return p.outsider_base + p.outsider_per_hold * holds / HOLDS_WINDOW_SECONDS


def session_rate(features: dict, p: Params = PARAMS) -> float:  # type: ignore[type-arg]
    """The rate of one hypothesis from the features stored with it (``call_candidates.reasons``)."""
    rate = 0.0
    if features.get("held"):
        if features.get("page_alive"):
            rate = p.on_page_rate * (p.mobile_factor if features.get("device") == "mobile" else 1.0)
        else:
            rate = after_leaving_rate(float(features.get("seconds_since_activity", 0)), p)
        link = features.get("caller_link")
        if link == "same":
            rate *= p.same_visitor_factor
        elif link == "other":
            rate *= p.other_visitor_factor
    earlier = features.get("earlier_calls") or ()
    for seconds, weight in earlier:
        rate += p.redial_share * weight * math.exp(-seconds / p.redial_tau) / p.redial_tau
    return rate
