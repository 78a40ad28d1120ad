"""Google Ads: call and won-deal conversions pushed as offline conversions, spend pulled per day.

Importing this package is cheap: ``google.ads`` (tens of megabytes of generated protobuf code) is imported
only by ``make_connector``, so web workers that merely list connectors never load it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.base import AccountField
from connectors.google_ads.provider import PROVIDER

if TYPE_CHECKING:
    from connectors.base import AccountContext, Connector

_CUSTOMER = r"[0-9]{3}-?[0-9]{3}-?[0-9]{4}"
ACCOUNT_FIELDS = (
    AccountField("customer_id", _CUSTOMER, "a Google Ads customer id (123-456-7890)"),
    AccountField("login_customer_id", _CUSTOMER, "a Google Ads manager customer id (123-456-7890)"),
)
CAPABILITIES = frozenset({"push_calls", "push_deals", "spend"})

__all__ = ["ACCOUNT_FIELDS", "CAPABILITIES", "PROVIDER", "make_connector"]


def make_connector(ctx: AccountContext) -> Connector:
    from connectors.google_ads.connector import GoogleAdsConnector

    return GoogleAdsConnector(ctx)
