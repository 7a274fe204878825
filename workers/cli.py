"""The `dmr` command: worker, flower, beat, demo, register, models.

    dmr demo                                   the whole flow, embedded, no services
    dmr worker [-Q registry,crud] [-c 2]       a worker (Celery's own options after `--`)
    dmr worker -Q audit -c 1                   the audit worker
    dmr beat                                   the periodic scheduler
    dmr flower                                 Flower; address, port, basic auth from settings
    dmr register product.schema.json --name Product [--permissions perms.json] [--force]
    dmr register --from cars.inspection.json   register an inspection (see dmr inspect)
    dmr inspect cars.csv [--json] [-o FILE]    propose a model for a file or an SQL table
    dmr models                                 the registered models, as JSON
    dmr audit-verify                           check the audit trail (exit 1 altered, 2 unreadable)

Settings come from settings.toml and DMR_* environment variables (see settings.toml).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import cli_inspect

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    options, extra = parser.parse_known_args(argv)
    if extra and options.command not in ("worker", "beat", "flower"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    from registry.errors import ConfigurationError

    try:
        return int(options.run(options, [arg for arg in extra if arg != "--"]) or 0)
    except ConfigurationError as exc:  # a bad setting: one line naming its key
        print(f"dmr: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dmr", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    worker = commands.add_parser("worker", help="run a worker (Celery options may follow --)")
    worker.add_argument("-Q", "--queues", help="comma-separated queues (celery.worker_queues)")
    worker.add_argument("-c", "--concurrency", type=int, help="child processes")
    worker.add_argument("-P", "--pool", default="prefork", help="prefork, solo or threads")
    worker.add_argument("-n", "--hostname", help="node name, e.g. crud1@%%h")
    worker.add_argument("-l", "--loglevel", default="info")
    worker.set_defaults(run=_worker)

    beat = commands.add_parser("beat", help="run the periodic scheduler")
    beat.add_argument("-l", "--loglevel", default="info")
    beat.set_defaults(run=_beat)

    flower = commands.add_parser("flower", help="run Flower with the settings' basic auth")
    flower.set_defaults(run=_flower)

    demo = commands.add_parser("demo", help="run the Product scenario on the embedded default")
    demo.add_argument("--data-dir", type=Path, help="keep the SQLite files here")
    demo.set_defaults(run=_demo)

    register = commands.add_parser("register", help="register a model from a JSON Schema file")
    register.add_argument("schema", type=Path, nargs="?")
    register.add_argument("--name", help="model name (default: the schema's title)")
    register.add_argument("--permissions", type=Path, help="JSON file of permissions")
    register.add_argument("--mode", default="crud", choices=["crud", "cqrs", "hybrid"])
    register.add_argument("--force", action="store_true", help="apply incompatible changes")
    register.set_defaults(run=_register)

    cli_inspect.add_commands(commands, register)

    models = commands.add_parser("models", help="list registered models as JSON")
    models.set_defaults(run=_models)

    audit_verify = commands.add_parser(
        "audit-verify",
        help="walk the audit chain and pending entries (exit 1 if altered, 2 if unreadable)",
    )
    audit_verify.set_defaults(run=_audit_verify)
    return parser


def _worker(options: argparse.Namespace, extra: list[str]) -> int:
    from .app import app

    queues = options.queues or ",".join(app.settings.celery.worker_queues)
    argv = ["worker", "-Q", queues, "-P", options.pool, "-l", options.loglevel]
    if options.concurrency:
        argv += ["-c", str(options.concurrency)]
    if options.hostname:
        argv += ["-n", options.hostname]
    app.worker_main(argv + extra)
    return 0


def _beat(options: argparse.Namespace, extra: list[str]) -> int:
    from .app import app

    app.start(["beat", "-l", options.loglevel, *extra])
    return 0


def _flower(options: argparse.Namespace, extra: list[str]) -> int:
    from .app import app

    settings = app.settings.flower
    # Through the environment, so the password does not show in the process list.
    if settings.basic_auth:
        os.environ["FLOWER_BASIC_AUTH"] = settings.basic_auth
    app.start(["flower", f"--address={settings.address}", f"--port={settings.port}", *extra])
    return 0


def _demo(options: argparse.Namespace, extra: list[str]) -> int:
    from .demo import run_demo

    return run_demo(options.data_dir)


def _register(options: argparse.Namespace, extra: list[str]) -> int:
    if options.inspection is not None:
        return cli_inspect.register_from(options)
    if options.schema is None:
        sys.exit("dmr register: give a JSON Schema file, or --from an inspection document.")
    schema = _read_json_object(options.schema, "a JSON Schema")
    name = options.name or schema.get("title")
    if not name:
        sys.exit("dmr register: give --name, or a schema with a title.")
    permissions = (
        _read_json_object(options.permissions, "permissions") if options.permissions else None
    )
    return _send_and_print(
        lambda client: client.register_model(
            name, schema, options.mode, permissions=permissions, force=options.force
        )
    )


def _models(options: argparse.Namespace, extra: list[str]) -> int:
    return _send_and_print(lambda client: client.list_models())


def _audit_verify(options: argparse.Namespace, extra: list[str]) -> int:
    # In-process against the shared database: it needs no broker, and works when the
    # audit worker is the thing in doubt.
    # Exit 1 means the trail was altered; 2 means it could not be checked at all, so an
    # alert can tell tampering from an outage.
    import sqlalchemy.exc

    from registry import DynamicModelRegistry
    from registry.errors import RegistryError

    try:
        registry = DynamicModelRegistry.from_settings()
        try:
            report = registry.verify_audit()
        finally:
            registry.close()
    except (RegistryError, sqlalchemy.exc.SQLAlchemyError, OSError) as exc:
        print(f"dmr audit-verify: could not check the trail: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


def _send_and_print(send: Any) -> int:
    from celery.exceptions import TimeoutError as ResultTimeout
    from kombu.exceptions import OperationalError

    from registry.errors import RegistryError
    from tasks.client import RegistryClient

    client = RegistryClient.from_settings()
    try:
        print(json.dumps(send(client).get(), indent=2))
    except RegistryError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except ResultTimeout:
        print(
            f"dmr: no worker answered within {client.settings.result_timeout:g} s; is one "
            "serving the 'registry' queue on the configured broker? (dmr worker)",
            file=sys.stderr,
        )
        return 1
    except (OperationalError, OSError) as exc:
        print(f"dmr: the broker or result store cannot be reached: {exc}", file=sys.stderr)
        return 2
    finally:
        client.close()
    return 0


def _read_json_object(path: Path, what: str) -> dict[str, Any]:
    found = _read_json(path)
    if not isinstance(found, dict):
        sys.exit(f"dmr: {str(path)!r} holds {type(found).__name__}; {what} is a JSON object.")
    return found


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        sys.exit(f"dmr: cannot read {str(path)!r}: {exc}")


if __name__ == "__main__":
    sys.exit(main())
