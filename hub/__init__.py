"""The Otkuda web hub: Flask app factory, web UI, REST API and public tracking endpoints."""

from hub.app import create_app

__all__ = ["create_app"]
