"""ROMI in one place: spend, visits, calls, deals and revenue per channel → campaign → ad group → keyword.

One engine serves the dashboard, the API and the exports, so the numbers never disagree between them.

How the sides meet:

* **Visits** are sessions started in the period, under the session's own channel; campaign, ad group and
  keyword come from ``utm_campaign`` (through the client's campaign mappings when it holds a name rather
  than an id), ``utm_content`` and ``utm_term``, matched against what the ad platform reported: by id when
  the tag holds one, else by name with case and spacing ignored; a tag naming only a known keyword puts
  the visit in that keyword's ad group. So calls and spend meet in the same ad group and keyword rows.
* **Calls** made in the period count under the channel their attribution gave them. Calls with no channel
  are never dropped: they form the rows *Pool overflow*, *Unmatched number* and *Unattributed*. Under the
  default model (last non-direct), a call whose session came direct inherits the campaign of the same
  visitor's latest earlier non-direct session within ``LOOKBACK``; first touch uses the visitor's first.
* **Deals** follow their call, so a row's deals and revenue are those of the calls it counts (a cohort by
  call date: "did the calls of this period bring money back"). Deals the CRM holds without any call form
  the row *Deals without a call*, counted by the deal's creation date.
* **Spend** rows of the period go to the channel that the campaign's visits fell into; a campaign nobody
  visited from goes to the channel whose rules mark that platform's clicks (yclid / gclid, utm_source), else
  to a row *Spend without a channel*. Hand-entered spend is prorated by the days it overlaps the period.

Every parent's additive figures are the sums of its children, and the totals are the sum of the top rows.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, String, and_, case, cast, func, or_, select
from sqlalchemy.orm import Session, aliased

from tracking.errors import Refused
from tracking.models import (
    AttributionMethod,
    CallStatus,
    CampaignMapping,
    Channel,
    Client,
    Deal,
    DealStatus,
    ManualSpend,
    PlatformSpend,
    VisitSession,
)
from tracking.models.calls import Call

LEVELS = ("channel", "campaign", "ad_group", "keyword")
LOOKBACK = dt.timedelta(days=90)
ZERO = Decimal("0")
CENTS = Decimal("0.01")

# Keys of the rows that are not a channel of the client.
OVERFLOW = "overflow"
UNMATCHED = "unmatched"
UNATTRIBUTED = "unattributed"
NO_CALL_DEALS = "deals_without_call"
NO_CHANNEL_SPEND = "spend_without_channel"
SPECIAL_LABELS = {
    OVERFLOW: "Pool overflow",
    UNMATCHED: "Unmatched number",
    UNATTRIBUTED: "Unattributed",
    NO_CALL_DEALS: "Deals without a call",
    NO_CHANNEL_SPEND: "Spend without a channel",
}
NONE_LABEL = {"campaign": "(no campaign)", "ad_group": "(no ad group)", "keyword": "(no keyword)"}
# The key of a "(no …)" row: never empty, so a drill-down path through it survives as a URL.
NONE_KEY = "-"

# Which channel rules mark a platform's clicks, for spend of campaigns nobody visited from.
PLATFORM_HINTS = {
    "yandex_direct": ("has_yclid", ("yandex", "yandex.direct", "direct", "ya")),
    "google_ads": ("has_gclid", ("google", "google_ads", "adwords")),
}


class Model(StrEnum):
    LAST_NON_DIRECT = "last_non_direct"
    LAST_TOUCH = "last_touch"
    FIRST_TOUCH = "first_touch"


class InvalidReport(Refused):
    """The report cannot be computed as asked (a period backwards, an unknown level or model)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field, message, "bad_request")


PRESETS = (
    ("this_month", "This month"),
    ("last_month", "Last month"),
    ("last_30", "Last 30 days"),
    ("this_year", "This year"),
)


def client_today(client: Client) -> dt.date:
    """Today in the client's time zone: what "this month" and "so far" mean in every report."""
    return dt.datetime.now(ZoneInfo(client.timezone or "UTC")).date()


def preset_period(name: str, today: dt.date) -> tuple[dt.date, dt.date]:
    """The local days [start, end] a named period covers; an unknown name is this month so far."""
    if name == "last_month":
        end = today.replace(day=1) - dt.timedelta(days=1)
        return end.replace(day=1), end
    if name == "last_30":
        return today - dt.timedelta(days=29), today
    if name == "this_year":
        return today.replace(month=1, day=1), today
    return today.replace(day=1), today


