"""The one error the domain raises for input it refuses, so the API and the web pages map it alike."""

from __future__ import annotations


class Refused(ValueError):
    """Input refused before anything changed. ``field`` names the offending input (``body`` for the whole),
    ``code`` is the machine-readable reason the API answers with."""

    def __init__(self, field: str, message: str, code: str = "invalid") -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.code = code
