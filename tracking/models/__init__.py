"""All mapped tables. Importing this package registers every model on ``Base.metadata``."""

from tracking.models.calls import (
    AttributionChange,
    AttributionMethod,
    Call,
    CallCandidate,
    CallStatus,
    StoredCallEvent,
    TelephonyIntegration,
)
from tracking.models.deals import Deal, DealStatus
from tracking.models.delivery import (
    Connection,
    ConnectionClient,
    ConnectionStatus,
    Delivery,
    DeliveryDestination,
    DeliveryStatus,
    SchedulerLease,
    SyncRun,
)
from tracking.models.numbers import Channel, Pool, PoolChannel, TrackingNumber
from tracking.models.pool_stats import PoolStat
from tracking.models.ratelimit import RateLimitCounter
from tracking.models.romi import RomiDaily, RomiDailyCaller, RomiDirty, RomiLeaf, RomiMonthly, RomiRollupState
from tracking.models.sessions import FallbackEvent, NumberAssignment, VisitSession
from tracking.models.spend import CampaignMapping, ManualSpend, PlatformSpend
from tracking.models.tenancy import Agency, ApiToken, Client, Role, Site, User

__all__ = [
    "AttributionChange",
    "AttributionMethod",
    "Call",
    "CallCandidate",
    "StoredCallEvent",
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
    "DeliveryDestination",
    "DeliveryStatus",
    "FallbackEvent",
    "ManualSpend",
    "NumberAssignment",
    "Pool",
    "PoolChannel",
    "PoolStat",
    "RomiDaily",
    "RomiDailyCaller",
    "RomiDirty",
    "RomiLeaf",
    "RomiMonthly",
    "RomiRollupState",
    "RateLimitCounter",
    "Role",
    "SchedulerLease",
    "Site",
    "PlatformSpend",
    "SyncRun",
    "TrackingNumber",
    "User",
    "VisitSession",
]
