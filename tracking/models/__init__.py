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
from tracking.models.numbers import Channel, Pool, PoolChannel, TrackingNumber
from tracking.models.sessions import FallbackEvent, NumberAssignment, VisitSession
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
    "Channel",
    "Client",
    "FallbackEvent",
    "NumberAssignment",
    "Pool",
    "PoolChannel",
    "Role",
    "Site",
    "TrackingNumber",
    "User",
    "VisitSession",
]
