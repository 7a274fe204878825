"""Reflection of real tables: MariaDB (database `test`, root without a password) and PostgreSQL.

Each test creates its own table, inspects it, registers the inspection and reads the rows back
through `open_rows`, whose server-side cursor keeps memory bounded.
"""

from __future__ import annotations

import tracemalloc
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

import inspector
from registry import DynamicModelRegistry
from tests.conftest import MARIADB_URL, create_postgres_database, drop_postgres_database

pytestmark = pytest.mark.integration



def registers(found: inspector.Inspection) -> type:
    registry = DynamicModelRegistry()
    registry.register_inspection(found)
    return registry.models[found.name]


@pytest.fixture
def mariadb() -> Iterator[tuple[sa.Engine, str]]:
    engine = sa.create_engine(MARIADB_URL)
    try:
        engine.connect().close()
    except sa.exc.OperationalError as exc:
        pytest.fail(f"MariaDB is not reachable at {MARIADB_URL}: {exc}")
    table = f"insp_{uuid.uuid4().hex[:8]}"
    yield engine, table
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
    engine.dispose()


@pytest.fixture
def postgres(postgres_url: str) -> Iterator[tuple[sa.Engine, str]]:
    engine = sa.create_engine(postgres_url)
    table = f"insp_{uuid.uuid4().hex[:8]}"
    yield engine, table
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        conn.exec_driver_sql(f"DROP TYPE IF EXISTS {table}_mood")
    engine.dispose()


@pytest.mark.mariadb
def test_mariadb_table_by_reflection(mariadb: tuple[sa.Engine, str]) -> None:
    engine, table = mariadb
    with engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TABLE {table} ("
            " id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY,"
            " sku VARCHAR(20) NOT NULL UNIQUE COMMENT 'stock keeping unit',"
            " price DECIMAL(10, 2) NOT NULL,"
            " active TINYINT(1) NOT NULL DEFAULT 1,"
            " size ENUM('S', 'M', 'L'),"
            " status VARCHAR(10) CHECK (status IN ('new', 'sold')),"
            " contact VARCHAR(120),"
            " added DATETIME,"
            " ratio DOUBLE,"
            " `order` SMALLINT)"
        )
        conn.exec_driver_sql(
            f"INSERT INTO {table} (sku, price, active, size, status, contact, added, ratio,"
            " `order`) VALUES ('A-1', 9.99, 1, 'S', 'new', 'a@example.com',"
            " '2024-01-02 10:00:00', 0.5, 1), ('A-2', 19.50, 0, NULL, 'sold', 'b@example.com',"
            " NULL, 1.5, 2)"
        )
    found = inspector.inspect({"kind": "sql", "location": MARIADB_URL, "table": table})
    properties = found.json_schema["properties"]
    assert found.primary_key == ["source_id"]
    assert properties["source_id"] == {"title": "id", "type": "integer", "minimum": 0}
    assert properties["sku"] == {
        "description": "stock keeping unit", "type": "string", "maxLength": 20
    }  # fmt: skip
    assert properties["price"] == {
        "type": "string", "format": "decimal", "x-max-digits": 10, "x-decimal-places": 2
    }  # fmt: skip
    assert properties["active"] == {"type": "boolean"}
    assert properties["size"]["anyOf"][0] == {"type": "string", "enum": ["S", "M", "L"]}
    assert properties["status"]["anyOf"][0] == {"type": "string", "enum": ["new", "sold"]}
    assert properties["contact"]["anyOf"][0] == {"type": "string", "format": "email"}
    assert properties["added"]["anyOf"][0] == {"type": "string", "format": "date-time"}
    assert properties["ratio"]["anyOf"][0] == {"type": "number"}
    assert properties["order_"]["anyOf"][0]["maximum"] == 2**15 - 1
    assert found.provenance["sku"].unique is True
    assert found.provenance["added"].null_fraction == 0.5
    assert found.source.rows_total == 2
    assert found.source.location == MARIADB_URL
    model = registers(found)
    with inspector.open_rows(
        {"kind": "sql", "location": MARIADB_URL, "table": table}, field_map=found.field_map
    ) as rows:
        records = [model.model_validate(row.values) for row in rows]
    assert [record.sku for record in records] == ["A-1", "A-2"]


