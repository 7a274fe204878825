"""The stored forms of the audit trail: entry bodies, their hashes, and blocks.

An entry's body is one JSON object: its fields in a fixed order, with `changes` and `metadata`
as the exact JSON text the outbox's JSON columns hold (SQLAlchemy's default serializer,
`json.dumps`; PostgreSQL's `json` type and SQLite keep text as written). Its keyed hash
(`keys.py`) is stored with the pending entry. Compaction and verification read that text back
and rebuild the body without decoding any JSON, which is most of what makes compaction fast;
a database that rewrote the text (a JSONB column, another serializer) would fail every check
at once, loudly.

A block is a batch of entry bodies as JSON lines (`{"seq":N,...body...}`, each ending in a
newline), run through the codec it names. Its hash is the keyed hash (`keys.py`) of a
canonical header holding the previous block's hash, the codec, the seq range, the entry count,
the index (time range, models, key filter) and the sha256 of the payload: changing any of
them, or removing a block, breaks the chain, and without the key no one can make a block or
entry hash that verifies. The key filter is a Bloom filter over the block's `(model, record
id)` pairs and actors, so a history query opens only the blocks that may hold what it asks
for.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

from ..errors import AuditIntegrityError
from ..tables import as_utc
from .codecs import Codec
from .keys import AuditKeys

__all__ = [
    "GENESIS_HASH",
    "BlockIndex",
    "KeyFilter",
    "PendingLine",
    "SealedBlock",
    "actor_key",
    "block_header",
    "decode_lines",
    "entry_body",
    "index_from_row",
    "json_text",
    "record_key",
    "seal_block",
    "split_lines",
]

#: The `prev_hash` of the first block ever written.
GENESIS_HASH = "0" * 64
#: Bloom filter size per key, in bits, and probes per key: about a 1% false-positive rate.
_BITS_PER_KEY = 10
_PROBES = 7


def _dumps(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def json_text(value: Any) -> str:
    """A value as the outbox's JSON columns store it: `json.dumps(value)`'s text."""
    if _ENCODE_CHUNKS is None:
        return json.dumps(value)
    return "".join(_ENCODE_CHUNKS(value, 0))


#: `json.dumps`'s own C encoder with its default settings, built once: `json.dumps` builds
#: one per call, which was a third of the cost of an audit entry's two texts. It keeps no
#: state between calls (no circular-reference markers: entry values are JSON-ready records),
#: so threads share it. None where the interpreter has no C encoder.
_ENCODE_CHUNKS = None if c_make_encoder is None else c_make_encoder(
    None, json.JSONEncoder().default, encode_basestring_ascii, None, ": ", ", ", False, False,
    True,
)


def _string(value: str | None) -> str:
    return "null" if value is None else encode_basestring_ascii(value)


def entry_body(
    *,
    model: str,
    record_id: str,
    operation: str,
    user_id: str | None,
    ts: datetime.datetime,
    changes_json: str,
    metadata_json: str,
    ns: str,
) -> bytes:
    """The bytes an entry's hash covers; `ts` is taken as UTC, as the database returns it."""
    if ts.tzinfo is not datetime.UTC:  # the database's values already are; skip the work
        ts = as_utc(ts)
    return (
        f'{{"model":{_string(model)},"record_id":{_string(record_id)},'
        f'"operation":{_string(operation)},"user_id":{_string(user_id)},'
        f'"ts":"{ts.isoformat()}","changes":{changes_json},'
        f'"metadata":{metadata_json},"ns":{_string(ns)}}}'
    ).encode()


def record_key(model: str, record_id: str) -> str:
    return f"r\x1f{model}\x1f{record_id}"


def actor_key(user_id: str | None) -> str:
    return f"u\x1f{user_id}"


