"""Phone numbers: typed in any common way, stored as E.164, shown with a site's template.

Numbers arrive from people (settings forms), telephony webhooks and web pages, written as
"8 (495) 123-45-67", "+7 495 123 45 67", "0074951234567" and so on; everything inside the hub is E.164.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

DEFAULT_REGION = "RU"

_ALLOWED = re.compile(r"^[\d\s()+\-.\u00a0/]+$")


class InvalidPhoneNumber(ValueError):
    """The input is not a phone number that can be dialled."""


def normalize(raw: str, region: str = DEFAULT_REGION) -> str:
    """Return ``raw`` as E.164 (``+74951234567``); national forms are read in ``region``.

    Raises :class:`InvalidPhoneNumber` for anything that is not a valid, dialable number.
    """
    if not isinstance(raw, str):
        raise InvalidPhoneNumber("a phone number must be a string")
    return _normalize(raw, region)


# Parsing with phonenumbers is the costly part of a visit response and the same few numbers recur.
@lru_cache(maxsize=4096)
def _normalize(raw: str, region: str) -> str:
    text = raw.strip()
    if not text or not _ALLOWED.match(text):
        raise InvalidPhoneNumber(f"not a phone number: {raw!r}")
    compact = re.sub(r"[^\d+]", "", text)
    if compact.count("+") > 1 or ("+" in compact and not compact.startswith("+")):
        raise InvalidPhoneNumber(f"misplaced '+' in {raw!r}")
    # "00" is the international prefix almost everywhere but not in every region's metadata (Russia's is
    # "810"), so it is read as "+" whatever the region.
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    try:
        parsed = phonenumbers.parse(compact, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(f"not a phone number: {raw!r}") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidPhoneNumber(f"not a valid phone number: {raw!r}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def is_e164(value: str) -> bool:
    return bool(re.fullmatch(r"\+[1-9]\d{6,14}", value or ""))


def _parse_e164(e164: str) -> phonenumbers.PhoneNumber:
    if not is_e164(e164):
        raise InvalidPhoneNumber(f"not E.164: {e164!r}")
    return phonenumbers.parse(e164, None)


@lru_cache(maxsize=4096)
def format_display(e164: str, template: str | None = None) -> str:
    """Write ``e164`` with ``template`` where each ``X`` takes the next national digit.

    A template that does not fit the number (another country code, another digit count) would garble
    it, so such numbers are written in the standard international format instead.
    """
    parsed = _parse_e164(e164)
    national = phonenumbers.national_significant_number(parsed)
    prefix = re.match(r"\s*\+(\d+)", template or "")
    same_country = prefix is None or prefix.group(1) == str(parsed.country_code)
    if template and same_country and template.count("X") == len(national):
        digits = iter(national)
        return "".join(next(digits) if ch == "X" else ch for ch in template)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def digit_patterns(e164: str) -> list[str]:
    return [digits for _, digits in _digit_forms(e164)]


def digit_forms(e164: str) -> list[tuple[str, str]]:
    """``digit_patterns`` with the kind of each form: "00", "international", "trunk" or "national".

    Two numbers of one country have the same kinds in the same order, so a form of one maps to the form
    of the other written the same way (``84951234567`` to ``88121234567``).
    """
    return list(_digit_forms(e164))


@lru_cache(maxsize=4096)
def _digit_forms(e164: str) -> tuple[tuple[str, str], ...]:
    """The digit sequences under which ``e164`` may be written on a page, longest first.

    The snippet ignores spaces, dashes, dots and brackets between digits and compares what is left with
    these: the international form (``74951234567``, also after ``+`` or ``00``), the national form with the
    trunk prefix (``84951234567`` in Russia) and the bare national number (``4951234567``).
    """
    parsed = _parse_e164(e164)
    national = phonenumbers.national_significant_number(parsed)
    country = str(parsed.country_code)
    forms = [("00", "00" + country + national), ("international", country + national)]
    region = phonenumbers.region_code_for_number(parsed)
    trunk = phonenumbers.ndd_prefix_for_region(region, True) if region else None
    if trunk:
        forms.append(("trunk", trunk + national))
    forms.append(("national", national))
    seen: list[tuple[str, str]] = []
    for kind, digits in sorted(forms, key=lambda f: len(f[1]), reverse=True):
        if digits not in (d for _, d in seen):
            seen.append((kind, digits))
    return tuple(seen)


@lru_cache(maxsize=4096)
def local_form(e164: str) -> tuple[str, str] | None:
    """The area code and the local number (``("495", "1234567")``) of a geographic number, else None.

    Inside its own city a number is often written without the area code ("тел. 123-45-67").
    """
    parsed = _parse_e164(e164)
    length = phonenumbers.length_of_geographical_area_code(parsed)
    if not length:
        return None
    national = phonenumbers.national_significant_number(parsed)
    return national[:length], national[length:]
