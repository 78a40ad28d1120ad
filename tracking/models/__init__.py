"""All mapped tables. Importing this package registers every model on ``Base.metadata``."""

from tracking.models.calls import (
    AttributionChange,
    AttributionMethod,
    Call,
    CallCandidate,
    CallEvent,
    CallStatus,
    TelephonyIntegration,
)
from tracking.models.deals import Deal, DealStatus
from tracking.models.delivery import (
    Connection,
    ConnectionClient,
    ConnectionStatus,
    Delivery,
    DeliveryStatus,
    SchedulerLease,
    SyncRun,
)
from tracking.models.numbers import Channel, Pool, PoolChannel, TrackingNumber
from tracking.models.pool_stats import PoolStat
from tracking.models.ratelimit import RateLimitCounter
from tracking.models.sessions import FallbackEvent, NumberAssignment, VisitSession
from tracking.models.spend import CampaignMapping, ManualSpend, SpendRow
from tracking.models.tenancy import Agency, ApiToken, Client, Role, Site, User

__all__ = [
    "AttributionChange",
    "AttributionMethod",
    "Call",
    "CallCandidate",
    "CallEvent",
    "CallStatus",
    "TelephonyIntegration",
    "Agency",
    "ApiToken",
    "CampaignMapping",
    "Channel",
    "Client",
    "Connection",
    "ConnectionClient",
    "ConnectionStatus",
    "Deal",
    "DealStatus",
    "Delivery",
    "DeliveryStatus",
    "FallbackEvent",
    "ManualSpend",
    "NumberAssignment",
    "Pool",
    "PoolChannel",
    "PoolStat",
    "RateLimitCounter",
    "Role",
    "SchedulerLease",
    "Site",
    "SpendRow",
    "SyncRun",
    "TrackingNumber",
    "User",
    "VisitSession",
]