@dataclass
class Metrics:
    spend: Decimal = ZERO
    clicks: int = 0
    impressions: int = 0
    visits: int = 0
    calls: int = 0
    first_time_calls: int = 0
    target_calls: int = 0  # calls meeting a target-call rule (tracking.targets)
    answered: int = 0
    missed: int = 0
    deals: int = 0
    won: int = 0
    revenue: Decimal = ZERO
    callers: set[str] = field(default_factory=set, repr=False)

    def add(self, other: Metrics) -> None:
        self.spend += other.spend
        self.clicks += other.clicks
        self.impressions += other.impressions
        self.visits += other.visits
        self.calls += other.calls
        self.first_time_calls += other.first_time_calls
        self.target_calls += other.target_calls
        self.answered += other.answered
        self.missed += other.missed
        self.deals += other.deals
        self.won += other.won
        self.revenue += other.revenue
        self.callers |= other.callers

    @property
    def unique_callers(self) -> int:
        return len(self.callers)

    @property
    def cost_per_call(self) -> Decimal | None:
        return _ratio_money(self.spend, self.calls)

    @property
    def cost_per_target_call(self) -> Decimal | None:
        return _ratio_money(self.spend, self.target_calls)

    @property
    def cost_per_deal(self) -> Decimal | None:
        return _ratio_money(self.spend, self.deals)

    @property
    def visit_to_call(self) -> float | None:
        return self.calls / self.visits if self.visits else None

    @property
    def call_to_deal(self) -> float | None:
        return self.deals / self.calls if self.calls else None

    @property
    def deal_to_won(self) -> float | None:
        return self.won / self.deals if self.deals else None

    @property
    def romi(self) -> float | None:
        """(revenue − spend) / spend; None when nothing was spent (ROMI is undefined, not infinite)."""
        if not self.spend:
            return None
        return float((self.revenue - self.spend) / self.spend)

    def as_dict(self) -> dict[str, object]:
        return {
            "spend": _money(self.spend),
            "clicks": self.clicks,
            "impressions": self.impressions,
            "visits": self.visits,
            "calls": self.calls,
            "unique_callers": self.unique_callers,
            "first_time_calls": self.first_time_calls,
            "target_calls": self.target_calls,
            "answered": self.answered,
            "missed": self.missed,
            "deals": self.deals,
            "won": self.won,
            "revenue": _money(self.revenue),
            "cost_per_call": _money(self.cost_per_call),
            "cost_per_target_call": _money(self.cost_per_target_call),
            "cost_per_deal": _money(self.cost_per_deal),
            "visit_to_call": self.visit_to_call,
            "call_to_deal": self.call_to_deal,
            "deal_to_won": self.deal_to_won,
            "romi": self.romi,
        }


def _ratio_money(amount: Decimal, count: int) -> Decimal | None:
    return (amount / count).quantize(CENTS) if count else None


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(CENTS))


METRIC_NAMES = tuple(Metrics().as_dict())


@dataclass
class Node:
    """One row of the report: a channel, a campaign of it, an ad group of that, or a keyword."""

    level: int  # 0 for the totals, 1 channel … 4 keyword
    key: str
    label: str
    path: tuple[str, ...] = ()
    metrics: Metrics = field(default_factory=Metrics)
    children: dict[str, Node] = field(default_factory=dict)

    def child(self, key: str, label: str) -> Node:
        node = self.children.get(key)
        if node is None:
            node = self.children[key] = Node(self.level + 1, key, label, (*self.path, key))
        elif label and node.label == NONE_LABEL.get(LEVELS[node.level - 1], ""):
            node.label = label
        return node

    def sorted_children(self) -> list[Node]:
        return sorted(self.children.values(), key=_row_order)

    def walk(self, depth: int) -> Iterator[Node]:
        """This node's descendants down to ``depth`` levels, parents before their children."""
        for c in self.sorted_children():
            yield c
            if c.level < depth:
                yield from c.walk(depth)

    def find(self, path: Iterable[str]) -> Node | None:
        node: Node | None = self
        for key in path:
            node = node.children.get(key) if node else None
        return node


def _row_order(n: Node) -> tuple[int, Decimal, int, str, str]:
    # Channels with money first, special rows last, then by calls and name; the key settles ties, so the
    # order never depends on which pass met a row first.
    special = 1 if n.key in SPECIAL_LABELS else 0
    return (special, -(n.metrics.revenue + n.metrics.spend), -n.metrics.calls, n.label.lower(), n.key)


