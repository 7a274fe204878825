"""Imports and `create_many`, one contract run on SQLite (unit) and PostgreSQL (postgres marker).

A subclass provides `database_url`. Every import test writes its own small source file.
"""

from __future__ import annotations

import csv
import datetime
import decimal
import enum
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel, EmailStr, Field

from registry import DynamicModelRegistry, PermissionDenied, UnknownField, ValidationFailed
from registry.errors import IdempotencyConflict, ImportNotFound, SourceUnreadable
from registry.imports import import_chunks, import_jobs, import_rejects
from registry.tables import audit_blocks

HEADER = ["Name", "age", "balance", "born", "email", "colour", "active", "note"]
FIELD_MAP = {"Name": "name", "age": "age", "balance": "balance", "born": "born",
             "email": "email", "colour": "colour", "active": "active", "note": "note"}
PERMISSIONS = {
    "roles": {"admin": ["create", "read", "update", "delete", "list"],
              "clerk": ["create", "read", "list"], "viewer": ["read", "list"],
              "loader": ["create", "read"]},
    "fields": {"email": {"read_roles": ["admin"], "write_roles": ["admin", "clerk"],
                         "mask": "redact"},
               "balance": {"read_roles": ["admin", "clerk", "loader"],
                           "write_roles": ["admin", "clerk"]}},
}


class Colour(enum.StrEnum):
    RED = "red"
    BLUE = "blue"


class Person(BaseModel):
    name: str = Field(min_length=1)
    age: int = Field(ge=0)
    balance: decimal.Decimal
    born: datetime.date
    email: EmailStr
    colour: Colour
    active: bool
    note: str | None = None


SYSTEM = ("id", "version", "created_at", "updated_at", "created_by", "updated_by")


def good_row(i: int) -> list[str]:
    return [f"P{i}", str(i % 90), f"{i}.25", "2001-02-03", f"p{i}@example.com",
            "red" if i % 2 else "blue", "true" if i % 3 else "false", "" if i % 4 else "hi"]


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def compact_all(registry: DynamicModelRegistry) -> None:
    """Compact until no entry is pending. PostgreSQL takes entries only once every older
    transaction has ended, and the server is shared, so that can take a moment."""
    deadline = time.monotonic() + 30
    while count(registry, "dmr_audit_outbox"):
        assert time.monotonic() < deadline, "compaction took no pending entry for 30 s"
        registry.audit_logger.compact(force=True)
        time.sleep(0.05)


def count(registry: DynamicModelRegistry, table: sa.Table | str) -> int:
    target = table if isinstance(table, sa.Table) else sa.table(table)
    with registry.database.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(target)).scalar_one())


