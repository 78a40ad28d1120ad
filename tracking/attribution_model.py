"""The call-attribution model: how likely each hypothesis is to have made a call to a pool number.

Every session that was shown a number is a source of calls to it, at a rate that depends on where the
visitor is: on the page (a steady rate while the page is alive), or gone for ``gap`` seconds (a mixture of
"soon after leaving", "within a couple of hours" and "hours or a day later", the number written down).
A caller who called before brings the sessions behind that earlier call (a redial of a missed call, a
second call about the same order), and anyone else can dial the number too (a misdial, the number passed
on): the *outsider*, at a constant rate per number. A hypothesis's posterior probability is its rate
divided by the sum of all rates, so the probabilities are meant literally: among calls given 0.8, eight
in ten are right. The parameters below were fitted by ``bench/attribution.py --fit`` against the
simulator's ground truth (maximum likelihood of the true hypothesis, then Platt scaling of the resulting
confidences) and are versioned: each call stores the version that attributed it. The outsider's rate is
set by hand to grow with the number's exposure (holds in the look-back): the simulated misdials are too few
to tell a constant rate from an exposure-driven one, and a constant rate would make a sparse pool's only
late caller look like a misdial.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

MODEL_VERSION = "2026.11-3"


@dataclass(frozen=True)
class Params:
    # Calls per second from a session whose page is alive (heard from within the heartbeat period).
    on_page_rate: float = 2.42e-4
    # Mobile visitors' on-page rate relative to desktop (tap-to-call, but shorter, more distracted visits).
    mobile_factor: float = 0.656
    # After the page went quiet: expected calls of a session "soon after" (exponential, mean soon_tau s) ...
    soon_share: float = 0.0224
    soon_tau: float = 246.0
    # ... "within a couple of hours" (log-normal with median mid_median s and shape mid_sigma) ...
    mid_share: float = 0.00754
    mid_median: float = 2424.0
    mid_sigma: float = 0.658
    # ... and "hours or a day later".
    late_share: float = 0.0149
    late_median: float = 23480.0
    late_sigma: float = 0.968
    # The caller's earlier calls were tied to this visitor (cookie) / to another visitor. The fit drives the
    # first into the thousands (in the simulation a phone is one visitor's); it is capped because an earlier
    # call tied to the wrong visitor would otherwise decide every later call of that caller.
    same_visitor_factor: float = 50.0
    other_visitor_factor: float = 1.0
    # Calls per second that repeat an earlier call of the same caller (a redial), exponential decay; capped
    # like the caller link (the fit gives ~300: in the simulation a repeat caller nearly always redials).
    # A repeat to another of the client's numbers than the earlier call is much less likely the same session
    # (the visitor came back and was shown a new number).
    redial_share: float = 30.0
    redial_tau: float = 1430.0
    other_number_factor: float = 0.05
    # Calls per second to a number from people who are no hypothesis (misdials, the number passed on or
    # found in a browser's history): a little for any number, more the more people were shown it.
    outsider_base: float = 2e-7
    outsider_per_hold: float = 0.0026
    # Platt scaling of the raw posteriors (a, b, c: sigmoid(a * logit(p) + b + c * busyness(holds))), fitted
    # on another seed of the same simulation: the rates are a simplification, and this keeps the stated
    # confidences honest where they are not; how crowded the number's history is shifts that for the
    # channel (a third term for the session made the evaluation seed worse, so the session's has two).
    # Calls whose true session is no hypothesis count in the fit as misses: the hub can only name them wrong.
    session_calibration: tuple[float, ...] = (0.9224, 0.03371)
    channel_calibration: tuple[float, ...] = (0.8181, -1.222, 1.603)
    # A session is named only when it is at least this likely (its calibrated probability, the outsider's
    # share counted against it); below, the call is "channel known, visit uncertain" when its channel is at
    # least channel_threshold likely, else unknown.
    session_threshold: float = 0.1
    channel_threshold: float = 0.15

    def with_values(self, **values: Any) -> Params:
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
    "other_number_factor",
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


def logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def busyness(holds: int) -> float:
    """How crowded the number's history is (holds in the look-back), as the calibration's second input."""
    return math.log1p(max(holds, 0) / 50)


def calibrated(p: float, ab: tuple[float, ...], holds: int = 0) -> float:
    """The probability a raw posterior ``p`` really stands for, by the fitted Platt scaling ``ab``:
    sigmoid(a * logit(p) + b [+ c * busyness(holds)])."""
    z = ab[0] * logit(p) + ab[1]
    if len(ab) > 2:
        z += ab[2] * busyness(holds)
    return 1 / (1 + math.exp(-z))


def outsider_rate(holds: int, p: Params = PARAMS) -> float:
    """Calls per second to a number held ``holds`` times in the look-back, from no hypothesis."""
    return p.outsider_base + p.outsider_per_hold * holds / HOLDS_WINDOW_SECONDS


def session_rate(features: dict[str, Any], p: Params = PARAMS) -> float:
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
    for seconds, weight, *same_number in earlier:
        factor = 1.0 if not same_number or same_number[0] else p.other_number_factor
        rate += factor * p.redial_share * weight * math.exp(-seconds / p.redial_tau) / p.redial_tau
    return rate