@dataclass
class Report:
    client_id: int
    start: dt.date
    end: dt.date
    model: Model
    currency: str
    total: Node

    def rows(self, depth: int = 1) -> list[Node]:
        return list(self.total.walk(depth))

    def top(self, level: str, limit: int = 10) -> list[Node]:
        """The best campaigns or keywords across channels, by revenue then calls."""
        depth = LEVELS.index(level) + 1
        nodes = [n for n in self.total.walk(depth) if n.level == depth and n.key != NONE_KEY]
        nodes.sort(key=lambda n: (-n.metrics.revenue, -n.metrics.calls, n.label.lower(), n.path))
        return nodes[:limit]


FLAT_COLUMNS = [
    "period_start",
    "period_end",
    "model",
    "currency",
    *LEVELS,
    *(f"{level}_key" for level in LEVELS),
    *METRIC_NAMES,
]


def with_labels(nodes: Iterable[Node]) -> Iterator[tuple[Node, list[str]]]:
    """Each node (parents before children, as ``walk`` gives them) with the labels of its path."""
    labels: list[str] = []
    for node in nodes:
        labels = [*labels[: node.level - 1], node.label]
        yield node, labels


def flat_rows(rep: Report) -> Iterator[list[object]]:
    """One row per leaf under ``FLAT_COLUMNS``, every dimension filled in: what BI tools want."""
    depth = len(LEVELS)
    for node, labels in with_labels(rep.rows(depth)):
        if node.children:
            continue
        names = labels + [""] * (depth - len(labels))
        keys = list(node.path) + [""] * (depth - len(node.path))
        yield [
            rep.start,
            rep.end,
            rep.model.value,
            rep.currency,
            *names,
            *keys,
            *node.metrics.as_dict().values(),
        ]


# --- the engine -------------------------------------------------------------------------------------------


