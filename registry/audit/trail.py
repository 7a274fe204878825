"""Compaction, reading, verification, retention and statistics of the audit trail.

The trail is the chain of blocks (`dmr_audit_blocks`, oldest first by id) followed by the
pending outbox entries (`dmr_audit_outbox`, by seq). Every operation that changes the chain
(compaction and purge) runs in one transaction holding the chain lock, so blocks are written
one at a time, each chained to the one before, and a failure anywhere leaves the chain and
the outbox as they were.

Commit order. SQLite lets one writer in at a time, so seq order is commit order there. On
PostgreSQL `seq` is taken from a sequence during the writing transaction, before it commits:
a transaction can hold seq 5 while seq 6 has committed, and a compaction that took 6 would
put 5 after it, or miss it. So compaction takes only entries whose writing transaction id is
below the xmin of its snapshot (`pg_snapshot_xmin(pg_current_snapshot())`): every
transaction with a lower id has ended, so no entry of theirs can still appear. Those entries
are then ordered by seq. The order this gives respects real time: a change that committed
before another began is never placed after it. A transaction left open holds xmin back, and
compaction waits for it.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .. import batch_audit
from ..database import Database
from ..errors import AuditIntegrityError
from ..tables import audit_blocks, audit_chain, audit_outbox
from .blocks import (
    GENESIS_HASH,
    KeyFilter,
    PendingLine,
    actor_key,
    block_header,
    decode_lines,
    entry_body,
    index_from_row,
    record_key,
    seal_block,
    split_lines,
)
from .codecs import Codec, codec_for
from .keys import AuditKeys, key_id_of
from .replay import RecordFolds, StoredRecord

__all__ = ["AuditTrail", "CompactionPolicy", "StoredRecords", "TrailQuery"]

#: Reads, in the verifying snapshot, every stored record: (model name, record as a read
#: returns it, unmasked), one at a time.
StoredRecords = Callable[[Connection], Iterable[StoredRecord]]

#: pg_advisory_xact_lock key of the chain (database.py's catalog lock is 727301).
CHAIN_LOCK = 727302
#: Blocks read per query when walking the whole chain.
_PAGE = 50
_OUTBOX_COLUMNS = (
    audit_outbox.c.seq, audit_outbox.c.model, audit_outbox.c.record_id,
    audit_outbox.c.operation, audit_outbox.c.user_id, audit_outbox.c.ts,
    audit_outbox.c.changes, audit_outbox.c.metadata, audit_outbox.c.ns,
)
#: Pending entries as compaction and verification read them: the JSON columns as their
#: stored text, which the entry hash covers, so no JSON is decoded or encoded again.
_OUTBOX_TEXT_COLUMNS = (
    audit_outbox.c.seq, audit_outbox.c.model, audit_outbox.c.record_id,
    audit_outbox.c.operation, audit_outbox.c.user_id, audit_outbox.c.ts,
    sa.cast(audit_outbox.c.changes, sa.Text).label("changes_json"),
    sa.cast(audit_outbox.c.metadata, sa.Text).label("metadata_json"),
    audit_outbox.c.ns, audit_outbox.c.entry_hash,
)
#: What a `create_batch` entry's line holds (`entry_body` writes no spaces between keys).
_BATCH_NEEDLE = b'"operation":"%s"' % batch_audit.BATCH_OPERATION.encode()
_INDEX_COLUMNS = (
    audit_blocks.c.id, audit_blocks.c.key_filter, audit_blocks.c.first_ts,
    audit_blocks.c.last_ts,
)


@dataclass(frozen=True)
class CompactionPolicy:
    """How compaction cuts blocks."""

    #: Most entries in one block.
    batch_size: int = 5000
    #: Seconds the oldest pending entry may wait for a fuller block.
    max_wait_seconds: float = 5.0
    #: Most blocks one `compact` call writes, so one task never runs unbounded.
    max_blocks: int = 50
    codec: Codec = codec_for("zlib")


@dataclass(frozen=True)
class TrailQuery:
    """Which entries of one model to read. `since` is inclusive, `until` exclusive."""

    model: str
    record_id: str | None = None
    since: datetime.datetime | None = None
    until: datetime.datetime | None = None
    actor: str | None = None

    def matches(self, entry: Mapping[str, Any]) -> bool:
        """Whether a decoded entry (`ts` as a datetime) belongs to the answer."""
        if entry["model"] != self.model:
            return False
        if self.record_id is not None and entry["record_id"] != self.record_id:
            return False
        if self.actor is not None and entry["user_id"] != self.actor:
            return False
        ts = entry["ts"]
        return (self.since is None or ts >= self.since) and (self.until is None or ts < self.until)

    def block_may_hold(self, key_filter: KeyFilter) -> bool:
        if self.record_id is not None and not key_filter.may_contain(
            record_key(self.model, self.record_id)
        ):
            return False
        return self.actor is None or key_filter.may_contain(actor_key(self.actor))


@dataclass(frozen=True)
class _Head:
    head_hash: str
    head_block_id: int | None
    anchor_hash: str
    anchor_block_id: int | None
    purged_blocks: int
    purged_entries: int


_GENESIS = _Head(GENESIS_HASH, None, GENESIS_HASH, None, 0, 0)


class AuditTrail:
    """The audit trail of one database; see the module docstring."""

    def __init__(
        self, database: Database, clock: Callable[[], datetime.datetime], keys: AuditKeys
    ) -> None:
        self.database = database
        self.clock = clock
        #: Signs new blocks, and checks every entry and block hash (`keys.py`).
        self.keys = keys

    # -- compaction ---------------------------------------------------------------------

    def compact(self, policy: CompactionPolicy, *, force: bool = False) -> dict[str, int]:
        """Move settled pending entries into blocks; returns `{"blocks", "entries"}`.

        Without `force`, a batch smaller than `batch_size` waits until its oldest entry is
        `max_wait_seconds` old. Raises `AuditIntegrityError` when a pending entry no longer
        matches its hash (it is not sealed into a block; `verify` names it).
        """
        blocks = entries = 0
        while blocks < policy.max_blocks:
            written = self._compact_once(policy, force)
            if written == 0:
                break
            blocks, entries = blocks + 1, entries + written
            if written < policy.batch_size:
                break
        return {"blocks": blocks, "entries": entries}

    def _compact_once(self, policy: CompactionPolicy, force: bool) -> int:
        with self.database.write() as conn:
            head = self._lock_chain(conn)
            if not (force or self._batch_is_due(conn, policy)):
                return 0
            rows = self._take_settled(conn, policy.batch_size)
            if not rows:
                return 0
            lines = [_checked_line(row, self.keys) for row in rows]
            block = seal_block(lines, policy.codec, head.head_hash, self.keys)
            block_id = self._insert_block(conn, block.to_row(self.clock()))
            _advance_head(conn, block.hash, block_id)
            return len(lines)

    def _lock_chain(self, conn: Connection) -> _Head:
        """Take the chain lock (held to commit) and read the chain's head row.

        An advisory lock, not `SELECT ... FOR UPDATE`: it does not give this transaction an
        id, so this compaction never holds back the xmin it filters on. SQLite's write
        transaction already excludes every other writer.
        """
        if self.database.is_postgresql:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(CHAIN_LOCK)))
        row = conn.execute(sa.select(audit_chain).where(audit_chain.c.id == 1)).mappings().first()
        if row is None:
            conn.execute(sa.insert(audit_chain).values(id=1, **_head_values(_GENESIS)))
            return _GENESIS
        return _Head(**{key: row[key] for key in _head_values(_GENESIS)})

    def _settled(self, *columns: sa.ColumnElement[Any]) -> sa.Select[Any]:
        """Pending entries that compaction may take, in seq order (see the module docstring)."""
        query = sa.select(*columns).order_by(audit_outbox.c.seq)
        if self.database.is_postgresql:
            xmin = sa.func.pg_snapshot_xmin(sa.func.pg_current_snapshot())
            query = query.where(
                audit_outbox.c.tx_id < sa.cast(sa.cast(xmin, sa.Text), sa.BigInteger)
            )
        return query

    def _batch_is_due(self, conn: Connection, policy: CompactionPolicy) -> bool:
        """A full batch is waiting, or a part-filled one whose oldest entry waited enough."""
        batch = self._settled(audit_outbox.c.ts).limit(policy.batch_size).subquery()
        count, oldest = conn.execute(sa.select(sa.func.count(), sa.func.min(batch.c.ts))).one()
        if count >= policy.batch_size:
            return True
        waited = count > 0 and self.clock() - oldest >= _seconds(policy.max_wait_seconds)
        return bool(waited)

    def _take_settled(self, conn: Connection, limit: int) -> list[Any]:
        """Delete the next batch from the outbox and return it, in seq order.

        One statement finds and removes the rows; the block that holds them is written in
        the same transaction, so a failure before commit puts every row back.
        """
        chosen = self._settled(audit_outbox.c.seq).limit(limit).scalar_subquery()
        taken = sa.delete(audit_outbox).where(audit_outbox.c.seq.in_(chosen))
        rows = list(conn.execute(taken.returning(*_OUTBOX_TEXT_COLUMNS)))
        rows.sort(key=lambda row: row[0])  # RETURNING keeps no order; seq is first
        return rows

    def _insert_block(self, conn: Connection, row: dict[str, Any]) -> int:
        inserted = conn.execute(sa.insert(audit_blocks).returning(audit_blocks.c.id), row)
        return int(inserted.scalar_one())

    # -- reading ------------------------------------------------------------------------

    def read(self, query: TrailQuery) -> list[dict[str, Any]]:
        """Entries matching the query, in trail order, as dicts with `ts` a datetime.

        Pending entries are read before blocks: an entry compacted in between is then seen
        twice (and kept once), never missed; PostgreSQL's read transaction is READ COMMITTED.
        """
        with self.database.read() as conn:
            pending = [_entry_from_row(row) for row in conn.execute(_pending_query(query))]
            anchor = self._read_head(conn).anchor_block_id or 0
            found = list(self._block_entries(conn, query, anchor))
        seen = {entry["seq"] for entry in found}
        return found + [entry for entry in pending if entry["seq"] not in seen]

    def _block_entries(
        self, conn: Connection, query: TrailQuery, anchor: int
    ) -> Iterator[dict[str, Any]]:
        candidates = [
            row.id
            for row in conn.execute(_candidate_blocks(query, anchor))
            if query.block_may_hold(KeyFilter(bytearray(row.key_filter)))
        ]
        needle = _record_needle(query.record_id)
        for start in range(0, len(candidates), _PAGE):
            chosen = audit_blocks.c.id.in_(candidates[start : start + _PAGE])
            payloads = sa.select(audit_blocks.c.id, audit_blocks.c.codec, audit_blocks.c.payload)
            for row in conn.execute(payloads.where(chosen).order_by(audit_blocks.c.id)):
                raw = codec_for(row.codec).decompress(row.payload)
                lines = split_lines(raw)
                if needle is not None:  # a cheap byte search first: parse only the record's
                    lines = [line for line in lines if needle in line]
                for entry in decode_lines(lines, row.id):
                    entry["ts"] = datetime.datetime.fromisoformat(entry["ts"])
                    if query.matches(entry):
                        yield entry

    # -- verification -------------------------------------------------------------------

    def verify(self, stored_records: StoredRecords | None = None) -> dict[str, Any]:
        """Walk the chain from its anchor, every pending entry, and each record's history.

        All in one snapshot, so a compaction or purge committing meanwhile is not mistaken
        for damage. Every block and pending entry must match its keyed hash, made with a key
        configured here; the report names the key that signed each run of blocks
        (`signers`) and how many pending entries each key signed (`pending_signers`). Each
        record's entries are folded in trail order (`RecordFolds`); with `stored_records`
        (what the record tables hold now), each stored row must equal its fold, field by
        field. Returns `{"ok": True, ...counts}` or `{"ok": False, "block_id" |
        "pending_seq" | "seq" | "record" (and "field"), "reason"}` naming the first problem.
        """
        with self.database.snapshot() as conn:
            head = self._read_head(conn)
            walked = self._walk_blocks(conn, head)
            if not walked["ok"]:
                return walked
            pending = self._check_pending(conn)
            if not pending["ok"]:
                return pending
            records = self._check_records(conn, head, stored_records)
            if not records["ok"]:
                return records
        return {
            "ok": True,
            "blocks": walked["blocks"],
            "entries": walked["entries"],
            "pending": pending["pending"],
            "records": records.get("records"),
            "head_hash": head.head_hash,
            "anchor_hash": head.anchor_hash,
            "purged_blocks": head.purged_blocks,
            "purged_entries": head.purged_entries,
            "signers": walked["signers"],
            "pending_signers": pending["signers"],
            "current_key_id": self.keys.current_id,
        }

    def _check_records(
        self, conn: Connection, head: _Head, stored_records: StoredRecords | None
    ) -> dict[str, Any]:
        folds = RecordFolds(purged=head.purged_blocks > 0)
        entries = batch_audit.expand(conn, self._all_entries(conn, head))
        try:
            for entry in entries:
                problem = folds.add(entry)
                if problem is not None:
                    return problem
        except AuditIntegrityError as exc:  # a batch's payload (see batch_audit)
            return {"ok": False, **exc.details, "reason": exc.message}
        if stored_records is None:
            return {"ok": True}
        return folds.compare(stored_records(conn))

    def _read_head(self, conn: Connection) -> _Head:
        row = conn.execute(sa.select(audit_chain).where(audit_chain.c.id == 1)).mappings().first()
        if row is None:
            return _GENESIS
        return _Head(**{key: row[key] for key in _head_values(_GENESIS)})

    def _all_entries(self, conn: Connection, head: _Head) -> Iterator[Mapping[str, Any]]:
        """Every entry after the anchor, blocks then pending ones, in trail order."""
        blocks = (
            sa.select(audit_blocks.c.id, audit_blocks.c.codec, audit_blocks.c.payload)
            .where(audit_blocks.c.id > (head.anchor_block_id or 0))
            .order_by(audit_blocks.c.id)
        )
        for row in conn.execute(blocks):
            raw = codec_for(row.codec).decompress(row.payload)
            yield from decode_lines(split_lines(raw), row.id)
        pending = sa.select(*_OUTBOX_COLUMNS).order_by(audit_outbox.c.seq)
        for entry in conn.execute(pending).mappings():
            yield dict(entry)

    def _walk_blocks(self, conn: Connection, head: _Head) -> dict[str, Any]:
        expected, last_id, blocks, entries = head.anchor_hash, head.anchor_block_id or 0, 0, 0
        signers: list[dict[str, Any]] = []
        stray = conn.execute(
            sa.select(sa.func.min(audit_blocks.c.id)).where(audit_blocks.c.id <= last_id)
        ).scalar()
        if stray is not None:
            return {
                "ok": False,
                "block_id": stray,
                "reason": f"Block {stray} lies at or before the chain's anchor (block "
                f"{last_id}), where no block can be: it was put there afterwards.",
            }
        while True:
            page = conn.execute(
                sa.select(audit_blocks).where(audit_blocks.c.id > last_id)
                .order_by(audit_blocks.c.id).limit(_PAGE)
            ).mappings().all()
            for row in page:
                reason = _block_problem(row, expected, self.keys)
                if reason is not None:
                    return {"ok": False, "block_id": row["id"], "reason": reason,
                            "key_id": key_id_of(row["hash"])}
                expected, blocks, entries = row["hash"], blocks + 1, entries + row["entry_count"]
                _count_signer(signers, row["id"], row["hash"])
            if len(page) < _PAGE:
                break
            last_id = page[-1]["id"]
        if expected != head.head_hash:
            return {
                "ok": False,
                "block_id": head.head_block_id,
                "reason": f"The chain ends at hash {expected[:16]}…, but its head names block "
                f"{head.head_block_id} with hash {head.head_hash[:16]}…: the newest blocks "
                "are missing.",
            }
        return {"ok": True, "blocks": blocks, "entries": entries, "signers": signers}

    def _check_pending(self, conn: Connection) -> dict[str, Any]:
        count = 0
        signers: dict[str, int] = {}
        query = sa.select(*_OUTBOX_TEXT_COLUMNS).order_by(audit_outbox.c.seq)
        for row in conn.execute(query):
            count += 1
            problem = self.keys.problem(_body_of(row), row.entry_hash)
            if problem is not None:
                return {
                    "ok": False,
                    "pending_seq": row.seq,
                    "key_id": key_id_of(row.entry_hash),
                    "reason": f"Pending entry {row.seq} does not verify: {problem}; it was "
                    "changed or written after the change it records.",
                }
            signer = str(key_id_of(row.entry_hash))
            signers[signer] = signers.get(signer, 0) + 1
        return {"ok": True, "pending": count, "signers": signers}

    # -- retention ----------------------------------------------------------------------

    def purge(self, older_than: datetime.timedelta) -> dict[str, Any]:
        """Drop the oldest blocks whose every entry is older than `older_than`.

        Only a prefix of the chain goes (a block is kept while an older one must stay), and
        the chain's anchor moves to the last dropped block's hash, so what remains verifies.
        The payloads of the `create_batch` entries dropped go with them, in the same
        transaction: nothing expands from a payload but its entry (`batch_audit`).
        Returns `{"blocks", "entries", "batches", "anchor_hash"}`.
        """
        cutoff = self.clock() - older_than
        with self.database.write() as conn:
            head = self._lock_chain(conn)
            young = conn.execute(
                sa.select(sa.func.min(audit_blocks.c.id)).where(audit_blocks.c.last_ts >= cutoff)
            ).scalar()
            doomed = sa.select(audit_blocks.c.id, audit_blocks.c.hash, audit_blocks.c.entry_count)
            if young is not None:
                doomed = doomed.where(audit_blocks.c.id < young)
            rows = conn.execute(doomed.order_by(audit_blocks.c.id)).all()
            if not rows:
                return {"blocks": 0, "entries": 0, "batches": 0,
                        "anchor_hash": head.anchor_hash}
            last = rows[-1]
            entries = sum(row.entry_count for row in rows)
            batches = batch_audit.drop_payloads(
                conn, list(_batches_in_blocks(conn, [row.id for row in rows]))
            )
            conn.execute(sa.delete(audit_blocks).where(audit_blocks.c.id <= last.id))
            conn.execute(
                sa.update(audit_chain).where(audit_chain.c.id == 1).values(
                    anchor_hash=last.hash,
                    anchor_block_id=last.id,
                    purged_blocks=head.purged_blocks + len(rows),
                    purged_entries=head.purged_entries + entries,
                    purged_at=self.clock(),
                )
            )
        return {"blocks": len(rows), "entries": entries, "batches": batches,
                "anchor_hash": last.hash}

    # -- statistics ---------------------------------------------------------------------

    def stats(self, model: str | None = None) -> dict[str, int]:
        """`{"entries", "blocks", "pending", "raw_bytes", "stored_bytes"}`.

        `raw_bytes` and `stored_bytes` describe blocks: their entries as JSON lines, and their
        payloads as stored. For one model, a block's stored bytes are shared out by the raw
        bytes each model has in it.
        """
        with self.database.snapshot() as conn:
            pending_query = sa.select(sa.func.count()).select_from(audit_outbox)
            if model is not None:
                pending_query = pending_query.where(audit_outbox.c.model == model)
            pending = int(conn.execute(pending_query).scalar_one())
            blocks = self._block_totals(conn, model)
        return {
            "entries": blocks["entries"] + pending,
            "blocks": blocks["blocks"],
            "pending": pending,
            "raw_bytes": blocks["raw_bytes"],
            "stored_bytes": blocks["stored_bytes"],
        }

    def _block_totals(self, conn: Connection, model: str | None) -> dict[str, int]:
        stored = sa.func.length(audit_blocks.c.payload)
        if model is None:
            row = conn.execute(sa.select(
                sa.func.count(), sa.func.coalesce(sa.func.sum(audit_blocks.c.entry_count), 0),
                sa.func.coalesce(sa.func.sum(audit_blocks.c.raw_bytes), 0),
                sa.func.coalesce(sa.func.sum(stored), 0),
            )).one()
            return dict(zip(("blocks", "entries", "raw_bytes", "stored_bytes"),
                            map(int, row), strict=True))
        totals = {"blocks": 0, "entries": 0, "raw_bytes": 0, "stored_bytes": 0}
        query = sa.select(audit_blocks.c.model_counts, audit_blocks.c.raw_bytes, stored).where(
            _holds_model(model)
        )
        for counts, raw, stored_bytes in conn.execute(query):
            entries, model_raw = counts[model]
            totals["blocks"] += 1
            totals["entries"] += entries
            totals["raw_bytes"] += model_raw
            totals["stored_bytes"] += round(stored_bytes * model_raw / raw)
        return totals


# -- helpers ------------------------------------------------------------------------------


def _seconds(value: float) -> datetime.timedelta:
    return datetime.timedelta(seconds=value)


def _head_values(head: _Head) -> dict[str, Any]:
    return {
        "head_hash": head.head_hash,
        "head_block_id": head.head_block_id,
        "anchor_hash": head.anchor_hash,
        "anchor_block_id": head.anchor_block_id,
        "purged_blocks": head.purged_blocks,
        "purged_entries": head.purged_entries,
    }


def _advance_head(conn: Connection, block_hash_: str, block_id: int) -> None:
    conn.execute(
        sa.update(audit_chain).where(audit_chain.c.id == 1)
        .values(head_hash=block_hash_, head_block_id=block_id)
    )


def _body_of(row: Any) -> bytes:
    """The body of a pending entry read with `_OUTBOX_TEXT_COLUMNS`.

    Unpacked by position: this runs for every entry compacted, and a Row's attribute
    lookups cost more than the rest of the work.
    """
    _seq, model, record_id, operation, user_id, ts, changes, metadata, ns, _hash = row
    return entry_body(
        model=model, record_id=record_id, operation=operation, user_id=user_id, ts=ts,
        changes_json=changes, metadata_json=metadata, ns=ns,
    )


def _checked_line(row: Any, keys: AuditKeys) -> PendingLine:
    body = _body_of(row)
    seq, model, record_id, _operation, user_id, ts, *_, stored_hash = row
    if not keys.matches(body, stored_hash):
        raise AuditIntegrityError(
            f"Pending audit entry {seq} does not verify: {keys.problem(body, stored_hash)}; "
            "it was changed after it was written, so it is not sealed into a block.",
            seq=seq,
            key_id=key_id_of(stored_hash),
        )
    return PendingLine.of(seq, model, record_id, user_id, ts, body)


def _count_signer(signers: list[dict[str, Any]], block_id: int, stored_hash: str) -> None:
    """Extend the last run of blocks signed with the same key, or start a new run."""
    key_id = key_id_of(stored_hash)
    if signers and signers[-1]["key_id"] == key_id:
        signers[-1]["last_block"] = block_id
        signers[-1]["blocks"] += 1
    else:
        signers.append({"key_id": key_id, "first_block": block_id, "last_block": block_id,
                        "blocks": 1})


def _holds_model(model: str) -> sa.ColumnElement[bool]:
    return audit_blocks.c.model_names.contains(f",{model},", autoescape=True)


def _candidate_blocks(query: TrailQuery, anchor: int) -> sa.Select[Any]:
    # Blocks at or before the anchor were purged; one found there was not written by us.
    statement = sa.select(*_INDEX_COLUMNS).where(
        _holds_model(query.model), audit_blocks.c.id > anchor
    )
    if query.since is not None:
        statement = statement.where(audit_blocks.c.last_ts >= query.since)
    if query.until is not None:
        statement = statement.where(audit_blocks.c.first_ts < query.until)
    return statement.order_by(audit_blocks.c.id)


def _pending_query(query: TrailQuery) -> sa.Select[Any]:
    outbox = audit_outbox.c
    statement = sa.select(*_OUTBOX_COLUMNS).where(outbox.model == query.model)
    if query.record_id is not None:
        statement = statement.where(outbox.record_id == query.record_id)
    if query.actor is not None:
        statement = statement.where(outbox.user_id == query.actor)
    if query.since is not None:
        statement = statement.where(outbox.ts >= query.since)
    if query.until is not None:
        statement = statement.where(outbox.ts < query.until)
    return statement.order_by(outbox.seq)


def _entry_from_row(row: Any) -> dict[str, Any]:
    return dict(row._mapping)


def _batches_in_blocks(conn: Connection, block_ids: list[int]) -> Iterator[str]:
    """The batch keys of the `create_batch` entries the blocks hold. A byte search finds
    their lines; only those are parsed."""
    payloads = sa.select(audit_blocks.c.id, audit_blocks.c.codec, audit_blocks.c.payload)
    for start in range(0, len(block_ids), _PAGE):
        chosen = audit_blocks.c.id.in_(block_ids[start : start + _PAGE])
        for row in conn.execute(payloads.where(chosen)):
            raw = codec_for(row.codec).decompress(row.payload)
            if _BATCH_NEEDLE not in raw:  # most blocks: one search, no split
                continue
            found = [line for line in split_lines(raw) if _BATCH_NEEDLE in line]
            for entry in decode_lines(found, row.id):
                if entry["operation"] == batch_audit.BATCH_OPERATION:
                    yield entry["changes"]["batch"]


def _record_needle(record_id: str | None) -> bytes | None:
    if record_id is None:
        return None
    return b'"record_id":' + json.dumps(record_id, ensure_ascii=False).encode()


def _block_problem(row: Mapping[Any, Any], expected_prev: str, keys: AuditKeys) -> str | None:
    """Why a stored block does not verify, or None."""
    if row["prev_hash"] != expected_prev:
        return (
            f"Block {row['id']} does not follow the block before it (its prev_hash is "
            f"{row['prev_hash'][:16]}…, expected {expected_prev[:16]}…): a block before it "
            "is missing or was changed."
        )
    index = index_from_row(row)
    header = block_header(row["prev_hash"], row["codec"], bytes(row["payload"]), index)
    problem = keys.problem(header, row["hash"])
    if problem is not None:
        return f"Block {row['id']} does not verify: {problem}; its payload or index was changed."
    if row["model_names"] != index.model_names:  # derived from the hashed model_counts
        return f"Block {row['id']} lists other models than it holds: its index was changed."
    return _payload_problem(row)


def _payload_problem(row: Mapping[Any, Any]) -> str | None:
    try:
        raw = codec_for(row["codec"]).decompress(bytes(row["payload"]))
        seqs = [entry["seq"] for entry in decode_lines(split_lines(raw), row["id"])]
    except AuditIntegrityError as exc:
        return exc.message
    if (len(seqs), min(seqs, default=None), max(seqs, default=None), len(raw)) != (
        row["entry_count"], row["first_seq"], row["last_seq"], row["raw_bytes"]
    ):
        return f"Block {row['id']} holds other entries than its index says."
    return None
