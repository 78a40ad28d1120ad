"""A fast traffic simulator for dynamic number pools, with ground truth, for pool sizing advice.

Visitors arrive through a daily cycle, stay a while (one or more tabs), sometimes come back, and some call:
most while on the page or within minutes of leaving, a few hours later. Numbers are handed out and held
like the hub does (a hold renewed by activity, cut short by the leave beacon plus a grace period, capped by
a maximum, the fallback number when every number is held), and each call is scored with
``tracking.attribution.score`` over the holders the hub would consider. It is an approximation in memory,
fast enough to try many pool sizes for ``otkuda pool-advice`` and the pool advice page; the accuracy the
hub really reaches is measured by ``bench/attribution.py``, which runs the hub itself.
"""

from __future__ import annotations

import bisect
import datetime as dt
import heapq
import math
import random
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tracking.allocation import heartbeat_seconds
from tracking.attribution import CLOCK_SKEW, HOLDER_LOOKBACK, Candidate, hold_features, score

T0 = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)  # a Monday, 00:00 UTC; only differences matter

# Share of a day's visits in each hour (a typical Russian B2C site: quiet at night, peak after lunch).
DAILY_SHAPE = [
    0.6, 0.4, 0.3, 0.25, 0.25, 0.35, 0.7, 1.3, 2.2, 3.3, 4.0, 4.3,
    4.3, 4.4, 4.5, 4.4, 4.2, 4.0, 3.8, 3.6, 3.3, 2.6, 1.8, 1.0,
]  # fmt: skip


@dataclass
class Traffic:
    """What drives the simulation; ``from_observed`` fills it from a client's real sessions and calls."""

    sessions_per_day: float = 2000.0
    hourly_shape: Sequence[float] = tuple(DAILY_SHAPE)
    channel_mix: dict[str, float] = field(
        default_factory=lambda: {
            "yandex_direct": 0.35,
            "google_ads": 0.2,
            "seo": 0.3,
            "social": 0.1,
            "email": 0.05,
        }
    )
    # Tab length, seconds: log-normal with this median and shape.
    tab_median_s: float = 150.0
    tab_sigma: float = 1.0
    # Share of visits with 2 and 3 tabs.
    extra_tabs: tuple[float, float] = (0.2, 0.07)
    returning_share: float = 0.2  # visits by a visitor seen in the last days
    beacon_share: float = 0.75  # leave beacons that arrive (mobile browsers often drop them)
    mobile_share: float = 0.6
    call_rate: float = 0.05  # calls per visit
    # Call timing: during the visit / within minutes after leaving / hours later.
    during_share: float = 0.55
    soon_share: float = 0.33
    soon_mean_s: float = 240.0
    late_median_s: float = 3 * 3600.0
    # Empirical samples override the parametric forms when given (seconds).
    session_lengths: Sequence[float] = ()
    call_delays: Sequence[float] = ()  # call time minus the session's last activity; <= 0 means "during"


@dataclass
class PoolConfig:
    size: int
    hold_seconds: int = 900
    grace_seconds: int = 300
    max_hold_seconds: int = 4 * 3600
    strategy: str = "lru"  # lru: longest-rested number first; mru: most recently released; random


@dataclass
class Result:
    calls: int
    session_accuracy: float
    channel_accuracy: float
    identified_share: float  # calls given a session at all
    fallback_rate: float  # sessions shown the fallback number
    utilisation: float  # time-averaged share of numbers held
    calibration_error: float  # expected calibration error of session confidence (10 bins)
    naive_session_accuracy: float  # "the latest holder of the number called", on the same calls
    mean_confidence: float
    bins: list[tuple[float, float, int]]  # (mean confidence, accuracy, count) per non-empty bin


@dataclass
class _Session:
    id: int
    visitor: str
    channel: str
    device: str
    start: dt.datetime
    last_seen: dt.datetime
    left: dt.datetime | None
    number: int | None = None  # None = fallback
    hold_start: dt.datetime | None = None
    hold_until: dt.datetime | None = None
    ended: dt.datetime | None = None


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _arrivals(rng: random.Random, traffic: Traffic, days: int) -> list[dt.datetime]:
    shape = list(traffic.hourly_shape)
    total = sum(shape)
    out: list[dt.datetime] = []
    for day in range(days):
        for hour, weight in enumerate(shape):
            rate = traffic.sessions_per_day * weight / total  # visits in this hour
            n = poisson(rng, rate)
            base = T0 + dt.timedelta(days=day, hours=hour)
            out.extend(base + dt.timedelta(seconds=rng.random() * 3600) for _ in range(n))
    return sorted(out)


def poisson(rng: random.Random, lam: float) -> int:
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    threshold, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= threshold:
            return k
        k += 1