def period_bounds(client: Client, start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end] as local days of the client, turned into a half-open UTC interval."""
    tz = ZoneInfo(client.timezone or "UTC")
    lo = dt.datetime.combine(start, dt.time(), tz).astimezone(dt.UTC)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tz).astimezone(dt.UTC)
    return lo, hi


def check_request(start: dt.date, end: dt.date, model: Model | str) -> Model:
    """The model asked for, once the period and model are known to make a report."""
    if end < start:
        raise InvalidReport("end", "the period ends before it starts")
    if (end - start).days > 3 * 366:
        raise InvalidReport("end", "a report covers at most three years")
    try:
        return Model(model)
    except ValueError:
        raise InvalidReport("model", f"one of {', '.join(m.value for m in Model)}") from None


def report(
    db: Session,
    client: Client,
    start: dt.date,
    end: dt.date,
    *,
    model: Model | str = Model.LAST_NON_DIRECT,
    replica: Session | None = None,
) -> Report:
    """The ROMI tree of ``client`` for the local days [start, end], from the daily roll-up.

    With ``replica`` (a session on a read replica), the figures are read there once it has caught up.
    """
    from tracking import romi_rollup  # the roll-up builds on this module's passes

    return romi_rollup.report(db, client, start, end, model=model, replica=replica)


def report_from_rows(
    db: Session,
    client: Client,
    start: dt.date,
    end: dt.date,
    *,
    model: Model | str = Model.LAST_NON_DIRECT,
) -> Report:
    """The same tree computed from the sessions, calls and deals themselves: what the roll-up must equal."""
    model = check_request(start, end, model)
    lo, hi = period_bounds(client, start, end)
    ctx = _Context(db, client, (start, end))
    facts = visit_facts(db, client.id, lo, hi)
    facts.update(deal_facts(db, client.id, lo, hi))
    leaves = [(leaf, m) for (_day, leaf), m in call_facts(ctx, lo, hi, model).items()]
    return assemble(ctx, start, end, model, [*facts.items(), *leaves])


def assemble(
    ctx: _Context, start: dt.date, end: dt.date, model: Model, leaves: Iterable[tuple[Leaf, Metrics]]
) -> Report:
    """Place the leaves' visits, calls and deals in the tree, then the period's spend, then sum up."""
    total = Node(0, "", "Total")
    leaves = list(leaves)
    for leaf, m in leaves:
        if m.visits:
            ctx.vote(ctx.dims(*leaf[2:])[0][0], leaf[0] or None, m.visits)
    ctx.settle_votes()
    for leaf, m in leaves:
        _place(ctx, total, leaf).metrics.add(m)
    _add_spend(ctx, total, start, end)
    _add_manual_spend(ctx, total, start, end)
    _roll_up(total)
    return Report(ctx.client.id, start, end, model, ctx.client.currency, total)


def norm(text: str | None) -> str:
    """A name as people and platforms spell it differently: case and runs of spaces do not count."""
    return " ".join((text or "").split()).casefold()


@dataclass
class _Catalog:
    """What the ad platforms reported for one campaign: its ad groups and keywords by id and by name."""

    groups: dict[str, tuple[str, str]] = field(default_factory=dict)  # id or norm(name) -> (id, name)
    keywords: dict[tuple[str, str], tuple[str, str, str]] = field(default_factory=dict)
    # (group id or "", id or norm(text)) -> (keyword key, text, group id)

    def add(self, group_id: str | None, gname: str | None, kid: str | None, kw: str | None) -> None:
        gid = group_id or ""
        if gid:
            for k in (gid, norm(gname)):
                if k:
                    self.groups.setdefault(k, (gid, gname or gid))
        if kid or kw:
            entry = (kid or norm(kw), " ".join((kw or kid or "").split()), gid)
            for kk in (kid or "", norm(kw)):
                for where in (gid, ""):
                    known = self.keywords.get((where, kk))
                    # An id wins over a text seen without one, so both spellings land in one row.
                    if kk and (known is None or (kid and known[0] == norm(known[1]))):
                        self.keywords[(where, kk)] = entry

    def group(self, value: str) -> tuple[str, str] | None:
        return self.groups.get(value) or self.groups.get(norm(value)) if value else None

    def keyword(self, group_id: str, value: str) -> tuple[str, str, str] | None:
        if not value:
            return None
        for g in (group_id, ""):
            for k in (value, norm(value)):
                hit = self.keywords.get((g, k))
                if hit is not None:
                    return hit
        return None


class _Context:
    """Look-ups shared by the passes: channels, campaign mappings, and what the platforms call things."""

    def __init__(self, db: Session, client: Client, period: tuple[dt.date, dt.date] | None = None) -> None:
        self.db = db
        self.client = client
        self.period = period
        self.spend: list[tuple] = []  # the period's spend per platform, campaign, ad group and keyword
        self.channels = {c.id: c for c in db.scalars(select(Channel).where(Channel.client_id == client.id))}
        self.direct_ids = {c.id for c in self.channels.values() if c.is_default}
        self.mappings = {
            norm(m.utm_campaign): m.campaign_id
            for m in db.scalars(select(CampaignMapping).where(CampaignMapping.client_id == client.id))
        }
        self.campaign_names: dict[str, str] = {}
        self.campaign_ids_by_name: dict[str, str] = {}
        self.catalogs: dict[str, _Catalog] = defaultdict(_Catalog)  # campaign id -> its catalog
        self.campaign_channel: dict[str, int] = {}  # campaign id -> the channel its visits fell into
        self._campaign_votes: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self._dims: dict[tuple[str | None, str | None, str | None], tuple] = {}
        self._known_loaded = False

    def load_platform_names(self) -> None:
        """Names and ids of campaigns, ad groups and keywords as the platforms reported them."""
        if self._known_loaded:
            return
        self._known_loaded = True
        r = PlatformSpend
        start, end = self.period or (dt.date.min, dt.date.min)
        within = and_(r.day >= start, r.day <= end)
        # One pass over the spend rows gives both what the platforms call things (all time) and the
        # period's spend: a year of keywords is tens of thousands of rows, read once, not twice.
        names = (
            r.campaign_id,
            r.campaign_name,
            r.ad_group_id,
            r.ad_group_name,
            r.keyword_id,
            r.keyword,
            r.platform,
        )
        sums = (func.sum(case((within, x), else_=0)) for x in (1, r.cost, r.clicks, r.impressions))
        q = select(*names, *sums).where(r.client_id == self.client.id).group_by(*names)
        # Sorted so that which spelling labels a row never depends on the order the database returns.
        rows = sorted(self.db.execute(q), key=lambda r: tuple(x or "" for x in r[:7]))
        for cid, cname, gid, gname, kid, kw, platform, n, cost, clicks, impressions in rows:
            if cname:
                self.campaign_names.setdefault(cid, cname)
                self.campaign_ids_by_name.setdefault(norm(cname), cid)
            self.catalogs[cid].add(gid, gname, kid, kw)
            if n:
                self.spend.append((platform, cid, gid, kid, kw, cost, clicks, impressions))

    def channel_key(self, channel_id: int | None) -> tuple[str, str]:
        if channel_id is None or channel_id not in self.channels:
            return UNATTRIBUTED, SPECIAL_LABELS[UNATTRIBUTED]
        return f"ch{channel_id}", self.channels[channel_id].name

    def campaign_id(self, raw: str | None) -> str:
        """The platform's id for a session's utm_campaign: itself, a mapping, or a campaign of that name."""
        raw = (raw or "").strip()
        if not raw or raw in self.campaign_names:
            return raw
        n = norm(raw)
        return self.mappings.get(n) or self.campaign_ids_by_name.get(n) or raw

    def dims(
        self, campaign: str | None, content: str | None, term: str | None
    ) -> tuple[tuple[str, str], tuple[str, str], tuple[str, str]]:
        """(key, label) of campaign, ad group and keyword for a session's utm_campaign/content/term.

        Ad groups and keywords are matched to what the platform reported by id first, then by name
        regardless of case and spacing; a session that names only a known keyword takes the keyword's ad
        group, so its calls meet the spend of that group and keyword in one row.
        """
        memo = self._dims.get((campaign, content, term))
        if memo is not None:
            return memo
        self.load_platform_names()
        cid = self.campaign_id(campaign)
        camp = (
            cid or NONE_KEY,
            self.campaign_names.get(cid, (campaign or "").strip()) or NONE_LABEL["campaign"],
        )
        catalog = self.catalogs.get(cid) or _Catalog()
        g = (content or "").strip()
        t = (term or "").strip()
        group = catalog.group(g)
        kw = catalog.keyword(group[0] if group else "", t)
        if group is None and kw is not None and kw[2]:
            group = catalog.group(kw[2])
        if group is None:
            group = (norm(g), g) if g else (NONE_KEY, NONE_LABEL["ad_group"])
        keyword = (
            (kw[0], kw[1]) if kw is not None else ((norm(t), t) if t else (NONE_KEY, NONE_LABEL["keyword"]))
        )
        out = self._dims[(campaign, content, term)] = (camp, group, keyword)
        return out

    def spend_dims(
        self, cid: str, gid: str | None, kid: str | None, kw: str | None
    ) -> tuple[tuple[str, str], tuple[str, str], tuple[str, str]]:
        """The same keys as ``dims`` gives a session, for a spend row of the platform."""
        self.load_platform_names()
        catalog = self.catalogs.get(cid) or _Catalog()
        group = catalog.group(gid or "") or (NONE_KEY, NONE_LABEL["ad_group"])
        hit = catalog.keyword(gid or "", kid or "") or catalog.keyword(gid or "", kw or "")
        keyword = (hit[0], hit[1]) if hit else (NONE_KEY, NONE_LABEL["keyword"])
        return (cid or NONE_KEY, self.campaign_names.get(cid, cid) or NONE_LABEL["campaign"]), group, keyword

    def vote(self, campaign_id: str, channel_id: int | None, visits: int) -> None:
        if campaign_id and campaign_id != NONE_KEY and channel_id is not None:
            self._campaign_votes[campaign_id][channel_id] += visits

    def settle_votes(self) -> None:
        for cid, votes in self._campaign_votes.items():
            self.campaign_channel[cid] = max(votes.items(), key=lambda kv: (kv[1], -kv[0]))[0]

    def platform_channel(self, platform: str) -> int | None:
        hint = PLATFORM_HINTS.get(platform)
        if hint is None:
            return None
        flag, sources = hint
        for ch in sorted(self.channels.values(), key=lambda c: (c.position, c.id)):
            for rule in ch.rules or []:
                if not isinstance(rule, dict):
                    continue
                if rule.get(flag) is True or str(rule.get("utm_source", "")).lower() in sources:
                    return ch.id
        return None


def _leaf(total: Node, ctx: _Context, channel: tuple[str, str], dims: tuple) -> Node:
    node = total.child(*channel)
    for key, label in dims:
        node = node.child(key, label)
    return node


# A leaf as the passes find it: channel id (0 for none), the key of a row of its own ("" for a channel),
# and the session's raw utm_campaign, utm_content and utm_term ("" for none). Raw, so that how they are
# matched to the platforms' names is decided when a report is read.
Leaf = tuple[int, str, str, str, str]


def _place(ctx: _Context, total: Node, leaf: Leaf) -> Node:
    channel_id, source, *tags = leaf
    if source and source != UNATTRIBUTED:
        channel = (source, SPECIAL_LABELS[source])
    else:
        channel = ctx.channel_key(channel_id or None)
    return _leaf(total, ctx, channel, ctx.dims(*tags))


def _tags(campaign: str | None, content: str | None, term: str | None) -> tuple[str, str, str]:
    return ((campaign or "").strip(), (content or "").strip(), (term or "").strip())


def visit_facts(db: Session, client_id: int, lo: dt.datetime, hi: dt.datetime) -> dict[Leaf, Metrics]:
    """Sessions started in [lo, hi) per leaf."""
    s = VisitSession
    q = (
        select(s.channel_id, s.utm_campaign, s.utm_content, s.utm_term, func.count())
        .where(s.client_id == client_id, s.started_at >= lo, s.started_at < hi)
        .group_by(s.channel_id, s.utm_campaign, s.utm_content, s.utm_term)
    )
    out: dict[Leaf, Metrics] = defaultdict(Metrics)
    for channel_id, campaign, content, term, n in db.execute(q):
        out[(channel_id or 0, "", *_tags(campaign, content, term))].visits += n
    return out


def deal_facts(db: Session, client_id: int, lo: dt.datetime, hi: dt.datetime) -> dict[Leaf, Metrics]:
    """Deals the CRM holds without any call, created in [lo, hi)."""
    q = select(Deal.status, Deal.amount).where(
        Deal.client_id == client_id, Deal.call_id.is_(None), Deal.created_at >= lo, Deal.created_at < hi
    )
    out: dict[Leaf, Metrics] = {}
    for status, amount in db.execute(q):
        m = out.setdefault((0, NO_CALL_DEALS, "", "", ""), Metrics())
        m.deals += 1
        if status == DealStatus.WON:
            m.won += 1
            m.revenue += _stored_amount(amount)
    return out


@dataclass(slots=True)
class _CallRow:
    id: int
    caller: str | None
    status: CallStatus
    first_time: bool
    is_target: bool
    method: AttributionMethod
    channel_id: int | None
    session_id: int | None
    site_id: int | None
    visitor_id: str | None
    started_at: dt.datetime | None
    session_channel: int | None
    campaign: str | None
    content: str | None
    term: str | None
    called_at: dt.datetime


def call_facts(
    ctx: _Context,
    lo: dt.datetime,
    hi: dt.datetime,
    model: Model,
    day_of: Callable[[dt.datetime], dt.date] | None = None,
) -> dict[tuple[dt.date | None, Leaf], Metrics]:
    """Finished calls made in [lo, hi) per leaf under ``model``, with their deals; per local day if asked."""
    c, s = Call, VisitSession
    q = (
        select(
            c.id,
            c.caller,
            cast(c.status, String),
            c.first_time,
            c.is_target,
            cast(c.attribution_method, String),
            c.channel_id,
            c.session_id,
            s.site_id,
            s.visitor_id,
            s.started_at,
            s.channel_id,
            s.utm_campaign,
            s.utm_content,
            s.utm_term,
            c.called_at,
        )
        .outerjoin(s, s.id == c.session_id)
        .where(*_final_calls(ctx.client.id, lo, hi))
    )
    # Plain rows through the session's connection, with the enums read as their stored names: for a
    # large client this is a hundred thousand rows, and ORM row handling would cost more than the query.
    statuses = {x.name: x for x in CallStatus}
    methods = {x.name: x for x in AttributionMethod}
    calls = []
    for row in ctx.db.connection().execute(q):
        values: tuple[Any, ...] = tuple(row)
        call = _CallRow(*values)
        call.status = statuses[call.status]
        call.method = methods[call.method]
        calls.append(call)
    touches = _touches(ctx, calls, model, lo, hi)
    deals = _deals_of(ctx, [r.id for r in calls])
    special = {AttributionMethod.OVERFLOW: OVERFLOW, AttributionMethod.UNMATCHED: UNMATCHED}
    out: dict[tuple[dt.date | None, Leaf], Metrics] = {}
    for r in calls:
        channel_id, campaign, content, term = r.channel_id, r.campaign, r.content, r.term
        if r.method == AttributionMethod.MANUAL:
            campaign = content = term = None  # a person named the source; the session's tags no longer apply
        elif r.id in touches:
            channel_id, campaign, content, term = touches[r.id]
        source = "" if channel_id is not None else special.get(r.method, UNATTRIBUTED)
        key = (
            day_of(r.called_at) if day_of else None,
            (channel_id or 0, source, *_tags(campaign, content, term)),
        )
        m = out.get(key)
        if m is None:
            m = out[key] = Metrics()
        m.calls += 1
        if r.first_time:
            m.first_time_calls += 1
        if r.is_target:
            m.target_calls += 1
        if r.status == CallStatus.ANSWERED:
            m.answered += 1
        else:
            m.missed += 1
        if r.caller:
            m.callers.add(r.caller)
        for status, amount in deals.get(r.id, ()):
            m.deals += 1
            if status == DealStatus.WON:
                m.won += 1
                m.revenue += amount
    return out


def _final_calls(client_id: int, lo: dt.datetime, hi: dt.datetime) -> tuple[ColumnElement[bool], ...]:
    """The calls a report counts: the client's finished calls made in [lo, hi)."""
    return (
        Call.client_id == client_id,
        Call.called_at >= lo,
        Call.called_at < hi,
        Call.status != CallStatus.IN_PROGRESS,
    )


