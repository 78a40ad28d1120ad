"""The figures of the agency home and the client overview, all taken from the ROMI engine (tracking/romi.py)
so that a number on the home page is the number on the client's ROMI page."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub import charts
from tracking import romi
from tracking.models import Call, CallStatus, Channel, Client
from tracking.poolsim import Advice

# The columns the agency home can sort by: name -> how a row is ordered (missing ROMI sorts last).
SORTS = ("name", "calls", "missed", "first_time", "spend", "deals", "revenue", "romi")


@dataclass(frozen=True)
class ClientRow:
    client: Client
    metrics: romi.Metrics
    calls_by_day: list[int]

    def sort_key(self, column: str) -> tuple:
        m = self.metrics
        values: dict[str, float | int | Decimal | None] = {
            "calls": m.calls,
            "missed": m.missed,
            "first_time": m.first_time_calls,
            "spend": m.spend,
            "deals": m.deals,
            "revenue": m.revenue,
            "romi": m.romi,
        }
        if column == "name" or column not in values:
            return (0, self.client.name.lower())
        value = values[column]
        return (value is None, -(value or 0), self.client.name.lower())


def calls_by_local_day(db: Session, client: Client, start: dt.date, end: dt.date) -> list[int]:
    """Final calls per local day of ``client`` over [start, end]: the sparkline's points."""
    lo, hi = romi.period_bounds(client, start, end)
    tz = ZoneInfo(client.timezone or "UTC")
    days = (end - start).days + 1
    counts: Counter[int] = Counter()
    rows = db.scalars(
        select(Call.called_at).where(
            Call.client_id == client.id,
            Call.called_at >= lo,
            Call.called_at < hi,
            Call.status != CallStatus.IN_PROGRESS,
        )
    )
    for called_at in rows:
        if called_at is None:
            continue
        if called_at.tzinfo is None:
            called_at = called_at.replace(tzinfo=dt.UTC)
        counts[(called_at.astimezone(tz).date() - start).days] += 1
    return [counts[i] for i in range(days)]


def agency_rows(
    db: Session,
    clients: Iterable[Client],
    start: dt.date,
    end: dt.date,
    *,
    model: romi.Model | str = romi.Model.LAST_NON_DIRECT,
    query: str = "",
    sort: str = "revenue",
) -> list[ClientRow]:
    """One row per client whose name contains ``query``: the ROMI report's totals for the period."""
    needle = query.strip().lower()
    rows = [
        ClientRow(
            c,
            romi.report(db, c, start, end, model=model).total.metrics,
            calls_by_local_day(db, c, start, end),
        )
        for c in clients
        if needle in c.name.lower()
    ]
    rows.sort(key=lambda r: r.sort_key(sort))
    return rows