def _length(rng: random.Random, traffic: Traffic) -> float:
    if traffic.session_lengths:
        return max(5.0, rng.choice(traffic.session_lengths))
    tabs = 1 + (rng.random() < traffic.extra_tabs[0]) + (rng.random() < traffic.extra_tabs[1])
    # Tabs open a little apart; the page is alive until the last one closes.
    ends = [
        rng.random() * 30 * i + rng.lognormvariate(math.log(traffic.tab_median_s), traffic.tab_sigma)
        for i in range(tabs)
    ]
    return max(5.0, max(ends))


def _call_time(rng: random.Random, traffic: Traffic, s: _Session) -> dt.datetime:
    if traffic.call_delays:
        delay = rng.choice(traffic.call_delays)
        if delay <= 0:
            return s.start + (s.last_seen - s.start) * rng.random()
        return s.last_seen + dt.timedelta(seconds=delay)
    u = rng.random()
    if u < traffic.during_share:
        return s.start + (s.last_seen - s.start) * rng.random()
    if u < traffic.during_share + traffic.soon_share:
        return s.last_seen + dt.timedelta(seconds=rng.expovariate(1 / traffic.soon_mean_s))
    return s.last_seen + dt.timedelta(seconds=rng.lognormvariate(math.log(traffic.late_median_s), 1.0))


def simulate(traffic: Traffic, pool: PoolConfig, days: int = 3, seed: int = 1) -> Result:
    rng = random.Random(seed)
    hold = dt.timedelta(seconds=pool.hold_seconds)
    grace = dt.timedelta(seconds=pool.grace_seconds)
    max_hold = dt.timedelta(seconds=pool.max_hold_seconds)

    # --- visits and allocation ---------------------------------------------------------------------------
    free_at = [T0 - dt.timedelta(days=1) + dt.timedelta(seconds=i) for i in range(pool.size)]
    busy: list[tuple[dt.datetime, int]] = []  # (free from, number)
    free: set[int] = set(range(pool.size))
    sessions: list[_Session] = []
    holds_by_number: dict[int, list[_Session]] = defaultdict(list)
    fallback_shown: list[_Session] = []
    visitors: deque[tuple[dt.datetime, str]] = deque()
    held_seconds = 0.0
    for n, start in enumerate(_arrivals(rng, traffic, days)):
        while busy and busy[0][0] <= start:
            t, num = heapq.heappop(busy)
            free.add(num)
            free_at[num] = t
        while visitors and start - visitors[0][0] > dt.timedelta(days=3):
            visitors.popleft()
        returning = visitors and rng.random() < traffic.returning_share
        visitor = visitors[rng.randrange(len(visitors))][1] if returning else f"v{n}"
        visitors.append((start, visitor))
        length = dt.timedelta(seconds=_length(rng, traffic))
        last_seen = start + length
        beacon = rng.random() < traffic.beacon_share
        s = _Session(
            id=n,
            visitor=visitor,
            channel=_pick(rng, traffic.channel_mix),
            device="mobile" if rng.random() < traffic.mobile_share else "desktop",
            start=start,
            last_seen=last_seen,
            left=last_seen if beacon else None,
        )
        sessions.append(s)
        if not free:
            fallback_shown.append(s)
            continue
        if pool.strategy == "lru":
            num = min(free, key=lambda i: free_at[i])
        elif pool.strategy == "mru":
            num = max(free, key=lambda i: free_at[i])
        else:
            num = rng.choice(sorted(free))
        free.discard(num)
        hold_until = min(last_seen + hold, start + max_hold)
        # With a beacon the hold is cut short at leaving, but the number rests for the grace period.
        ended = min(last_seen, hold_until) if beacon else hold_until
        release = min(ended + grace, start + max_hold) if beacon else hold_until
        s.number, s.hold_start, s.hold_until, s.ended = num, start, hold_until, ended
        holds_by_number[num].append(s)
        heapq.heappush(busy, (release, num))
        held_seconds += (release - start).total_seconds()

    horizon = days * 86400.0
    heartbeat = heartbeat_seconds(pool.hold_seconds)
    # Every hold listed above has its start set, so each list stays aligned with its holds.
    starts = {num: [h.hold_start for h in hs if h.hold_start] for num, hs in holds_by_number.items()}

    # --- calls and attribution ---------------------------------------------------------------------------
    phone_of: dict[str, str] = {}
    visitors_of_phone: dict[str, Counter[str]] = defaultdict(Counter)
    calls = []
    for s in sessions:
        if rng.random() < traffic.call_rate:
            calls.append((_call_time(rng, traffic, s), s))
    calls.sort(key=lambda c: c[0])

    right_session = right_channel = identified = naive_right = 0
    conf_hits: list[tuple[float, bool]] = []
    for at, truth in calls:
        phone = phone_of.setdefault(truth.visitor, f"p{truth.visitor}")
        if truth.number is None:
            # The fallback number: no session can be told apart, the channel is the majority of recent
            # sessions shown it (as tracking.attribution does for overflow).
            window = [x for x in fallback_shown if at - hold - grace <= x.start <= at + CLOCK_SKEW]
            channel = Counter(x.channel for x in window).most_common(1)[0][0] if window else None
            right_channel += channel == truth.channel
            continue
        holds = holds_by_number[truth.number]
        hi = bisect.bisect_right(starts[truth.number], at)
        cands = []
        for h in reversed(holds[max(0, hi - 80) : hi]):
            assert h.hold_start is not None and h.hold_until is not None and h.ended is not None
            if h.ended + HOLDER_LOOKBACK < at:
                break
            features = hold_features(
                call_at=at,
                started_at=h.hold_start,
                hold_until=h.hold_until,
                # The hub knows a hold ended only once it has; a live one has no end yet.
                ended_at=h.ended if h.ended <= at else None,
                last_seen_at=min(h.last_seen, at),
                left_at=h.left if h.left is not None and h.left <= at else None,
                device=h.device,
                heartbeat_seconds=heartbeat,
            )
            known = visitors_of_phone[phone]
            features["caller_link"] = ("same" if h.visitor in known else "other") if known else "none"
            cands.append(Candidate(h.id, hash(h.channel), h.visitor, features))
        if cands:
            naive_right += cands[0].session_id == truth.id
        verdict = score(cands)
        if verdict.session_id is None:
            if verdict.channel_id is not None:
                right_channel += verdict.channel_id == hash(truth.channel)
            continue
        identified += 1
        winner = sessions[verdict.session_id]
        hit = winner.id == truth.id
        right_session += hit
        right_channel += winner.channel == truth.channel
        conf_hits.append((verdict.session_confidence or 0.0, hit))
        visitors_of_phone[phone][winner.visitor] += 1

    n_calls = len(calls) or 1
    bins: list[tuple[float, float, int]] = []
    ece = 0.0
    for b in range(10):
        inside = [(c, h) for c, h in conf_hits if b / 10 <= c < (b + 1) / 10 or (b == 9 and c == 1.0)]
        if inside:
            mean_c = sum(c for c, _ in inside) / len(inside)
            acc = sum(h for _, h in inside) / len(inside)
            bins.append((mean_c, acc, len(inside)))
            ece += abs(mean_c - acc) * len(inside)
    return Result(
        calls=len(calls),
        session_accuracy=right_session / n_calls,
        channel_accuracy=right_channel / n_calls,
        identified_share=identified / n_calls,
        fallback_rate=len(fallback_shown) / max(1, len(sessions)),
        utilisation=held_seconds / (horizon * pool.size) if pool.size else 0.0,
        calibration_error=ece / max(1, len(conf_hits)),
        naive_session_accuracy=naive_right / n_calls,
        mean_confidence=sum(c for c, _ in conf_hits) / max(1, len(conf_hits)),
        bins=bins,
    )