def _touches(
    ctx: _Context, calls: list[_CallRow], model: Model, lo: dt.datetime, hi: dt.datetime
) -> dict[int, tuple[int | None, str | None, str | None, str | None]]:
    """Calls whose credit moves to another session of the same visitor under ``model``."""
    if model == Model.LAST_TOUCH:
        return {}
    wanted = [
        r
        for r in calls
        if r.visitor_id is not None
        and r.started_at is not None
        and r.method != AttributionMethod.MANUAL
        and (model == Model.FIRST_TOUCH or r.session_channel in ctx.direct_ids or r.session_channel is None)
    ]
    starts = [r.started_at for r in wanted if r.started_at is not None]
    if not starts:
        return {}
    # One join rather than a look-up per visitor: the visitors behind the period's calls, then their
    # sessions, so the database can hash the two sides instead of probing a long IN list per row.
    s, s2 = VisitSession, aliased(VisitSession)
    callers = (
        select(s.site_id, s.visitor_id)
        .join(Call, Call.session_id == s.id)
        .where(*_final_calls(ctx.client.id, lo, hi), Call.attribution_method != AttributionMethod.MANUAL)
        .distinct()
    )
    if model == Model.LAST_NON_DIRECT:
        callers = callers.where(or_(s.channel_id.is_(None), s.channel_id.in_(sorted(ctx.direct_ids))))
    v = callers.subquery()
    q = (
        select(
            s2.site_id,
            s2.visitor_id,
            s2.started_at,
            s2.channel_id,
            s2.utm_campaign,
            s2.utm_content,
            s2.utm_term,
        )
        .join(v, and_(v.c.site_id == s2.site_id, v.c.visitor_id == s2.visitor_id))
        # Each call looks back from its own session's start, which may lie before the period: the window
        # is set by the calls, so a call's credit never depends on which period or day asked for it.
        .where(
            s2.client_id == ctx.client.id,
            s2.started_at >= min(starts) - LOOKBACK,
            s2.started_at < max(starts),
        )
        .order_by(s2.started_at)
    )
    if model == Model.LAST_NON_DIRECT:
        q = q.where(s2.channel_id.is_not(None), s2.channel_id.not_in(sorted(ctx.direct_ids)))
    history: dict[tuple[int | None, str | None], list[tuple]] = defaultdict(list)
    for site, visitor, started, *rest in ctx.db.execute(q):
        history[(site, visitor)].append((started, *rest))
    out = {}
    for r in wanted:
        if r.started_at is None:  # a call with a visitor has a session, and a session a start
            continue
        earlier = [
            h
            for h in history.get((r.site_id, r.visitor_id), ())
            if h[0] < r.started_at and h[0] >= r.started_at - LOOKBACK
        ]
        if earlier:
            # First touch: the visitor's first session; last non-direct: the latest non-direct one.
            out[r.id] = tuple((earlier[0] if model == Model.FIRST_TOUCH else earlier[-1])[1:])
    return out