class ImportContract:
    @pytest.fixture
    def database_url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def registry(self, database_url: str) -> Iterator[DynamicModelRegistry]:
        registry = DynamicModelRegistry(database_url)
        registry.register_model("Person", Person, permissions=PERMISSIONS)
        yield registry
        registry.close()

    @pytest.fixture
    def mixed(self, tmp_path: Path) -> Path:
        """25 rows: 21 good, a bad integer, a bad email, an unknown choice, a ragged row."""
        rows = [good_row(i) for i in range(1, 26)]
        rows[4][1] = "five"  # row 5
        rows[9][4] = "not-an-email"  # row 10
        rows[16][5] = "green"  # row 17
        rows[22] = ["P23", "1"]  # row 23, ragged
        return write_csv(tmp_path / "people.csv", rows)

    def run(self, registry: DynamicModelRegistry, source: Any, **options: Any) -> dict[str, Any]:
        return registry.import_records(
            "Person", source, user_id="u1", user_role=options.pop("role", "admin"),
            field_map=options.pop("field_map", FIELD_MAP), options={"chunk_size": 7, **options},
        )

    # -- accounting ---------------------------------------------------------------------

    def test_bad_rows_are_rejected_and_every_row_is_accounted_for(
        self, registry: DynamicModelRegistry, mixed: Path
    ) -> None:
        status = self.run(registry, mixed)
        assert status["state"] == "finished"
        assert (status["total"], status["done"], status["rejected"]) == (25, 21, 4)
        assert status["done"] + status["rejected"] == status["total"]
        assert status["finished_at"] is not None and status["rows_per_s"] > 0
        assert registry.list("Person", "u1", "admin")["total"] == 21
        rejects = registry.imports.rejects(status["job_id"], "admin")
        assert [item["row"] for item in rejects["items"]] == [5, 10, 17, 23]
        first = rejects["items"][0]
        assert first["values"]["age"] == "five" and first["values"]["name"] == "P5"
        assert [e["loc"] for e in first["errors"]] == [["age"]]
        assert rejects["items"][1]["errors"][0]["loc"] == ["email"]
        ragged = rejects["items"][3]
        assert ragged["errors"][0]["type"] == "unreadable_row"
        assert "has 2 fields; the header has 8" in ragged["errors"][0]["msg"]
        assert (ragged["values"]["name"], ragged["values"]["age"]) == ("P23", "1")

    def test_rejected_values_are_masked_for_the_role(
        self, registry: DynamicModelRegistry, mixed: Path
    ) -> None:
        status = self.run(registry, mixed)
        shown = registry.imports.rejects(status["job_id"], "clerk", page=2, page_size=1)
        assert shown["total"] == 4 and [i["row"] for i in shown["items"]] == [10]
        assert shown["items"][0]["values"]["email"] != "not-an-email"
        assert registry.imports.rejects(status["job_id"], "admin", 2, 1)["items"][0][
            "values"]["email"] == "not-an-email"

    def test_imported_records_read_back_typed(
        self, registry: DynamicModelRegistry, tmp_path: Path
    ) -> None:
        self.run(registry, write_csv(tmp_path / "one.csv", [good_row(4)]))
        (record,) = registry.list("Person", "u1", "admin")["items"]
        assert record["name"] == "P4" and record["age"] == 4 and record["balance"] == "4.25"
        assert record["born"] == "2001-02-03" and record["active"] is True
        assert record["note"] == "hi" and record["colour"] == "blue"
        assert registry.read("Person", record["id"], "u1", "admin") == record

    def test_tricky_values_import_as_single_creates_store_them(
        self, registry: DynamicModelRegistry
    ) -> None:
        """The bulk write path (column conversions, COPY text) stores what `create` stores,
        and a value no column can hold rejects its row instead of failing the chunk."""
        names = ["tab\there", "new\nline", "back\\slash \\N", "cr\rlf\r\n", "quote \" ' ,",
                 "\\", "é ü 中文 🙂", " padded ", "x" * 5000]
        balances = ["1e5", "1.500", "-0.00", "12345678901234567890.125", "0.0000001", "7"]
        rows = [[name, str(i), balances[i % len(balances)], "2001-02-03",
                 f"Q{i}@Example.COM", "red", "yes" if i % 2 else "0", "" if i % 3 else "n\tb"]
                for i, name in enumerate(names)]
        rows.append(["huge age", str(2**70), "1", "2001-02-03", "a@b.co", "red", "true", ""])
        rows.append(["nul\x00name", "1", "1", "2001-02-03", "a@b.co", "red", "true", ""])
        job = registry.imports.start("Person", {"kind": "csv", "columns": HEADER}, FIELD_MAP,
                                     {"chunk_size": 50}, "u1", "admin")
        outcome = registry.imports.run_chunk(job, 0, 1, rows)
        assert (outcome["done"], outcome["rejected"]) == (len(names), 2)
        rejects = registry.imports.rejects(job, "admin")["items"]
        assert [(r["row"], r["errors"][0]["loc"]) for r in rejects] == [
            (len(names) + 1, ["age"]), (len(names) + 2, ["name"])]
        imported = {r["name"]: r for r in registry.list("Person", "u1", "admin",
                                                        page_size=100)["items"]}
        assert sorted(imported) == sorted(names)
        for row in rows[:len(names)]:
            item = {field: value for field, value in zip(HEADER, row, strict=True) if value}
            created = registry.create("Person", {FIELD_MAP[k]: v for k, v in item.items()},
                                      "u1", "admin")
            single = registry.read("Person", created["id"], "u1", "admin")
            got = imported[row[0]]
            assert {k: v for k, v in got.items() if k not in SYSTEM} == {
                k: v for k, v in single.items() if k not in SYSTEM}
            assert registry.history("Person", got["id"], "admin")[0].changes == registry.history(
                "Person", created["id"], "admin")[0].changes

    def test_history_as_of_and_verification_cover_imported_records(
        self, registry: DynamicModelRegistry, mixed: Path
    ) -> None:
        self.run(registry, mixed)
        record = registry.list("Person", "u1", "admin", page_size=1)["items"][0]
        (created,) = registry.history("Person", record["id"], "admin")
        assert created.operation == "create" and created.record_id == record["id"]
        assert created.changes["name"] == {"old": None, "new": record["name"]}
        now = datetime.datetime.now(datetime.UTC)
        assert registry.as_of("Person", record["id"], now, "admin") == record
        registry.update("Person", record["id"], {"age": 77}, "u1", "admin")
        assert [e.operation for e in registry.history("Person", record["id"], "admin")] == [
            "create", "update"]
        assert registry.as_of("Person", record["id"], now, "admin")["age"] == record["age"]
        masked = registry.history("Person", record["id"], "clerk")[0]
        assert masked.changes["email"]["new"] != record["email"]
        model_wide = registry.history("Person", None, "admin")
        assert sum(e.operation == "create" for e in model_wide) == 21
        assert registry.verify_audit()["ok"]
        registry.audit_logger.compact(force=True)
        assert registry.verify_audit()["ok"]
        assert len(registry.history("Person", record["id"], "admin")) == 2

    def test_audit_is_one_entry_per_chunk(
        self, registry: DynamicModelRegistry, mixed: Path
    ) -> None:
        status = self.run(registry, mixed)
        assert count(registry, "dmr_audit_outbox") == status["chunks"]

    def test_a_changed_batch_payload_fails_verification(
        self, registry: DynamicModelRegistry, mixed: Path
    ) -> None:
        self.run(registry, mixed)
        with registry.database.write() as conn:
            conn.execute(sa.text("UPDATE dmr_audit_batches SET payload = :p"), {"p": b"x"})
        report = registry.verify_audit()
        assert not report["ok"] and "payload" in report["reason"]

    def test_batch_payloads_go_only_with_their_entries_purged_by_retention(
        self, registry: DynamicModelRegistry, mixed: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        first = self.run(registry, mixed)
        logger = registry.audit_logger
        assert logger.purge(retention_days=0)["batches"] == 0  # entries still pending
        assert count(registry, "dmr_audit_batches") == first["chunks"]
        compact_all(registry)
        first_blocks = count(registry, audit_blocks)
        later = write_csv(tmp_path / "later.csv", [good_row(i) for i in range(30, 40)])
        second = self.run(registry, later)
        kept = registry.list("Person", "u1", "admin", filters={"name": "P31"})["items"][0]
        compact_all(registry)
        with registry.database.read() as conn:
            blocks = conn.execute(sa.select(audit_blocks.c.first_ts)
                                  .order_by(audit_blocks.c.id)).scalars().all()
        # Retention's cut falls between the two imports' blocks: only the first one's go.
        monkeypatch.setattr(logger.trail, "clock", lambda: blocks[first_blocks])
        purged = logger.purge(retention_days=0)
        assert (purged["blocks"], purged["batches"]) == (first_blocks, first["chunks"])
        assert count(registry, "dmr_audit_batches") == second["chunks"]
        assert [e.operation for e in registry.history("Person", kept["id"], "admin")] == [
            "create"]
        assert registry.verify_audit()["ok"]

    # -- once and only once -------------------------------------------------------------

    def test_the_same_import_run_again_writes_nothing_twice(
        self, registry: DynamicModelRegistry, mixed: Path
    ) -> None:
        first = self.run(registry, mixed)
        again = self.run(registry, mixed)
        assert again["job_id"] == first["job_id"]
        assert (again["done"], again["rejected"]) == (21, 4)
        assert registry.list("Person", "u1", "admin")["total"] == 21
        assert count(registry, import_rejects) == 4

    def test_a_chunk_delivered_twice_is_written_once(
        self, registry: DynamicModelRegistry
    ) -> None:
        job = registry.imports.start("Person", {"kind": "csv", "columns": HEADER}, FIELD_MAP,
                                     {"chunk_size": 3}, "u1", "admin")
        rows = [good_row(1), good_row(2), good_row(3)]
        first = registry.imports.run_chunk(job, 0, 1, rows)
        second = registry.imports.run_chunk(job, 0, 1, rows)
        assert first == second == {"chunk": 0, "outcome": "written", "done": 3, "rejected": 0}
        assert registry.list("Person", "u1", "admin")["total"] == 3
        registry.imports.seal(job, 3, 1)
        assert registry.imports.status(job)["state"] == "finished"

    def test_a_producer_stopped_mid_send_finishes_when_run_again(
        self, registry: DynamicModelRegistry, mixed: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        service = registry.imports
        real = service.run_chunk
        sent: list[int] = []

        def dies_after_two(job_id: str, chunk_no: int, *args: Any) -> dict[str, Any]:
            if len(sent) == 2:
                raise KeyboardInterrupt  # the producer is killed
            sent.append(chunk_no)
            return real(job_id, chunk_no, *args)

        monkeypatch.setattr(service, "run_chunk", dies_after_two)
        with pytest.raises(KeyboardInterrupt):
            self.run(registry, mixed)
        monkeypatch.setattr(service, "run_chunk", real)
        assert registry.list("Person", "u1", "admin")["total"] == 12  # rows 1-14, two bad
        status = self.run(registry, mixed)
        assert (status["state"], status["done"], status["rejected"]) == ("finished", 21, 4)
        assert registry.list("Person", "u1", "admin")["total"] == 21

    # -- options ------------------------------------------------------------------------

    def test_abort_stops_at_the_first_chunk_with_a_bad_row(
        self, registry: DynamicModelRegistry, mixed: Path
    ) -> None:
        status = self.run(registry, mixed, on_error="abort", chunk_size=3)
        assert status["state"] == "aborted" and "Row 5" in status["reason"]
        # chunk 0 (rows 1-3) written; chunk 1 (rows 4-6) holds row 5 and writes nothing
        assert status["done"] == 3 and status["rejected"] == 1
        assert status["done"] + status["rejected"] + status["skipped"] == status["total"]
        assert registry.list("Person", "u1", "admin")["total"] == 3

    def test_cancel_stops_between_chunks(self, registry: DynamicModelRegistry) -> None:
        job = registry.imports.start("Person", {"kind": "csv", "columns": HEADER}, FIELD_MAP,
                                     {"chunk_size": 2}, "u1", "admin")
        registry.imports.run_chunk(job, 0, 1, [good_row(1), good_row(2)])
        assert registry.imports.cancel(job)["state"] == "cancelled"
        later = registry.imports.run_chunk(job, 1, 3, [good_row(3), good_row(4)])
        assert later["outcome"] == "skipped"
        status = registry.imports.seal(job, 4, 2)
        assert (status["state"], status["done"], status["skipped"]) == ("cancelled", 2, 2)
        assert registry.list("Person", "u1", "admin")["total"] == 2

    def test_dates_in_the_recorded_format(
        self, registry: DynamicModelRegistry, tmp_path: Path
    ) -> None:
        row = good_row(1)
        row[3] = "02/03/2001"
        path = write_csv(tmp_path / "us.csv", [row])
        source = {"kind": "csv", "location": str(path), "formats": {"born": "%m/%d/%Y"}}
        assert self.run(registry, source)["done"] == 1
        assert registry.list("Person", "u1", "admin")["items"][0]["born"] == "2001-02-03"

    def test_without_a_field_map_the_models_stored_map_is_used(
        self, database_url: str, tmp_path: Path
    ) -> None:
        registry = DynamicModelRegistry(database_url)
        try:
            registry.register_model("Person", Person, provenance={"field_map": FIELD_MAP})
            status = registry.import_records(
                "Person", write_csv(tmp_path / "p.csv", [good_row(1)]), user_id="u",
                user_role="admin",
            )
            assert status["done"] == 1
        finally:
            registry.close()

    def test_an_inspected_model_imports_its_source_with_nothing_more(
        self, database_url: str, tmp_path: Path
    ) -> None:
        import inspector

        source = tmp_path / "cars.csv"
        lines = [f"{20 + i % 9}.5,{1990 + i % 20},0{i % 7}M,01/{1 + i % 28:02d}/2012\n"
                 for i in range(60)]
        source.write_text("Miles per Gallon,Model Year,Code,Sold On\n" + "".join(lines))
        registry = DynamicModelRegistry(database_url)
        try:
            name = registry.register_inspection(inspector.inspect(str(source), name="Car"))
            status = registry.import_records(name, source, user_id="u", user_role="admin")
            assert (status["done"], status["rejected"]) == (60, 0), status
            first = registry.list(name, "u", "admin", page_size=1, order_by="created_at")
            values = set(first["items"][0].values())
            assert "00M" in values and "2012-01-01" in values
        finally:
            registry.close()

    # -- refusals -----------------------------------------------------------------------

    def test_a_role_without_create_is_refused_before_anything_is_written(
        self, registry: DynamicModelRegistry, mixed: Path
    ) -> None:
        with pytest.raises(PermissionDenied, match="cannot create"):
            self.run(registry, mixed, role="viewer")
        assert count(registry, import_jobs) == 0 and count(registry, import_chunks) == 0

    def test_a_field_the_role_may_not_write_refuses_the_job(
        self, registry: DynamicModelRegistry, mixed: Path
    ) -> None:
        with pytest.raises(PermissionDenied, match="balance"):
            self.run(registry, mixed, role="loader")
        assert count(registry, import_jobs) == 0
        assert registry.list("Person", "u1", "admin")["total"] == 0

    def test_a_field_map_naming_unknown_fields(
        self, registry: DynamicModelRegistry, mixed: Path
    ) -> None:
        with pytest.raises(UnknownField, match="'nickname'"):
            self.run(registry, mixed, field_map={**FIELD_MAP, "note": "nickname"})
        with pytest.raises(ValidationFailed, match="'Surname'"):
            self.run(registry, mixed, field_map={**FIELD_MAP, "Surname": "name"})
        with pytest.raises(ValidationFailed, match="required field 'email'"):
            self.run(registry, mixed, field_map={k: v for k, v in FIELD_MAP.items()
                                                 if v != "email"})
        assert count(registry, import_jobs) == 0

    def test_bad_sources(self, registry: DynamicModelRegistry, tmp_path: Path) -> None:
        with pytest.raises(SourceUnreadable, match="No file at"):
            self.run(registry, tmp_path / "missing.csv")
        latin = tmp_path / "latin.csv"
        latin.write_bytes(",".join(HEADER).encode() + b"\nP\xe9,1,1,2001-01-01,a@b.co,red,true,\n")
        given = {"kind": "csv", "location": str(latin), "options": {"encoding": "utf-8"}}
        with pytest.raises(SourceUnreadable, match="does not decode as utf-8"):
            self.run(registry, given)
        huge = write_csv(tmp_path / "huge.csv", [good_row(1), [*good_row(2)[:7], "x" * 2_000_000]])
        with pytest.raises(SourceUnreadable, match="line 3 .* is larger than"):
            self.run(registry, huge)
        assert registry.list("Person", "u1", "admin")["total"] == 0
        # Without an encoding given, the reader sniffs it as the inspection does (cp1252).
        assert self.run(registry, latin)["done"] == 1
        assert registry.list("Person", "u1", "admin")["items"][0]["name"] == "P\u00e9"
        with pytest.raises(ValidationFailed, match="chunk_size"):
            self.run(registry, latin, chunk_size=0)
        with pytest.raises(ImportNotFound):
            registry.imports.status("imp_nope")

    # -- cleanup --------------------------------------------------------------------------

    def ended_and_live_jobs(self, registry: DynamicModelRegistry, mixed: Path) -> dict[str, str]:
        """A finished import (4 rejected rows), a cancelled job, and a job still running."""
        finished = self.run(registry, mixed)["job_id"]
        service = registry.imports
        cancelled = service.start("Person", {"kind": "csv", "columns": HEADER}, FIELD_MAP,
                                  {"chunk_size": 2}, "u1", "clerk")
        service.run_chunk(cancelled, 0, 1, [good_row(100), ["P", "x"]])
        service.cancel(cancelled)
        running = service.start("Person", {"kind": "csv", "columns": HEADER}, FIELD_MAP,
                                {"chunk_size": 2}, "u2", "admin")
        service.run_chunk(running, 0, 1, [good_row(200), ["P", "x"]])
        return {"finished": finished, "cancelled": cancelled, "running": running}

    def test_cleanup_deletes_ended_jobs_and_keeps_records_and_their_history(
        self, registry: DynamicModelRegistry, mixed: Path
    ) -> None:
        jobs = self.ended_and_live_jobs(registry, mixed)
        record = registry.list("Person", "u1", "admin", filters={"name": "P7"})["items"][0]
        payloads = count(registry, "dmr_audit_batches")
        tables = (import_jobs, import_chunks, import_rejects)
        before = [count(registry, table) for table in tables]

        planned = registry.cleanup_imports(0, dry_run=True)
        assert [count(registry, table) for table in tables] == before  # a dry run writes none
        assert (planned["jobs"], planned["chunks"], planned["rejects"]) == (2, 4 + 1, 4 + 1)
        done = registry.cleanup_imports(0)
        assert {key: done[key] for key in ("jobs", "chunks", "rejects", "more")} == {
            key: planned[key] for key in ("jobs", "chunks", "rejects", "more")}
        assert not done["dry_run"] and planned["dry_run"]

        for ended in (jobs["finished"], jobs["cancelled"]):
            with pytest.raises(ImportNotFound):
                registry.imports.status(ended)
        assert [count(registry, table) for table in tables] == [1, 1, 1]  # the running job's
        assert registry.imports.status(jobs["running"])["done"] == 1
        assert count(registry, "dmr_audit_batches") == payloads
        (created,) = registry.history("Person", record["id"], "admin")
        assert created.operation == "create" and created.changes["age"]["new"] == 7
        now = datetime.datetime.now(datetime.UTC)
        assert registry.as_of("Person", record["id"], now, "admin") == record
        assert registry.verify_audit()["ok"]
        compact_all(registry)
        assert registry.verify_audit()["ok"]
        assert registry.history("Person", record["id"], "admin")[0].changes == created.changes
        assert registry.cleanup_imports(0)["jobs"] == 0

    def test_an_import_run_again_after_its_job_was_cleaned_up_is_a_new_job(
        self, registry: DynamicModelRegistry, mixed: Path
    ) -> None:
        first = self.run(registry, mixed)
        ids = {r["id"] for r in registry.list("Person", "u1", "admin", page_size=50)["items"]}
        registry.cleanup_imports(0)
        again = self.run(registry, mixed)
        assert again["job_id"] == first["job_id"]  # the same id, named by the same arguments
        assert (again["state"], again["done"], again["rejected"]) == ("finished", 21, 4)
        stored = registry.list("Person", "u1", "admin", page_size=50)["items"]
        assert len(stored) == 42 and len({r["id"] for r in stored} - ids) == 21
        assert registry.verify_audit()["ok"]

    def test_cleanup_takes_only_jobs_that_ended_before_the_cutoff(
        self, registry: DynamicModelRegistry, mixed: Path
    ) -> None:
        jobs = self.ended_and_live_jobs(registry, mixed)
        assert registry.cleanup_imports()["jobs"] == 0  # 30 days by default
        assert registry.cleanup_imports(1, dry_run=True)["jobs"] == 0
        long_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=40)
        with registry.database.write() as conn:  # the running job started long ago, too
            conn.execute(sa.update(import_chunks).where(
                import_chunks.c.job_id.in_([jobs["finished"], jobs["running"]])
            ).values(finished_at=long_ago))
            conn.execute(sa.update(import_jobs).values(started_at=long_ago))
        assert registry.imports.status(jobs["running"])["state"] == "stalled"
        assert registry.cleanup_imports()["jobs"] == 1  # finished long ago
        with pytest.raises(ImportNotFound):
            registry.imports.status(jobs["finished"])
        assert registry.imports.status(jobs["cancelled"])["state"] == "cancelled"
        assert registry.imports.status(jobs["running"])["state"] == "stalled"
        assert registry.cleanup_imports(0)["jobs"] == 1  # the cancelled one; never a live job
        assert count(registry, import_jobs) == 1

    # -- create_many ----------------------------------------------------------------------

    def items(self, n: int) -> list[dict[str, Any]]:
        return [dict(zip(FIELD_MAP.values(), good_row(i), strict=True)) for i in range(n)]

    def test_create_many_writes_all_with_history(self, registry: DynamicModelRegistry) -> None:
        items = self.items(5)
        for item in items:
            if item["note"] == "":
                item["note"] = None
        made = registry.create_many("Person", items, "u1", "admin")
        assert [r["name"] for r in made] == [f"P{i}" for i in range(5)]
        for record in made:
            assert registry.read("Person", record["id"], "u1", "admin") == record
            (created,) = registry.history("Person", record["id"], "admin")
            assert created.changes["age"]["new"] == record["age"]
        assert registry.verify_audit()["ok"]

    def test_create_many_is_all_or_nothing(self, registry: DynamicModelRegistry) -> None:
        items = self.items(6)
        items[2]["age"] = -1
        items[4]["email"] = "nope"
        with pytest.raises(ValidationFailed) as caught:
            registry.create_many("Person", items, "u1", "admin")
        assert {e["index"] for e in caught.value.errors} == {2, 4}
        assert {tuple(e["loc"]) for e in caught.value.errors} == {(2, "age"), (4, "email")}
        assert registry.list("Person", "u1", "admin")["total"] == 0
        with pytest.raises(UnknownField):
            registry.create_many("Person", [{**self.items(1)[0], "x": 1}], "u1", "admin")
        with pytest.raises(PermissionDenied):
            registry.create_many("Person", self.items(1), "u1", "loader")
        with pytest.raises(ValidationFailed):
            registry.create_many("Person", [], "u1", "admin")
        assert count(registry, "dmr_audit_outbox") == 0

    def test_create_many_with_a_key_writes_once(self, registry: DynamicModelRegistry) -> None:
        first = registry.create_many("Person", self.items(3), "u1", "admin", "key-1")
        again = registry.create_many("Person", self.items(3), "u1", "admin", "key-1")
        assert first == again and registry.list("Person", "u1", "admin")["total"] == 3
        with pytest.raises(IdempotencyConflict):
            registry.create("Person", self.items(1)[0], "u1", "admin", idempotency_key="key-1")

    # -- an SQL table source ------------------------------------------------------------

    def test_a_sql_table_streams_in(
        self, registry: DynamicModelRegistry, sql_source: Callable[[int], dict[str, Any]]
    ) -> None:
        source = sql_source(1234)
        status = self.run(registry, source, field_map=None, chunk_size=500)
        assert (status["done"], status["rejected"], status["chunks"]) == (1234, 0, 3)


def sqlite_table_source(path: Path, rows: int) -> dict[str, Any]:
    """A SQLite file with a `people` table shaped like the model."""
    url = f"sqlite:///{path}"
    engine = sa.create_engine(url)
    table = sa.Table(
        "people", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text), sa.Column("age", sa.Integer), sa.Column("balance", sa.Text),
        sa.Column("born", sa.Date), sa.Column("email", sa.Text), sa.Column("colour", sa.Text),
        sa.Column("active", sa.Boolean), sa.Column("note", sa.Text),
    )
    table.create(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [
            {"id": i, "name": f"P{i}", "age": i % 90, "balance": f"{i}.5",
             "born": datetime.date(2000, 1, 1), "email": f"p{i}@example.com",
             "colour": "red", "active": bool(i % 2), "note": None}
            for i in range(1, rows + 1)
        ])
    engine.dispose()
    return {"kind": "sql", "location": url, "table": "people"}

