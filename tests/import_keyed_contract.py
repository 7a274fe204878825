"""Imports that meet stored records: unique values as rejected rows, and upsert on a key.

One contract run on SQLite (unit) and PostgreSQL (integration); a subclass provides
`database_url`. Every test writes its own small CSV file.
"""

from __future__ import annotations

import csv
import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from registry import (
    DuplicateValue,
    DynamicModelRegistry,
    PermissionDenied,
    UnknownField,
    ValidationFailed,
)
from registry.imports import import_jobs
from tests.import_contract import count

HEADER = ["code", "email", "name", "age"]
PERMISSIONS = {
    "roles": {"admin": ["create", "read", "update", "delete", "list"],
              "clerk": ["create", "read", "list"]},
}


class Member(BaseModel):
    code: str = Field(json_schema_extra={"x-unique": True})
    email: str = Field(json_schema_extra={"x-unique": True})
    name: str
    age: int = Field(ge=0)


class Plain(BaseModel):
    code: str
    name: str
    age: int


def write_csv(path: Path, rows: list[list[Any]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def member(i: int, *, age: int | None = None, email: str | None = None) -> list[Any]:
    return [f"C{i}", email or f"m{i}@example.com", f"M{i}", i if age is None else age]


def by_code(registry: DynamicModelRegistry, model: str = "Member") -> dict[str, dict[str, Any]]:
    items = registry.list(model, "u", "admin", page_size=1000)["items"]
    return {item["code"]: item for item in items}


class KeyedImportContract:
    @pytest.fixture
    def database_url(self) -> str:
        raise NotImplementedError

    @pytest.fixture
    def registry(self, database_url: str) -> Iterator[DynamicModelRegistry]:
        registry = DynamicModelRegistry(database_url)
        registry.register_model("Member", Member, permissions=PERMISSIONS)
        registry.register_model("Plain", Plain, permissions=PERMISSIONS)
        yield registry
        registry.close()

    def run(
        self, registry: DynamicModelRegistry, source: Path, model: str = "Member", **options: Any
    ) -> dict[str, Any]:
        return registry.import_records(
            model, source, user_id="u", user_role=options.pop("role", "admin"),
            options={"chunk_size": 4, **options},
        )

    # -- duplicates in insert mode ------------------------------------------------------

    def test_rows_repeating_a_unique_value_are_rejected_and_the_rest_written(
        self, registry: DynamicModelRegistry, tmp_path: Path
    ) -> None:
        registry.create("Member", dict(zip(HEADER, member(100), strict=True)), "u", "admin")
        rows = [member(i) for i in range(1, 11)]
        rows[2] = member(3, email="m100@example.com")  # row 3: a stored record's email
        rows[5] = member(5)  # row 6: repeats row 5 (code and email), same chunk (rows 5-8)
        rows[8] = member(2, email="m9@example.com")  # row 9: repeats row 2's code, earlier chunk
        status = self.run(registry, write_csv(tmp_path / "m.csv", rows))
        assert (status["state"], status["done"], status["rejected"]) == ("finished", 7, 3)
        rejects = {item["row"]: item for item in registry.imports.rejects(
            status["job_id"], "admin")["items"]}
        assert sorted(rejects) == [3, 6, 9]
        assert rejects[3]["errors"] == [{
            "loc": ["email"], "type": "duplicate_value", "fields": ["email"],
            "msg": "Another record of 'Member' already has this value in field 'email'.",
        }]
        assert {e["loc"][0] for e in rejects[6]["errors"]} == {"code", "email"}
        assert "same chunk" in rejects[6]["errors"][0]["msg"]
        assert [e["loc"] for e in rejects[9]["errors"]] == [["code"]]
        assert rejects[9]["values"]["code"] == "C2"
        stored = by_code(registry)
        assert sorted(stored) == sorted(["C100", "C1", "C2", "C4", "C5", "C7", "C8", "C10"])
        assert stored["C5"]["email"] == "m5@example.com"
        assert registry.verify_audit()["ok"]

    def test_abort_stops_at_a_duplicate_and_writes_none_of_its_chunk(
        self, registry: DynamicModelRegistry, tmp_path: Path
    ) -> None:
        rows = [member(i) for i in range(1, 9)]
        rows[6] = member(5)  # row 7 repeats row 5, chunk 2 (rows 5-8)
        status = self.run(registry, write_csv(tmp_path / "m.csv", rows), on_error="abort")
        assert status["state"] == "aborted" and "Row 7" in status["reason"]
        assert (status["done"], status["rejected"]) == (4, 1)
        assert sorted(by_code(registry)) == ["C1", "C2", "C3", "C4"]

    # -- upsert -------------------------------------------------------------------------

    def test_upsert_updates_matching_records_inserts_the_rest(
        self, registry: DynamicModelRegistry, tmp_path: Path
    ) -> None:
        first = self.run(registry, write_csv(tmp_path / "a.csv", [member(i) for i in range(1, 7)]))
        assert first["done"] == 6
        before = by_code(registry)
        moment = datetime.datetime.now(datetime.UTC)
        rows = [member(i) for i in range(1, 9)]
        rows[1] = member(2, age=50)  # changes C2
        rows[4] = member(5, age=60)  # changes C5
        status = self.run(registry, write_csv(tmp_path / "b.csv", rows), mode="upsert",
                          key=["code"])
        assert (status["state"], status["done"], status["rejected"]) == ("finished", 8, 0)
        after = by_code(registry)
        assert len(after) == 8 and after["C2"]["age"] == 50 and after["C5"]["age"] == 60
        assert after["C2"]["id"] == before["C2"]["id"] and after["C2"]["version"] == 2
        assert after["C1"] == before["C1"]  # unchanged: no new version
        history = registry.history("Member", after["C2"]["id"], "admin")
        assert [e.operation for e in history] == ["create", "update"]
        assert history[1].changes == {"age": {"old": 2, "new": 50}}
        assert history[1].user_id == "u"
        assert registry.history("Member", after["C1"]["id"], "admin")[0].operation == "create"
        assert registry.as_of("Member", after["C2"]["id"], moment, "admin")["age"] == 2
        assert registry.as_of("Member", after["C2"]["id"], datetime.datetime.now(
            datetime.UTC), "admin")["age"] == 50
        assert registry.verify_audit()["ok"]

    def test_upsert_run_again_changes_nothing(
        self, registry: DynamicModelRegistry, tmp_path: Path
    ) -> None:
        source = write_csv(tmp_path / "a.csv", [member(i) for i in range(1, 6)])
        self.run(registry, source, mode="upsert", key="code")
        again = write_csv(tmp_path / "b.csv", [member(i) for i in range(1, 6)])
        status = self.run(registry, again, mode="upsert", key="code")
        assert (status["done"], status["rejected"]) == (5, 0)
        assert {r["version"] for r in by_code(registry).values()} == {1}

    def test_upsert_rejects_key_repeats_and_other_unique_clashes(
        self, registry: DynamicModelRegistry, tmp_path: Path
    ) -> None:
        self.run(registry, write_csv(tmp_path / "a.csv", [member(1), member(2)]))
        rows = [member(1, age=9), member(3), member(3, age=4), member(4, email="m2@example.com")]
        status = self.run(registry, write_csv(tmp_path / "b.csv", rows), mode="upsert",
                          key=["code"])
        assert (status["done"], status["rejected"]) == (2, 2)
        rejects = registry.imports.rejects(status["job_id"], "admin")["items"]
        assert [(r["row"], r["errors"][0]["loc"]) for r in rejects] == [
            (3, ["code"]), (4, ["email"])]
        assert by_code(registry)["C1"]["age"] == 9 and "C4" not in by_code(registry)

    def test_upsert_with_abort_stops_at_a_repeated_key(
        self, registry: DynamicModelRegistry, tmp_path: Path
    ) -> None:
        self.run(registry, write_csv(tmp_path / "a.csv", [member(1)]))
        rows = [member(1, age=30), member(2), member(3), member(4), member(5), member(5, age=7)]
        status = self.run(registry, write_csv(tmp_path / "b.csv", rows), mode="upsert",
                          key="code", on_error="abort")
        assert status["state"] == "aborted" and "Row 6" in status["reason"]
        assert (status["done"], status["rejected"]) == (4, 1)
        stored = by_code(registry)
        assert sorted(stored) == ["C1", "C2", "C3", "C4"] and stored["C1"]["age"] == 30

    def test_upsert_on_the_inspections_primary_key(
        self, database_url: str, tmp_path: Path
    ) -> None:
        import inspector

        lines = "".join(f"{i},item {i},{i * 2}\n" for i in range(1, 41))
        source = tmp_path / "items.csv"
        source.write_text("item_id,label,qty\n" + lines)
        registry = DynamicModelRegistry(database_url)
        try:
            inspection = inspector.inspect(str(source), name="Item")
            assert inspection.primary_key == ["item_id"]
            name = registry.register_inspection(inspection)
            assert registry.import_records(name, source, user_id="u", user_role="admin")[
                "done"] == 40
            source.write_text("item_id,label,qty\n" + lines.replace("item 7,14", "item 7,99"))
            status = registry.import_records(name, source, user_id="u", user_role="admin",
                                             options={"mode": "upsert", "key": ["item_id"]})
            assert (status["done"], status["rejected"]) == (40, 0)
            items = registry.list(name, "u", "admin", page_size=100)["items"]
            assert len(items) == 40
            (seventh,) = [i for i in items if i["item_id"] == 7]
            assert seventh["qty"] == 99 and seventh["version"] == 2
        finally:
            registry.close()

    def test_upsert_arguments_are_checked_before_anything_is_written(
        self, registry: DynamicModelRegistry, tmp_path: Path
    ) -> None:
        source = write_csv(tmp_path / "a.csv", [member(1)])
        with pytest.raises(ValidationFailed, match="needs a key"):
            self.run(registry, source, mode="upsert")
        with pytest.raises(UnknownField, match="'nope'"):
            self.run(registry, source, mode="upsert", key=["nope"])
        with pytest.raises(ValidationFailed, match="not unique"):
            self.run(registry, source, mode="upsert", key=["name"])
        with pytest.raises(ValidationFailed, match="not unique"):
            self.run(registry, source, mode="upsert", key=["code", "email"])
        with pytest.raises(ValidationFailed, match="not unique"):
            self.run(registry, write_csv(tmp_path / "p.csv", [["C1", "x", 1]],
                                         ["code", "name", "age"]), "Plain", mode="upsert",
                     key="code")
        with pytest.raises(ValidationFailed, match="only used with mode 'upsert'"):
            self.run(registry, source, key=["code"])
        with pytest.raises(ValidationFailed, match="names a field twice"):
            self.run(registry, source, mode="upsert", key=["code", "code"])
        with pytest.raises(ValidationFailed, match="mode"):
            self.run(registry, source, mode="merge", key=["code"])
        with pytest.raises(ValidationFailed, match="key"):
            self.run(registry, source, mode="upsert", key=[1])
        with pytest.raises(PermissionDenied, match="update"):
            self.run(registry, source, mode="upsert", key=["code"], role="clerk")
        assert count(registry, import_jobs) == 0 and by_code(registry) == {}

    # -- create_many ----------------------------------------------------------------------

    def test_create_many_repeating_a_unique_value_is_a_duplicate_value(
        self, registry: DynamicModelRegistry
    ) -> None:
        registry.create("Member", dict(zip(HEADER, member(1), strict=True)), "u", "admin")
        items = [dict(zip(HEADER, member(i), strict=True)) for i in (2, 3)]
        items[1]["email"] = "m1@example.com"
        with pytest.raises(DuplicateValue, match="field 'email'") as caught:
            registry.create_many("Member", items, "u", "admin")
        assert caught.value.details["fields"] == ["email"]
        assert sorted(by_code(registry)) == ["C1"]  # all or nothing