def _deals_of(ctx: _Context, call_ids: list[int]) -> dict[int, list[tuple[DealStatus, Decimal]]]:
    out: dict[int, list[tuple[DealStatus, Decimal]]] = defaultdict(list)
    if not call_ids:
        return out
    wanted = set(call_ids)
    lo, hi = min(call_ids), max(call_ids)
    q = select(Deal.call_id, Deal.status, Deal.amount).where(
        Deal.client_id == ctx.client.id, Deal.call_id >= lo, Deal.call_id <= hi
    )
    for call_id, status, amount in ctx.db.connection().execute(q):
        if call_id in wanted:
            out[call_id].append((status, _stored_amount(amount)))
    return out


def _add_spend(ctx: _Context, total: Node, start: dt.date, end: dt.date) -> None:
    assert ctx.period == (start, end), "the context reads the spend of the report's period"
    ctx.load_platform_names()
    for platform, cid, gid, kid, kw, cost, clicks, impressions in ctx.spend:
        channel_id = ctx.campaign_channel.get(cid) or ctx.platform_channel(platform)
        channel = ctx.channel_key(channel_id) if channel_id else _no_channel()
        m = _leaf(total, ctx, channel, ctx.spend_dims(cid, gid, kid, kw)).metrics
        m.spend += _stored_amount(cost)
        m.clicks += int(clicks or 0)
        m.impressions += int(impressions or 0)


