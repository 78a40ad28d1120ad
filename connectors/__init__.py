"""Connectors to CRMs and ad platforms. Each is a folder: client (wire calls), mapping, OAuth provider."""