@dataclass
class Advice:
    target: float
    size: int | None  # None: not reached within the sizes tried
    result: Result | None


def advise(
    traffic: Traffic,
    targets: Sequence[float] = (0.95, 0.99),
    hold_seconds: int = 900,
    grace_seconds: int = 300,
    max_size: int = 400,
    days: int = 2,
    seed: int = 1,
    progress: Callable[[int, Result], None] | None = None,
) -> tuple[list[Advice], dict[int, Result]]:
    """The smallest pool reaching each target session accuracy (relative to the best reachable, i.e. the
    accuracy of a pool so large nobody shares a number: late callers are unidentifiable at any size)."""
    tried: dict[int, Result] = {}

    def run(size: int) -> Result:
        if size not in tried:
            tried[size] = simulate(
                traffic, PoolConfig(size, hold_seconds, grace_seconds), days=days, seed=seed
            )
            if progress:
                progress(size, tried[size])
        return tried[size]

    ceiling = run(max_size).session_accuracy
    advice = []
    for target in targets:
        goal = target * ceiling
        lo, hi = 1, max_size
        if run(hi).session_accuracy < goal:
            advice.append(Advice(target, None, None))
            continue
        while lo < hi:
            mid = (lo + hi) // 2
            if run(mid).session_accuracy >= goal:
                hi = mid
            else:
                lo = mid + 1
        advice.append(Advice(target, lo, run(lo)))
    return advice, tried


def rule_of_thumb(visitors_last_3_days: int) -> int:
    """The common rule: visitors in the last 3 days / 3 / 100 numbers (at least 1)."""
    return max(1, math.ceil(visitors_last_3_days / 3 / 100))
