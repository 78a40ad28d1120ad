"""Google Ads: call and won-deal conversions pushed as offline conversions, spend pulled per day.

Importing this package is cheap: ``google.ads`` (tens of megabytes of generated protobuf code) is imported
only by ``make_connector``, so web workers that merely list connectors never load it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.google_ads.provider import PROVIDER

if TYPE_CHECKING:
    from connectors.base import AccountContext, Connector

CAPABILITIES = frozenset({"push_calls", "push_deals", "spend"})

__all__ = ["CAPABILITIES", "PROVIDER", "make_connector"]


def make_connector(ctx: AccountContext) -> Connector:
    from connectors.google_ads.connector import GoogleAdsConnector

    return GoogleAdsConnector(ctx)
