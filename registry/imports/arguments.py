"""Checks of the caller's arguments to imports and `create_many` (a raw producer can send
any JSON), with the limits every operation uses (`registry.operations`)."""

from __future__ import annotations

from typing import Any

from ..errors import ValidationFailed
from ..operations import MAX_IDEMPOTENCY_KEY, MAX_ROLE, MAX_USER_ID, text_problem

__all__ = ["check_caller"]


def check_caller(*, user_id: Any, user_role: Any, idempotency_key: Any = None) -> None:
    """Raises `ValidationFailed` naming each malformed argument."""
    checks = (("user_role", user_role, MAX_ROLE, True), ("user_id", user_id, MAX_USER_ID, False),
              ("idempotency_key", idempotency_key, MAX_IDEMPOTENCY_KEY, False))
    problems = [(name, why) for name, value, limit, required in checks
                if (why := text_problem(value, limit, required=required)) is not None]
    if problems:
        raise ValidationFailed(
            "Invalid call: " + "; ".join(f"{name!r} {why}" for name, why in problems) + ".",
            errors=[{"loc": [name], "msg": why, "type": "argument"} for name, why in problems],
        )
