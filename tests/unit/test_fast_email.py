"""`fast_email` answers as `EmailStr` does: the same addresses accepted, the same normalised
form, the same errors. Bulk validation depends on it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, EmailStr, TypeAdapter, ValidationError

from registry.imports.bulk import bulk_twin
from registry.imports.fast_email import FastEmail, emails_to_check

EMAIL = TypeAdapter(EmailStr)
FAST = TypeAdapter(FastEmail)

ATEXT = "abcXYZ019!#$%&'*+/=?^_`{|}~-."
LOCAL = st.text(alphabet=ATEXT + "é \"@", min_size=0, max_size=70)
LABEL = st.text(alphabet="abcXYZ019-_é", min_size=0, max_size=65)
DOMAIN = st.lists(LABEL, min_size=1, max_size=4).map(".".join)
TLD = st.sampled_from(["com", "ORG", "test", "local", "x", "c0m", "xn--p1ai", "onion", "de"])


def verdict(adapter: TypeAdapter[str], value: str) -> tuple[str, str]:
    try:
        return "ok", adapter.validate_python(value)
    except ValidationError as exc:
        return "error", str(exc.errors(include_url=False)[0]["msg"])


@settings(max_examples=600, deadline=None)
@given(local=LOCAL, domain=DOMAIN, tld=TLD)
def test_fast_email_matches_email_str(local: str, domain: str, tld: str) -> None:
    value = f"{local}@{domain}.{tld}"
    assert verdict(FAST, value) == verdict(EMAIL, value)


@pytest.mark.parametrize("value", [
    "Plain.Person@Example.COM", "a@b.co", "John Doe <john@example.com>", " pad@example.com ",
    "x@localhost", "x@foo.test", "x@ab--cd.com", "x" * 65 + "@example.com", "a..b@example.com",
    "a@example", "a@-example.com", "user+tag@sub.example.org", "ü@example.com",
])
def test_edge_cases_match(value: str) -> None:
    assert verdict(FAST, value) == verdict(EMAIL, value)


def test_only_models_without_code_get_a_twin() -> None:
    from pydantic import field_validator

    class Plain(BaseModel):
        email: EmailStr
        backup: EmailStr | None = None

    class WithCode(BaseModel):
        email: EmailStr

        @field_validator("email")
        @classmethod
        def lower(cls, value: str) -> str:
            return value.lower()

    twin = bulk_twin(Plain)
    assert twin is not Plain and list(twin.model_fields) == ["email", "backup"]
    assert twin.model_validate({"email": "A@B.COM"}).email == "A@b.com"
    assert twin.model_validate({"email": "a@b.com"}).backup is None
    assert bulk_twin(WithCode) is WithCode



@settings(max_examples=400, deadline=None)
@given(values=st.lists(st.one_of(
    st.builds(lambda local, domain, tld: f"{local}@{domain}.{tld}", LOCAL, DOMAIN, TLD),
    st.sampled_from(["a@example.com", "B.c@sub.example.org", "x@ab--cd.com", "a@b.co\nc@d.co",
                     "y" * 64 + "@example.com", "y" * 65 + "@example.com", "z@localhost.com",
                     "z@example.localhost", "z@example.Com", "", "a@" + "b" * 250 + ".com"]),
), max_size=8))
def test_emails_to_check_names_every_address_fast_email_would_change_or_refuse(
    values: list[str],
) -> None:
    """Every value the column check lets through is one `fast_email` accepts as written."""
    closer = set(emails_to_check(values))
    for position, value in enumerate(values):
        if position not in closer:
            assert verdict(FAST, value) == ("ok", value)


def test_emails_to_check_passes_the_usual_column_and_names_the_odd_ones() -> None:
    usual = [f"customer{i}@example.com" for i in range(50)] + ["a.b+c@mail.example.org"]
    assert emails_to_check(usual) == []
    odd = ["A@Example.COM", "a@b.test", "not an email", "x" * 65 + "@a.com", "a@b--c.com"]
    mixed = [value for pair in zip(usual, odd + [""] * 50, strict=False) for value in pair]
    assert [mixed[i] for i in emails_to_check(mixed)] == [*odd, *[""] * 46]
    assert emails_to_check(["a@b.com\nc@d.com", "e@f.com"]) == [0, 1]
