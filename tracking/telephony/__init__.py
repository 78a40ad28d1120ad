"""Telephony providers: each module verifies one provider's webhook signature and turns its payload into
the one normalised ``tracking.telephony.base.CallEvent`` that ``tracking.calls`` ingests."""

PROVIDERS = ("twilio", "zadarma", "novofon", "mango", "generic")
