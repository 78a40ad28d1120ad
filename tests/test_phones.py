import pytest

from tracking import phones


@pytest.mark.parametrize(
    "raw",
    [
        "+74951234567",
        "+7 495 123 45 67",
        "8 (495) 123-45-67",
        "84951234567",
        "8-495-123-45-67",
        "(495) 123-45-67",
        "4951234567",
        "00 7 495 123 45 67",
        "0074951234567",
        " +7 (495) 123.45.67 ",
        "+7\u00a0495\u00a0123-45-67",
    ],
)
def test_common_russian_forms_normalise_to_e164(raw: str) -> None:
    assert phones.normalize(raw) == "+74951234567"


def test_default_region_is_configurable() -> None:
    assert phones.normalize("020 7946 0958", region="GB") == "+442079460958"
    assert phones.normalize("+44 20 7946 0958") == "+442079460958"
    # The same national digits mean a different number in another region.
    assert phones.normalize("(202) 555-0143", region="US") == "+12025550143"


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "   ",
        "call us",
        "12",
        "+7 495",
        "8 (495) 123-45-67 ext",
        "7+4951234567",
        "++74951234567",
        "+7 000 000 00 00",
    ],
)
def test_junk_raises_a_value_error_subclass(junk: str) -> None:
    with pytest.raises(phones.InvalidPhoneNumber) as info:
        phones.normalize(junk)
    assert isinstance(info.value, ValueError)


def test_non_string_is_refused() -> None:
    with pytest.raises(phones.InvalidPhoneNumber):
        phones.normalize(74951234567)  # type: ignore[arg-type]


def test_display_template_takes_national_digits_in_order() -> None:
    assert phones.format_display("+74951234567", "+7 (XXX) XXX-XX-XX") == "+7 (495) 123-45-67"
    assert phones.format_display("+74951234567", "8 XXX XXX XX XX") == "8 495 123 45 67"
    assert phones.format_display("+78005553535", "XXX-XXX-XX-XX") == "800-555-35-35"


def test_display_falls_back_to_international_when_template_does_not_fit() -> None:
    # Another country on a Russian template would be garbled, so it is written in the standard way.
    assert phones.format_display("+442079460958", "+7 (XXX) XXX-XX-XX") == "+44 20 7946 0958"
    assert phones.format_display("+74951234567", "+7 (XXX) XXX-XX") == "+7 495 123-45-67"
    assert phones.format_display("+74951234567", None) == "+7 495 123-45-67"


def test_digit_patterns_cover_every_common_written_form() -> None:
    pats = phones.digit_patterns("+74951234567")
    assert pats == ["0074951234567", "74951234567", "84951234567", "4951234567"]
    for written in ["+7 (495) 123-45-67", "8 495 123 45 67", "(495) 123-45-67", "0074951234567"]:
        assert "".join(c for c in written if c.isdigit()) in pats
    assert "02079460958" in phones.digit_patterns("+442079460958")


def test_digit_patterns_refuse_non_e164() -> None:
    with pytest.raises(phones.InvalidPhoneNumber):
        phones.digit_patterns("84951234567")


def test_digit_forms_align_kinds_between_numbers_of_one_country() -> None:
    business, tracking = phones.digit_forms("+74951234567"), phones.digit_forms("+74997000012")
    kinds = ["00", "international", "trunk", "national"]
    assert [k for k, _ in business] == [k for k, _ in tracking] == kinds
    assert dict(tracking)["trunk"] == "84997000012"
    # Where the trunk prefix equals the country code the form is listed once.
    assert [k for k, _ in phones.digit_forms("+12125551234")] == ["00", "international", "national"]


def test_local_form_only_for_geographic_numbers() -> None:
    assert phones.local_form("+74951234567") == ("495", "1234567")
    assert phones.local_form("+78005553535") is None  # toll-free
    assert phones.local_form("+79161234567") is None  # mobile
