"""Contact data is stored one way whatever way it was typed: e-mail, phone (E.164), free text (NFKC)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from common.normalize import normalize_email, normalize_phone, normalize_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("  Zhang.Wei@Example.COM ", "zhang.wei@example.com", id="trim-and-lower"),
        pytest.param("ｌｉ＠ｅｘａｍｐｌｅ．ｃｏｍ", "li@example.com", id="full-width"),
        pytest.param("", "", id="empty"),
        pytest.param(None, "", id="none"),
        pytest.param("   ", "", id="blank"),
        pytest.param("first.last+tag@sub.example.co.uk", "first.last+tag@sub.example.co.uk", id="plus-and-subdomain"),
    ],
)
def test_normalize_email(raw: str | None, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["not-an-address", "a@b", "two@@example.com", "spaces in@example.com", "<script>@example.com"],
)
def test_invalid_email_raises(raw: str) -> None:
    with pytest.raises(ValidationError):
        normalize_email(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("13800138000", "+8613800138000", id="cn-mobile-no-prefix"),
        pytest.param("138 0013 8000", "+8613800138000", id="cn-mobile-spaces"),
        pytest.param("138-0013-8000", "+8613800138000", id="cn-mobile-dashes"),
        pytest.param("+86 138 0013 8000", "+8613800138000", id="plus86-spaces"),
        pytest.param("+86-138-0013-8000", "+8613800138000", id="plus86-dashes"),
        pytest.param("0086 138 0013 8000", "+8613800138000", id="0086-prefix"),
        pytest.param("(010) 6552-9988", "+861065529988", id="cn-landline-area-code"),
        pytest.param("+1 (415) 555-0123", "+14155550123", id="us-plus1"),
        pytest.param("+1-202-555-0175", "+12025550175", id="us-plus1-dashes"),
        pytest.param("+44 20 7946 0958", "+442079460958", id="uk"),
        pytest.param("１３８００１３８０００", "+8613800138000", id="full-width-digits"),
        pytest.param("＋８６ １３８ ００１３ ８０００", "+8613800138000", id="full-width-plus-and-digits"),
        pytest.param("", "", id="empty"),
        pytest.param(None, "", id="none"),
    ],
)
def test_normalize_phone_to_e164(raw: str | None, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("12", id="too-short"),
        pytest.param("138001380001234567", id="too-long"),
        pytest.param("call me", id="words"),
        pytest.param("+", id="plus-only"),
        pytest.param("+999 1234 5678", id="unknown-country-code"),
        pytest.param("=1+2", id="formula"),
    ],
)
def test_invalid_phone_raises(raw: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        normalize_phone(raw)

    assert excinfo.value.code == "invalid_phone"


def test_phone_without_country_code_uses_the_given_region() -> None:
    assert normalize_phone("(415) 555-0123", region="US") == "+14155550123"


@override_settings(LEADCRM_DEFAULT_PHONE_REGION="US")
def test_phone_default_region_comes_from_settings() -> None:
    assert normalize_phone("415 555 0123") == "+14155550123"
    # An explicit country code wins over the default region.
    assert normalize_phone("+86 138 0013 8000") == "+8613800138000"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("ＡＢＣ", "ABC", id="full-width-letters"),
        pytest.param("ＡＣＭＥ　Ｒｏｂｏｔｉｃｓ", "ACME Robotics", id="full-width-with-ideographic-space"),
        pytest.param("１２３", "123", id="full-width-digits"),
        pytest.param("  Zhang \t\n  Wei  ", "Zhang Wei", id="collapse-whitespace"),
        pytest.param("张伟", "张伟", id="chinese-unchanged"),
        pytest.param("Anna 😀🚀", "Anna 😀🚀", id="emoji-preserved"),
        pytest.param("👩‍💻 Dev", "👩‍💻 Dev", id="zwj-emoji-preserved"),
        pytest.param("Café", "Café", id="composed-accent"),
        pytest.param("Cafe\u0301", "Café", id="decomposed-accent-composed"),
        pytest.param("<script>alert(1)</script>", "<script>alert(1)</script>", id="markup-kept-as-text"),
        pytest.param("", "", id="empty"),
        pytest.param(None, "", id="none"),
    ],
)
def test_normalize_text(raw: str | None, expected: str) -> None:
    assert normalize_text(raw) == expected