def _stored_amount(value: object) -> Decimal:
    """A stored amount as a Decimal; NaN or infinity (a NUMERIC column can hold them) counts as nothing,
    so one bad row cannot turn a whole report into NaN."""
    amount = Decimal(str(value)) if value is not None else ZERO
    return amount if amount.is_finite() else ZERO


def _no_channel() -> tuple[str, str]:
    return NO_CHANNEL_SPEND, SPECIAL_LABELS[NO_CHANNEL_SPEND]


def _add_manual_spend(ctx: _Context, total: Node, start: dt.date, end: dt.date) -> None:
    q = select(ManualSpend).where(
        ManualSpend.client_id == ctx.client.id,
        ManualSpend.period_start <= end,
        ManualSpend.period_end >= start,
    )
    for row in ctx.db.scalars(q):
        days = (row.period_end - row.period_start).days + 1
        overlap = (min(end, row.period_end) - max(start, row.period_start)).days + 1
        if days <= 0 or overlap <= 0:
            continue
        share = (_stored_amount(row.amount) * overlap / days).quantize(CENTS)
        channel = ctx.channel_key(row.channel_id) if row.channel_id else _no_channel()
        _leaf(total, ctx, channel, ctx.dims(None, None, None)).metrics.spend += share


def _roll_up(node: Node) -> None:
    if not node.children:
        return
    node.metrics = Metrics()
    for child in node.children.values():
        _roll_up(child)
        node.metrics.add(child.metrics)


