"""Codecs that audit blocks are stored with; each block names its codec, so blocks written
under one setting stay readable after the setting changes.

- `none`: the entries as they are (`models.audit_compression = false`);
- `zlib`: the specification's codec and the default;
- `zstd`: faster and smaller, when `audit.codec = "zstd"`.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Literal

import zstandard

from ..errors import AuditIntegrityError, ConfigurationError

__all__ = ["CODEC_NAMES", "Codec", "CodecName", "codec_for"]

CodecName = Literal["none", "zlib", "zstd"]
CODEC_NAMES: tuple[CodecName, ...] = ("none", "zlib", "zstd")
#: Levels used when settings name none: zlib's own default, and zstd's, which compresses
#: audit batches better than zlib 9 at a tenth of its time (bench/bench_audit.py).
DEFAULT_LEVELS: dict[str, int] = {"none": 0, "zlib": 6, "zstd": 3}
_LEVEL_RANGES: dict[str, range] = {"none": range(1), "zlib": range(10), "zstd": range(1, 23)}


@dataclass(frozen=True)
class Codec:
    """One way of turning a block's entries into stored bytes and back."""

    name: CodecName
    level: int

    def compress(self, data: bytes) -> bytes:
        if self.name == "zlib":
            return zlib.compress(data, self.level)
        if self.name == "zstd":
            return zstandard.ZstdCompressor(level=self.level).compress(data)
        return data

    def decompress(self, data: bytes) -> bytes:
        """Raises `AuditIntegrityError` when the bytes are not this codec's output."""
        try:
            if self.name == "zlib":
                return zlib.decompress(data)
            if self.name == "zstd":
                return zstandard.ZstdDecompressor().decompress(data)
        except (zlib.error, zstandard.ZstdError) as exc:
            raise AuditIntegrityError(
                f"An audit block does not decompress with {self.name}: {exc}.", codec=self.name
            ) from None
        return data


def codec_for(name: str, level: int | None = None) -> Codec:
    """The codec called `name` at `level` (its default when None).

    Raises `ConfigurationError` for an unknown name or a level outside the codec's range.
    """
    if name not in CODEC_NAMES:
        raise ConfigurationError(
            f"Audit codec {name!r} is unknown; known codecs: {', '.join(CODEC_NAMES)}.",
            key="audit.codec",
        )
    chosen = DEFAULT_LEVELS[name] if level is None else level
    allowed = _LEVEL_RANGES[name]
    if chosen not in allowed:
        raise ConfigurationError(
            f"Compression level {chosen} is outside {allowed.start}..{allowed.stop - 1} "
            f"for codec {name!r}.",
            key="audit.compression_level",
        )
    return Codec(name, chosen)
