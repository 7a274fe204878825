"""Email validation for bulk writes: the same answers as `EmailStr`, at a fraction of the cost.

`EmailStr` runs the email-validator package, which spends about ten times as long on one
address as Pydantic spends on the rest of a typical row. Almost every address in real data is
plain ASCII of a shape that package accepts without question; for those, one compiled regular
expression gives the same verdict and the same normalised form (the domain in lower case).
Anything the expression does not accept outright (non-ASCII, quoted or "pretty" forms,
special-use domains, Punycode-like labels, lengths near the limits, and every invalid
address) goes to the full validator, so errors and edge cases are exactly `EmailStr`'s. A
property test compares the two.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Union, get_args, get_origin

import email_validator
from pydantic import AfterValidator
from pydantic.networks import EmailStr, validate_email

__all__ = ["FastEmail", "fast_email", "emails_to_check", "swap_email"]

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_LOCAL = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_DOMAIN = rf"(?:{_LABEL}\.)+[A-Za-z]{{2,63}}"
_PLAIN = re.compile(rf"(?P<local>{_LOCAL})@(?P<domain>{_DOMAIN})")
#: Special-use names (RFC 6761) the package refuses; each is one label, so a domain is special
#: when its last label is one of them.
_SPECIAL = frozenset(email_validator.SPECIAL_USE_DOMAIN_NAMES)
#: Lengths the email-validator package enforces (RFC 5321); near them, it decides.
_MAX_LOCAL = 64
_MAX_TOTAL = 254
#: Addresses that `fast_email` accepts unchanged, each ending a line: `_PLAIN` with the
#: local part's length limit, domains in lower case and no special-use last label. No part
#: matches a line break, so a value holding one cannot pass for two lines.
_UNCHANGED_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_UNCHANGED_LAST = rf"(?!(?:{'|'.join(sorted(map(re.escape, _SPECIAL)))})(?:\n|\Z))[a-z]{{2,63}}"
_UNCHANGED = (rf"(?=[^@\n]{{1,{_MAX_LOCAL}}}@){_LOCAL}@(?:{_UNCHANGED_LABEL}\.)+"
              rf"{_UNCHANGED_LAST}")
_UNCHANGED_LINES = re.compile(rf"(?:{_UNCHANGED}\n)*")


def fast_email(value: str) -> str:
    """`EmailStr`'s validation and normalisation of `value`."""
    found = _PLAIN.fullmatch(value)
    if found is not None and len(value) <= _MAX_TOTAL:
        local, domain = found.group("local"), found.group("domain").lower()
        if len(local) <= _MAX_LOCAL and "--" not in domain and not _special(domain):
            return f"{local}@{domain}"
    return validate_email(value)[1]


def emails_to_check(values: list[str]) -> list[int]:
    """Positions of the values `fast_email` might change or refuse; it accepts every other
    one as written. The usual column (plain ASCII addresses, domains in lower case) is read
    in a few matches over its text in C instead of a call per value; a property test holds
    this to `fast_email`."""
    text = "\n".join(values) + "\n"
    if text.count("\n") != len(values):  # a value holds a line break: look at each
        return list(range(len(values)))
    closer: set[int] = set()
    if "--" in text:
        closer.update(i for i, value in enumerate(values) if "--" in value)
    if max(map(len, values), default=0) > _MAX_TOTAL:
        closer.update(i for i, value in enumerate(values) if len(value) > _MAX_TOTAL)
    line = position = 0
    while True:
        end = _UNCHANGED_LINES.match(text, position).end()  # type: ignore[union-attr]
        line += text.count("\n", position, end)
        if end == len(text):
            return sorted(closer)
        closer.add(line)  # the line the match stopped at
        position = text.index("\n", end) + 1
        line += 1


def _special(domain: str) -> bool:
    return domain.rpartition(".")[2] in _SPECIAL


FastEmail = Annotated[str, AfterValidator(fast_email)]


def swap_email(annotation: Any) -> Any:
    """The annotation with `EmailStr` replaced by `FastEmail`, also inside `X | None`; the
    annotation itself when it holds no `EmailStr`."""
    if annotation is EmailStr:
        return FastEmail
    if get_origin(annotation) in (Union, type(int | None)):
        members = get_args(annotation)
        swapped = tuple(swap_email(member) for member in members)
        if swapped != members:
            return Union[swapped]  # noqa: UP007 - built from a tuple
    return annotation
