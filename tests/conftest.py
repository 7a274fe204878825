"""Fixtures shared by unit and integration tests: a fresh PostgreSQL database per session."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

#: Where the tests create and drop their databases; the machine's PostgreSQL by default.
POSTGRES_ADMIN_URL = os.environ.get(
    "DMR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def create_postgres_database(prefix: str = "dmr_test") -> str:
    """Create an empty database and return its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return sa.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    name = sa.make_url(url).database
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    url = create_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(url)


# -- services the tests need: skipped with one line each when missing (never under CI) --------

RABBITMQ_ADDRESS = ("127.0.0.1", 5672)
#: The MariaDB database the inspector's reflection test creates its tables in.
MARIADB_URL = os.environ.get("DMR_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


def _listening(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def _postgres_missing() -> str | None:
    url = sa.make_url(POSTGRES_ADMIN_URL)
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 2})
        with engine.connect():
            pass
        engine.dispose()
    except sa.exc.SQLAlchemyError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0][:120]
        return (f"PostgreSQL: cannot connect as {url.username!r} to {url.host}:{url.port} "
                f"({reason}); set DMR_TEST_POSTGRES_URL")
    return None


def _rabbitmq_missing() -> str | None:
    if not _listening(*RABBITMQ_ADDRESS):
        return "RabbitMQ: nothing listens on 127.0.0.1:5672"
    if shutil.which("rabbitmqctl") is None:
        return "RabbitMQ: rabbitmqctl (per-test virtual hosts) is not on PATH"
    return None


def _redis_missing() -> str | None:
    url = sa.make_url(os.environ.get("DMR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    host, port = url.host or "127.0.0.1", url.port or 6379
    if not _listening(host, port):
        return f"Redis: nothing listens on {host}:{port}; set DMR_TEST_REDIS_URL"
    return None


def _mariadb_missing() -> str | None:
    url = sa.make_url(MARIADB_URL)
    host, port = url.host or "127.0.0.1", url.port or 3306
    if not _listening(host, port):
        return f"MariaDB: nothing listens on {host}:{port}; set DMR_TEST_MARIADB_URL"
    return None


def _pyarrow_missing() -> str | None:
    if importlib.util.find_spec("pyarrow") is None:
        return "pyarrow: not installed (pip install -c constraints.txt -e '.[dev,parquet]')"
    return None


def _rabbitmq_server_missing() -> str | None:
    if shutil.which("rabbitmq-server") is None:
        return "RabbitMQ: rabbitmq-server (a node of the broker restart test's own) not on PATH"
    return None


def _node_missing() -> str | None:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    return f"Node.js: {' and '.join(missing)} not on PATH" if missing else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Outside CI, leave out the tests whose services are missing, and say why in one line
    per service; under CI (CI=true) every test runs, and a missing service fails it."""
    if os.environ.get("CI", "").lower() in ("true", "1"):
        return
    markers = {name for item in items
               for name in ("integration", "postgres", "mariadb", "node", "parquet",
                            "rabbitmq_server")
               if item.get_closest_marker(name)}
    reasons: dict[str, list[str]] = {}
    if markers & {"integration", "postgres"}:
        postgres = _postgres_missing()
        services = [r for r in (postgres, _rabbitmq_missing(), _redis_missing()) if r]
        if services:
            reasons["integration"] = services
        if postgres:
            reasons["postgres"] = [postgres]
    if "mariadb" in markers and (mariadb := _mariadb_missing()):
        reasons["mariadb"] = [mariadb]
    if "node" in markers and (node := _node_missing()):
        reasons["node"] = [node]
    if "parquet" in markers and (pyarrow := _pyarrow_missing()):
        reasons["parquet"] = [pyarrow]
    if "rabbitmq_server" in markers and (server := _rabbitmq_server_missing()):
        reasons["rabbitmq_server"] = [server]
    if not reasons:
        return
    left_out = [item for item in items if any(item.get_closest_marker(m) for m in reasons)]
    kept = [item for item in items if item not in left_out]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept
    config.stash[_LEFT_OUT] = (len(left_out), sorted({r for rs in reasons.values() for r in rs}))


_LEFT_OUT = pytest.StashKey[tuple[int, list[str]]]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if _LEFT_OUT not in config.stash:
        return
    count, reasons = config.stash[_LEFT_OUT]
    terminalreporter.write_line(
        f"{count} tests left out because services are missing (under CI=true they run and fail):"
    )
    for reason in reasons:
        terminalreporter.write_line(f"  skipped: {reason}")