def dimension_names(
    db: Session, client: Client
) -> Callable[[str | None, str | None, str | None], tuple[str, ...]]:
    """The campaign, ad group and keyword names this report shows for a visit's utm_campaign/content/term,
    for other pages (the call journal) to name a campaign as ROMI does instead of by its id."""
    ctx = _Context(db, client)

    def names(campaign: str | None, content: str | None, term: str | None) -> tuple[str, ...]:
        return tuple(label for _, label in ctx.dims(campaign, content, term))

    return names


def credited_to(db: Session, client: Client, call_id: int, model: Model | str) -> tuple[str, ...] | None:
    """The labels of the row (channel, campaign, ad group, keyword) this report credits one call to under
    ``model``, so a call's page can say where ROMI counts it; None for a call the report does not count."""
    model = Model(model)
    call = db.get(Call, call_id)
    if call is None or call.client_id != client.id or call.called_at is None:
        return None
    if call.status == CallStatus.IN_PROGRESS:  # the report counts finished calls only
        return None
    day = call.called_at.astimezone(ZoneInfo(client.timezone or "UTC")).date()
    lo, hi = period_bounds(client, day, day)
    ctx = _Context(db, client)
    session = db.get(VisitSession, call.session_id) if call.session_id else None
    wanted = _CallRow(
        call.id, call.caller, call.status, call.first_time, bool(call.is_target), call.attribution_method,
        call.channel_id,
        call.session_id, session.site_id if session else None, session.visitor_id if session else None,
        session.started_at if session else None, session.channel_id if session else None,
        session.utm_campaign if session else None, session.utm_content if session else None,
        session.utm_term if session else None, call.called_at,
    )  # fmt: skip
    touch = _touches(ctx, [wanted], model, lo, hi).get(call.id)  # as the report moves it (see _add_calls)
    channel_id, campaign, content, term = touch or (
        wanted.channel_id,
        wanted.campaign,
        wanted.content,
        wanted.term,
    )
    if call.attribution_method == AttributionMethod.MANUAL:
        channel_id, campaign, content, term = call.channel_id, None, None, None
    if channel_id is None:
        special = {AttributionMethod.OVERFLOW: OVERFLOW, AttributionMethod.UNMATCHED: UNMATCHED}
        return (SPECIAL_LABELS[special.get(call.attribution_method, UNATTRIBUTED)],)
    return (ctx.channel_key(channel_id)[1], *(label for _, label in ctx.dims(campaign, content, term)))