def previous_period(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """The period of the same length that ends the day before ``start``."""
    length = end - start
    prev_end = start - dt.timedelta(days=1)
    return prev_end - length, prev_end


@dataclass(frozen=True)
class Headline:
    key: str
    label: str
    value: object  # int or Decimal or float (ROMI)
    previous: object
    kind: str  # "count", "money" or "percent"

    @property
    def change(self) -> float | None:
        """Relative change against the previous period; None when the previous value was zero or missing."""
        if self.value is None or self.previous is None or not self.previous:
            return None
        if self.kind == "percent":  # ROMI changes by points, not by a share of itself
            return float(self.value) - float(self.previous)  # type: ignore[arg-type]
        return float(self.value) / float(self.previous) - 1  # type: ignore[arg-type]


HEADLINES = (
    ("calls", _l("Calls"), "count"),
    ("missed", _l("Missed"), "count"),
    ("first_time_calls", _l("First-time callers"), "count"),
    ("spend", _l("Spend"), "money"),
    ("deals", _l("Deals"), "count"),
    ("revenue", _l("Revenue"), "money"),
    ("romi", _l("ROMI"), "percent"),
)


def headlines(
    db: Session,
    client: Client,
    start: dt.date,
    end: dt.date,
    model: romi.Model | str = romi.Model.LAST_NON_DIRECT,
) -> list[Headline]:
    """The overview's figures for [start, end] beside those of the period just before it."""
    now = romi.report(db, client, start, end, model=model).total.metrics
    before = romi.report(db, client, *previous_period(start, end), model=model).total.metrics
    return [
        Headline(key, str(text), getattr(now, key), getattr(before, key), kind)
        for key, text, kind in HEADLINES
    ]


def split_period(start: dt.date, end: dt.date, by: str) -> list[tuple[dt.date, dt.date]]:
    """[start, end] cut into days, or into Monday-to-Sunday weeks clipped to the period."""
    parts = []
    day = start
    while day <= end:
        last = day if by == "day" else min(day + dt.timedelta(days=6 - day.weekday()), end)
        parts.append((day, last))
        day = last + dt.timedelta(days=1)
    return parts


def breakdown(
    db: Session,
    client: Client,
    start: dt.date,
    end: dt.date,
    by: str,
    model: romi.Model | str,
    path: Sequence[str] = (),
) -> list[tuple[dt.date, dt.date, romi.Metrics]]:
    """The figures of one row of the ROMI report (``path``: channel, campaign … keys; empty for the totals)
    for each day or week of the period. The engine runs once per part, so the parts add up to the period
    (every pass of the engine counts a thing on one local day); a part where the row has nothing gives
    zeros."""
    parts = []
    for a, b in split_period(start, end, by):
        node = romi.report(db, client, a, b, model=model).total.find(path)
        parts.append((a, b, node.metrics if node is not None else romi.Metrics()))
    return parts


def chart_grain(start: dt.date, end: dt.date) -> str:
    """Days for a month or less, weeks beyond: a bar per day stops being readable past about 31."""
    return "day" if (end - start).days < 31 else "week"


def part_label(a: dt.date, b: dt.date, by: str) -> str:
    return a.isoformat() if by == "day" else f"{a.isoformat()[5:]}–{b.isoformat()[5:]}"


def calls_by_channel(
    db: Session, client: Client, start: dt.date, end: dt.date, by: str
) -> tuple[list[str], dict[str, list[int]]]:
    """Final calls of the local days [start, end] per day or week, by the channel each call came from:
    the overview chart's labels and one series per channel (calls without one under "Unattributed")."""
    parts = split_period(start, end, by)
    index: dict[dt.date, int] = {}
    for i, (a, b) in enumerate(parts):
        for n in range((b - a).days + 1):
            index[a + dt.timedelta(days=n)] = i
    lo, hi = romi.period_bounds(client, start, end)
    tz = ZoneInfo(client.timezone or "UTC")
    names = {c.id: c.name for c in db.scalars(select(Channel).where(Channel.client_id == client.id))}
    series: dict[str, list[int]] = {}
    rows = db.execute(
        select(Call.called_at, Call.channel_id).where(
            Call.client_id == client.id,
            Call.called_at >= lo,
            Call.called_at < hi,
            Call.status != CallStatus.IN_PROGRESS,
        )
    )
    for called_at, channel_id in rows:
        if called_at is None:
            continue
        if called_at.tzinfo is None:
            called_at = called_at.replace(tzinfo=dt.UTC)
        part = index.get(called_at.astimezone(tz).date())
        if part is None:
            continue
        name = names.get(channel_id, "") if channel_id else ""
        series.setdefault(name, [0] * len(parts))[part] += 1
    labels = [part_label(a, b, by) for a, b in parts]
    return labels, dict(sorted(series.items(), key=lambda kv: (kv[0] == "", kv[0].lower())))


def calls_chart(db: Session, client: Client, start: dt.date, end: dt.date) -> tuple[str, Markup]:
    """The overview's chart of the period: calls per day (per week past a month) stacked by channel."""
    by = chart_grain(start, end)
    labels, series = calls_by_channel(db, client, start, end, by)
    named = {(name or _("Unattributed")): counts for name, counts in series.items()}
    title = _("Calls per day by channel") if by == "day" else _("Calls per week by channel")
    return by, charts.stacked_bars(labels, named, title)


# Below this many visits in the advice window the simulator has too little to go on: the page says so instead
# of recommending a size drawn from defaults.
MIN_SESSIONS_FOR_ADVICE = 100


@dataclass(frozen=True)
class PoolVerdict:
    kind: str  # "no_data", "no_pool", "drop", "add", "right", "beyond"
    text: str
    numbers: int = 0


def pool_verdict(observed_sessions: int, current_size: int | None, advice: list[Advice]) -> PoolVerdict:
    """One sentence about the pool from the advice for the first (lowest) target accuracy."""
    if observed_sessions < MIN_SESSIONS_FOR_ADVICE:
        return PoolVerdict(
            "no_data",
            _(
                "Not enough data yet: %(seen)s visits seen, at least %(needed)s are needed before the pool "
                "can be sized from real traffic.",
                seen=observed_sessions,
                needed=MIN_SESSIONS_FOR_ADVICE,
            ),
        )
    first = advice[0] if advice else None
    if first is None or first.size is None:
        return PoolVerdict(
            "beyond", _("Even the largest pool tried does not reach the target: shorten the hold.")
        )
    target = f"{first.target * 100:.0f}\u00a0%"
    if not current_size:
        return PoolVerdict(
            "no_pool",
            _(
                "A pool of %(size)s numbers would tie %(target)s of calls to their visit.",
                size=first.size,
                target=target,
            ),
        )
    diff = first.size - current_size
    if diff < 0:
        return PoolVerdict(
            "drop",
            ngettext(
                "You could drop %(num)s number and still tie %(target)s of calls.",
                "You could drop %(num)s numbers and still tie %(target)s of calls.",
                -diff,
                target=target,
            ),
            -diff,
        )
    if diff > 0:
        return PoolVerdict(
            "add",
            ngettext(
                "Add %(num)s number to tie %(target)s of calls to their visit.",
                "Add %(num)s numbers to tie %(target)s of calls to their visit.",
                diff,
                target=target,
            ),
            diff,
        )
    return PoolVerdict("right", _("The pool is the right size for %(target)s of calls.", target=target))
