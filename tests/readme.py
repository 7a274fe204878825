"""Reads README.md's code blocks, so tests can run them (the README never drifts)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
_BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.DOTALL)


def code_blocks(language: str) -> list[str]:
    return [body for lang, body in _BLOCK.findall(README.read_text()) if lang == language]


def needs_a_worker(block: str) -> bool:
    return "celery" in block or "tasks.client" in block
