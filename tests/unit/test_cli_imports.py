"""`dmr import` and `dmr imports` in-process: progress, summary, --json, rejects, refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from registry import DynamicModelRegistry
from tests.import_contract import FIELD_MAP, PERMISSIONS, Person, good_row, write_csv
from tests.unit.test_cli import InProcessClient, _json, dmr
from tests.unit.test_cli import registry as cli_registry  # noqa: F401  (the fixture)
from workers.app import app
from workers.cli import common as cli_common


class ChunksAtOnce(InProcessClient):
    """Runs each chunk when it is sent, as a worker would soon after; other tasks on .get()."""

    def send(self, name: str, /, **kwargs: Any) -> Any:  # type: ignore[override]
        handle = super().send(name, **kwargs)
        if name == "imports.chunk":
            handle.get()
        return handle


@pytest.fixture
def registry(
    cli_registry: DynamicModelRegistry, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> DynamicModelRegistry:
    client = ChunksAtOnce(app)
    monkeypatch.setattr(cli_common.CliContext, "client", lambda self: client)
    return cli_registry


def people(tmp_path: Path) -> Path:
    rows = [good_row(i) for i in range(1, 8)]
    rows[2][1] = "three"
    return write_csv(tmp_path / "people.csv", rows)


def test_import_prints_a_summary_and_json(
    registry: DynamicModelRegistry, tmp_path: Path
) -> None:
    registry.register_model("Person", Person, permissions=PERMISSIONS)
    source = people(tmp_path)
    shown = dmr("import", str(source), "--model", "Person", "--field-map",
                json.dumps(FIELD_MAP), "--chunk-size", "3")
    assert shown.exit_code == 0, shown.output
    assert "finished" in shown.output and "1 rows rejected" in shown.output
    status = _json(dmr("import", str(source), "--model", "Person", "--field-map",
                       json.dumps(FIELD_MAP), "--chunk-size", "3", "--json"))
    assert (status["state"], status["done"], status["rejected"], status["total"]) == (
        "finished", 6, 1, 7)
    assert registry.list("Person", "u", "admin")["total"] == 6  # the same job: written once
    page = _json(dmr("imports", "rejects", status["job_id"], "--json"))
    assert page["items"][0]["row"] == 3
    table = dmr("imports", "rejects", status["job_id"])
    assert "age: Input should be a valid integer" in table.output
    assert _json(dmr("imports", "status", status["job_id"], "--json"))["done"] == 6
    assert _json(dmr("imports", "cancel", status["job_id"], "--json"))["state"] == "finished"


def test_refusals_and_bad_input_exit_codes(
    registry: DynamicModelRegistry, tmp_path: Path
) -> None:
    registry.register_model("Person", Person, permissions=PERMISSIONS)
    source = people(tmp_path)
    missing = dmr("import", str(tmp_path / "nope.csv"), "--model", "Person")
    assert missing.exit_code == 2 and "does not exist" in missing.output
    denied = dmr("import", str(source), "--model", "Person", "--role", "viewer",
                 "--field-map", json.dumps(FIELD_MAP))
    assert denied.exit_code == 1 and "PermissionDenied" in denied.output
    unknown = dmr("import", str(source), "--model", "Person",
                  "--field-map", json.dumps({**FIELD_MAP, "note": "nickname"}))
    assert unknown.exit_code == 1 and "UnknownField" in unknown.output
    assert registry.list("Person", "u", "admin")["total"] == 0


def test_import_upsert_on_a_key(registry: DynamicModelRegistry, tmp_path: Path) -> None:
    from tests.import_keyed_contract import PERMISSIONS as KEYED
    from tests.import_keyed_contract import Member, member
    from tests.import_keyed_contract import write_csv as write_members

    registry.register_model("Member", Member, permissions=KEYED)
    first = write_members(tmp_path / "a.csv", [member(1), member(2)])
    assert _json(dmr("import", str(first), "--model", "Member", "--json"))["done"] == 2
    second = write_members(tmp_path / "b.csv", [member(1, age=40), member(3)])
    status = _json(dmr("import", str(second), "--model", "Member", "--mode", "upsert",
                       "--key", "code", "--json"))
    assert (status["state"], status["done"], status["rejected"]) == ("finished", 2, 0)
    stored = {r["code"]: r for r in registry.list("Member", "u", "admin")["items"]}
    assert sorted(stored) == ["C1", "C2", "C3"] and stored["C1"]["age"] == 40
    refused = dmr("import", str(second), "--model", "Member", "--mode", "upsert",
                  "--key", "name")
    assert refused.exit_code == 1 and "not unique" in refused.output


def test_imports_resume(registry: DynamicModelRegistry, tmp_path: Path) -> None:
    registry.register_model("Person", Person, permissions=PERMISSIONS)
    source = people(tmp_path)
    status = _json(dmr("import", str(source), "--model", "Person", "--field-map",
                       json.dumps(FIELD_MAP), "--chunk-size", "3", "--json"))
    resumed = _json(dmr("imports", "resume", status["job_id"], "--json"))
    assert (resumed["job_id"], resumed["state"], resumed["done"]) == (status["job_id"],
                                                                      "finished", 6)
    source.write_text("changed\n")
    changed = dmr("imports", "resume", status["job_id"])
    assert changed.exit_code == 1 and "SourceUnreadable" in changed.output
    unknown = dmr("imports", "resume", "imp_nope")
    assert unknown.exit_code == 1 and "ImportNotFound" in unknown.output


def test_imports_resume_takes_a_password_url_again(
    registry: DynamicModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.unit.test_import_resume import password_job

    registry.register_model("Person", Person, permissions=PERMISSIONS)
    job = password_job(registry)
    asked = dmr("imports", "resume", job)
    assert asked.exit_code == 1 and "password is not stored" in asked.output
    given = dmr("imports", "resume", job, "--source-url", "postgresql://loader:pw@elsewhere/x")
    assert given.exit_code == 1 and "ValidationFailed" in given.output
    assert ":pw@" not in given.output
    monkeypatch.setenv("DMR_IMPORT_SOURCE_URL", "postgresql+psycopg://loader:pw@db.example/x")
    from_env = dmr("imports", "resume", job)
    assert from_env.exit_code == 1 and "'postgresql+psycopg://loader:***@db.example/x'" in (
        from_env.output)


def test_imports_cleanup(registry: DynamicModelRegistry, tmp_path: Path) -> None:
    registry.register_model("Person", Person, permissions=PERMISSIONS)
    source = people(tmp_path)
    status = _json(dmr("import", str(source), "--model", "Person", "--field-map",
                       json.dumps(FIELD_MAP), "--chunk-size", "3", "--json"))
    planned = _json(dmr("imports", "cleanup", "--older-than", "0s", "--dry-run", "--json"))
    assert (planned["jobs"], planned["rejects"], planned["dry_run"]) == (1, 1, True)
    shown = dmr("imports", "cleanup", "--older-than", "0s", "--dry-run")
    assert shown.exit_code == 0 and "Would delete 1 import jobs" in shown.output
    assert dmr("imports", "status", status["job_id"]).exit_code == 0
    young = dmr("imports", "cleanup")
    assert young.exit_code == 0 and "Deleted 0 import jobs" in young.output
    denied = dmr("imports", "cleanup", "--older-than", "1d", "--role", "clerk")
    assert denied.exit_code == 1 and "PermissionDenied" in denied.output
    bad = dmr("imports", "cleanup", "--older-than", "30")
    assert bad.exit_code == 2
    assert bad.output.strip() == ("dmr: --older-than takes an age such as 30d, 12h or 90m, "
                                  "not '30'.")
    done = dmr("imports", "cleanup", "--older-than", "0s")
    assert done.exit_code == 0 and "Deleted 1 import jobs" in done.output
    gone = dmr("imports", "status", status["job_id"])
    assert gone.exit_code == 1 and "ImportNotFound" in gone.output
    helped = dmr("imports", "cleanup", "--help")
    assert "--dry-run" in helped.output and "dmr imports cleanup --older-than 30d" in (
        helped.output)


def test_imports_cleanup_calls_again_while_more_jobs_wait(
    registry: DynamicModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.unit.test_import_cleanup import cancelled_jobs

    registry.register_model("Person", Person, permissions=PERMISSIONS)
    monkeypatch.setattr("registry.imports.jobs.MAX_JOBS_PER_CALL", 2)
    cancelled_jobs(registry, 5)
    done = _json(dmr("imports", "cleanup", "--older-than", "0s", "--json"))
    assert (done["jobs"], done["more"]) == (5, False)


def test_imports_cleanup_stops_when_a_call_takes_no_job(
    registry: DynamicModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jobs that another cleanup takes first leave `more` set with nothing deleted."""
    from registry.imports import jobs
    from tests.unit.test_import_cleanup import cancelled_jobs

    registry.register_model("Person", Person, permissions=PERMISSIONS)
    monkeypatch.setattr(jobs, "MAX_JOBS_PER_CALL", 2)
    cancelled_jobs(registry, 5)
    deletes: list[str] = []
    real_delete = jobs.delete_job

    def taken_elsewhere_after_two(conn: Any, job_id: str, before: Any) -> dict[str, int]:
        deletes.append(job_id)
        assert len(deletes) < 20, "the command kept calling"
        if len(deletes) > 2:
            return {"jobs": 0, "chunks": 0, "rejects": 0}
        return real_delete(conn, job_id, before)

    monkeypatch.setattr(jobs, "delete_job", taken_elsewhere_after_two)
    done = _json(dmr("imports", "cleanup", "--older-than", "0s", "--json"))
    assert (done["jobs"], done["more"], len(deletes)) == (2, True, 4)