class KeyFilter:
    """A Bloom filter: `may_contain` is False only for keys that were never added."""

    def __init__(self, bits: bytearray) -> None:
        self.bits = bits

    @classmethod
    def of(cls, keys: Iterable[str]) -> KeyFilter:
        unique = set(keys)
        size = max(8, -(-len(unique) * _BITS_PER_KEY // 8))
        built = cls(bytearray(size))
        for key in unique:
            for position in built._positions(key):
                built.bits[position >> 3] |= 1 << (position & 7)
        return built

    def may_contain(self, key: str) -> bool:
        return all(self.bits[p >> 3] & (1 << (p & 7)) for p in self._positions(key))

    def _positions(self, key: str) -> Iterator[int]:
        # Double hashing: two 64-bit halves of one digest give every probe position.
        digest = hashlib.blake2b(key.encode(), digest_size=16).digest()
        first, second = int.from_bytes(digest[:8]), int.from_bytes(digest[8:]) | 1
        size = len(self.bits) * 8
        return ((first + i * second) % size for i in range(_PROBES))


@dataclass(frozen=True)
class BlockIndex:
    """What a block holds, without opening it."""

    first_seq: int
    last_seq: int
    entry_count: int
    raw_bytes: int
    first_ts: datetime.datetime
    last_ts: datetime.datetime
    #: model -> [entries, raw bytes]
    model_counts: dict[str, list[int]]
    key_filter: bytes

    @property
    def model_names(self) -> str:
        return "," + ",".join(sorted(self.model_counts)) + ","


@dataclass(frozen=True)
class SealedBlock:
    """A block ready to store: its index, codec, payload and place in the chain."""

    index: BlockIndex
    codec: str
    payload: bytes
    prev_hash: str
    hash: str

    def to_row(self, created_at: datetime.datetime) -> dict[str, Any]:
        index = self.index
        return {
            "first_seq": index.first_seq,
            "last_seq": index.last_seq,
            "entry_count": index.entry_count,
            "codec": self.codec,
            "payload": self.payload,
            "raw_bytes": index.raw_bytes,
            "first_ts": index.first_ts,
            "last_ts": index.last_ts,
            "model_names": index.model_names,
            "model_counts": index.model_counts,
            "key_filter": index.key_filter,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
            "created_at": created_at,
        }


@dataclass(frozen=True)
class PendingLine:
    """One pending entry on its way into a block."""

    seq: int
    model: str
    record_id: str
    user_id: str | None
    ts: datetime.datetime
    #: The entry's body with its seq: `{"seq":N,...}`.
    line: bytes

    @classmethod
    def of(
        cls, seq: int, model: str, record_id: str, user_id: str | None,
        ts: datetime.datetime, body: bytes,
    ) -> PendingLine:
        # `seq` goes in front of the body's first key.
        return cls(seq, model, record_id, user_id, ts, b'{"seq":%d,' % seq + body[1:])


def seal_block(
    lines: Sequence[PendingLine], codec: Codec, prev_hash: str, keys: AuditKeys
) -> SealedBlock:
    """Compress lines (in trail order) into a block chained to `prev_hash`, signed with the
    current key."""
    raw = b"".join([item.line + b"\n" for item in lines])
    index = _index_of(lines, len(raw))
    payload = codec.compress(raw)
    digest = keys.sign(block_header(prev_hash, codec.name, payload, index))
    return SealedBlock(index, codec.name, payload, prev_hash, digest)


def _index_of(lines: Sequence[PendingLine], raw_bytes: int) -> BlockIndex:
    counts: dict[str, list[int]] = {}
    keys: list[str] = []
    for item in lines:
        tally = counts.setdefault(item.model, [0, 0])
        tally[0] += 1
        tally[1] += len(item.line) + 1
        keys.append(record_key(item.model, item.record_id))
        keys.append(actor_key(item.user_id))
    stamps = [item.ts for item in lines]
    seqs = [item.seq for item in lines]
    return BlockIndex(
        first_seq=min(seqs),
        last_seq=max(seqs),
        entry_count=len(lines),
        raw_bytes=raw_bytes,
        first_ts=min(stamps),
        last_ts=max(stamps),
        model_counts=counts,
        key_filter=bytes(KeyFilter.of(keys).bits),
    )


def block_header(prev_hash: str, codec: str, payload: bytes, index: BlockIndex) -> bytes:
    """What a block's chain hash covers: its predecessor, codec, payload and whole index."""
    header = {
        "prev_hash": prev_hash,
        "codec": codec,
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "first_seq": index.first_seq,
        "last_seq": index.last_seq,
        "entry_count": index.entry_count,
        "raw_bytes": index.raw_bytes,
        "first_ts": as_utc(index.first_ts).isoformat(),
        "last_ts": as_utc(index.last_ts).isoformat(),
        "model_counts": index.model_counts,
        "key_filter_sha256": hashlib.sha256(index.key_filter).hexdigest(),
    }
    return _dumps(header)


def index_from_row(row: Mapping[Any, Any]) -> BlockIndex:
    return BlockIndex(
        first_seq=row["first_seq"],
        last_seq=row["last_seq"],
        entry_count=row["entry_count"],
        raw_bytes=row["raw_bytes"],
        first_ts=row["first_ts"],
        last_ts=row["last_ts"],
        model_counts=row["model_counts"],
        key_filter=bytes(row["key_filter"]),
    )


def split_lines(raw: bytes) -> list[bytes]:
    """A decompressed payload's lines (each ends in a newline; JSON escapes any other)."""
    return raw.split(b"\n")[:-1]


def decode_lines(lines: Iterable[bytes], block_id: int) -> list[dict[str, Any]]:
    """Entry lines as dicts; raises `AuditIntegrityError` for a line that is not JSON."""
    try:
        return [json.loads(line) for line in lines]
    except ValueError:
        raise AuditIntegrityError(
            f"Audit block {block_id} holds a line that is not JSON.", block_id=block_id
        ) from None
