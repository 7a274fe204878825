"""Annotations put together from parts, as the builders produce them at run time."""

from __future__ import annotations

import typing
from typing import Annotated, Any, Union


def with_metadata(annotation: Any, metadata: list[Any]) -> Any:
    """`Annotated[annotation, *metadata]`, or `annotation` itself when there is no metadata."""
    return typing.cast(Any, Annotated)[(annotation, *metadata)] if metadata else annotation


def union_of(annotations: list[Any]) -> Any:
    return annotations[0] if len(annotations) == 1 else typing.cast(Any, Union)[tuple(annotations)]


def nullable(annotation: Any) -> Any:
    return typing.cast(Any, Union)[annotation, None]
