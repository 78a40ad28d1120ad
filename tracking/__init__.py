"""The tracking domain: tenants, numbers, pools, visitor sessions, calls and attribution.

Nothing in this package imports Flask; the hub, the connectors and the jobs all build on it.
"""
