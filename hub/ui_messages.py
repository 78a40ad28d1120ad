"""The domain's refusals (``tracking.errors.Refused``, schema errors turned into one) in the page's language.

The domain and the API speak English and stay that way (machines read them); a page shows the same refusal
through this table: the field in words (``hub.formatting.label``), the reason matched by its wording, with
the numbers and names it carries kept. A reason not in the table is shown as the domain wrote it.
"""

from __future__ import annotations

import re
from typing import Any

from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from hub.formatting import LABELS, label
from tracking.errors import Refused

# (English reason as the domain writes it, with its variable parts as named groups) -> the reason in words of
# the UI; the named groups fill the translation's placeholders. The English message ids keep the domain's
# wording where it reads well, so an English page says what the API says.
REASONS: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(p), msg)
    for p, msg in (
        (r"must be an integer", _l("must be an integer")),
        (r"must be one of (?P<values>.+)", _l("must be one of %(values)s")),
        (
            r"must be a list of non-empty strings of up to (?P<n>\d+) characters",
            _l("must be a list of non-empty strings of up to %(n)s characters"),
        ),
        (
            r"must be a string of up to (?P<n>\d+) characters",
            _l("must be a string of up to %(n)s characters"),
        ),
        (
            r"must be the promo code the caller named \(up to (?P<n>\d+) characters\)",
            _l("must be the promo code the caller named (up to %(n)s characters)"),
        ),
        (r"must be one of this client's channels", _l("must be one of this client's channels")),
        (r"must be a list of (?P<values>.+)", _l("must be a list of %(values)s")),
        (
            r"must be a numeric chat id \(groups start with -\) or @channelname",
            _l("must be a numeric chat id (groups start with -) or @channelname"),
        ),
        (r"must be between (?P<a>\S+) and (?P<b>\S+)", _l("must be between %(a)s and %(b)s")),
        (r"must be true or false", _l("must be true or false")),
        (r"must carry a time zone", _l("must carry a time zone")),
        (r"must be a date, YYYY-MM-DD", _l("must be a date, YYYY-MM-DD")),
        (
            r"must be a date \(YYYY-MM-DD\) or an ISO 8601 time with zone",
            _l("must be a date (YYYY-MM-DD) or an ISO 8601 time with zone"),
        ),
        (r"must be an object", _l("must be an object")),
        (r"is required", _l("is required")),
        (r"is not a field of this object", _l("is not a field of this object")),
        (r"unknown action", _l("unknown action")),
        (r"no session showed promo code (?P<code>.+)", _l("no session showed promo code %(code)s")),
        (r"empty promo code", _l("empty promo code")),
        # amoCRM's settings form
        (r"must be amoCRM's numeric id", _l("must be amoCRM's numeric id")),
        (r"unsorted or lead", _l("unsorted or lead")),
        (r"at most 10, each up to 50 characters", _l("at most 10, each up to 50 characters")),
        (
            r"an amoCRM field id \(digits\) or code \(like UTM_SOURCE\)",
            _l("an amoCRM field id (digits) or code (like UTM_SOURCE)"),
        ),
        (r"deals need a pipeline", _l("deals need a pipeline")),
        # Pydantic's own wording, for the forms validated through the API's schemas
        (r"Input should be a valid integer.*", _l("must be an integer")),
        (r"Input should be a valid number.*", _l("must be a number")),
        (r"Input should be a valid boolean.*", _l("must be yes or no")),
        (r"Input should be a valid string", _l("must be text")),
        (r"Input should be a valid list", _l("must be a list")),
        (r"Input should be greater than or equal to (?P<n>\S+)", _l("must be at least %(n)s")),
        (r"Input should be greater than (?P<n>\S+)", _l("must be more than %(n)s")),
        (r"Input should be less than or equal to (?P<n>\S+)", _l("must be at most %(n)s")),
        (r"Input should be less than (?P<n>\S+)", _l("must be less than %(n)s")),
        (r"String should have at most (?P<n>\d+) characters?", _l("must be at most %(n)s characters long")),
        (r"String should have at least (?P<n>\d+) characters?", _l("must be at least %(n)s characters long")),
        (r"Field required", _l("is required")),
        (r"Input should be (?P<values>'.+)", _l("must be %(values)s")),
    )
]


def _listed(values: str) -> str:
    """A list of the domain's keys ("answered, missed") in words where the UI has words for them."""
    return ", ".join(label(v) if v in LABELS else v for v in values.split(", "))


def reason(message: str) -> str:
    """One reason in the page's language, or as written when the table does not know it."""
    for pattern, translated in REASONS:
        found = pattern.fullmatch(message)
        if found:
            text = str(translated)
            words = {k: _listed(v) if k == "values" else v for k, v in found.groupdict().items()}
            return text % words if words else text
    return message


def refusal_text(exc: Refused, field_as_written: bool = False) -> str:
    """``Field: reason`` for a person, in the page's language. A form that labels its inputs by their keys
    (a connector's declared settings) names the field by its key too, so the two can be matched."""
    field = exc.field if field_as_written else (exc.field.split(".")[-1].split("[")[0] if exc.field else "")
    if not field or field == "body":
        return reason(exc.message)
    shown = field if field_as_written else label(field)
    return gettext("%(field)s: %(reason)s", field=shown, reason=reason(exc.message))