def test_postgres_table_by_reflection(postgres: tuple[sa.Engine, str]) -> None:
    engine, table = postgres
    url = engine.url.render_as_string(hide_password=False)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TYPE {table}_mood AS ENUM ('calm', 'busy')")
        conn.exec_driver_sql(
            f"CREATE TABLE {table} ("
            " code CHAR(5) PRIMARY KEY,"
            " name VARCHAR(40) NOT NULL UNIQUE,"
            " amount NUMERIC(8, 3),"
            " seen TIMESTAMPTZ NOT NULL,"
            " day DATE,"
            " at TIME,"
            " ref UUID,"
            f" mood {table}_mood,"
            " kind TEXT CHECK (kind IN ('a', 'b')),"
            " tags INTEGER[],"
            " data JSONB,"
            " big BIGINT,"
            " flag BOOLEAN)"
        )
        conn.exec_driver_sql(f"COMMENT ON COLUMN {table}.name IS 'display name'")
        conn.exec_driver_sql(
            f"INSERT INTO {table} VALUES ('00001', 'first', 1.250, now(), '2024-02-03',"
            " '10:00', gen_random_uuid(), 'calm', 'a', '{1,2}', '{\"k\": 1}', 5, true)"
        )
    found = inspector.inspect({"kind": "sql", "location": url, "table": table})
    properties = found.json_schema["properties"]
    assert found.primary_key == ["code"]
    assert properties["code"] == {"type": "string", "maxLength": 5}
    assert properties["name"]["description"] == "display name"
    assert properties["amount"]["anyOf"][0]["x-decimal-places"] == 3
    assert properties["seen"] == {"type": "string", "format": "date-time"}
    assert found.provenance["seen"].inferred_type == "datetime_tz"
    assert properties["day"]["anyOf"][0]["format"] == "date"
    assert properties["at"]["anyOf"][0]["format"] == "time"
    assert properties["ref"]["anyOf"][0]["format"] == "uuid"
    assert properties["mood"]["anyOf"][0]["enum"] == ["calm", "busy"]
    assert properties["kind"]["anyOf"][0]["enum"] == ["a", "b"]
    assert properties["tags"]["anyOf"][0]["items"]["type"] == "integer"
    assert properties["data"] == {"default": None}
    assert properties["big"]["anyOf"][0]["maximum"] == 2**63 - 1
    assert found.provenance["name"].unique is True
    catalog_url = create_postgres_database("dmr_inspect")  # a catalog of its own
    registry = DynamicModelRegistry(catalog_url)
    try:
        registry.register_inspection(found, "Reflected")
        listed = {model["name"]: model for model in registry.list_models()}["Reflected"]
        assert listed["provenance"]["inspection"]["primary_key"] == ["code"]
        model = registry.models["Reflected"]
    finally:
        registry.close()
        drop_postgres_database(catalog_url)
    with inspector.open_rows({"kind": "sql", "location": url, "table": table}) as rows:
        (row,) = list(rows)
    assert model.model_validate(row.values).code == "00001"


def test_postgres_rows_stream_through_a_server_side_cursor(
    postgres: tuple[sa.Engine, str],
) -> None:
    engine, table = postgres
    url = engine.url.render_as_string(hide_password=False)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, body TEXT)")
        conn.exec_driver_sql(
            f"INSERT INTO {table} SELECT i, repeat('x', 500) FROM generate_series(1, 40000) i"
        )
    tracemalloc.start()
    try:
        count = 0
        with inspector.open_rows({"kind": "sql", "location": url, "table": table}) as rows:
            for row in rows:
                count += 1
                assert row.number == row.values["id"]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 40000
    # The table holds 20 MB of text; a client-side cursor would hold all of it at once.
    assert peak < 8_000_000, peak
