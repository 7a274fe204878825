"""The import contract on the machine's real PostgreSQL: COPY, and an SQL table source read
with a server-side cursor."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import create_postgres_database, drop_postgres_database
from tests.import_contract import ImportContract, sqlite_table_source

pytestmark = pytest.mark.integration


def postgres_table_source(url: str, rows: int, tmp: Path) -> dict[str, Any]:
    """The same `people` table as the SQLite source, copied into PostgreSQL."""
    local = sqlite_table_source(tmp / "seed.sqlite3", rows)
    source = sa.create_engine(local["location"])
    target = sa.create_engine(url)
    table = sa.Table("people", sa.MetaData(), autoload_with=source)
    table.create(target)
    with source.connect() as read, target.begin() as write:
        write.execute(table.insert(), [dict(row._mapping) for row in read.execute(table.select())])
    source.dispose()
    target.dispose()
    return {"kind": "sql", "location": url, "table": "people"}


class TestPostgresImports(ImportContract):
    @pytest.fixture
    def database_url(self, postgres_url: str) -> str:
        return postgres_url

    @pytest.fixture
    def sql_source(self, tmp_path: Path) -> Iterator[Callable[[int], dict[str, Any]]]:
        url = create_postgres_database("dmr_source")
        try:
            yield lambda rows: postgres_table_source(url, rows, tmp_path)
        finally:
            drop_postgres_database(url)
