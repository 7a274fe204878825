"""Long-running services and the demo: `dmr worker`, `beat`, `flower`, `demo`, `health`."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..common import EXIT_UNAVAILABLE, CliContext, CliError, pass_cli

PASS_THROUGH = {"ignore_unknown_options": True, "allow_extra_args": False}


@click.command("worker", context_settings=PASS_THROUGH)
@click.option("-Q", "--queues", help="Comma-separated queues (default: celery.worker_queues).")
@click.option("-c", "--concurrency", type=int, help="Child processes.")
@click.option("-P", "--pool", default="prefork", show_default=True, help="prefork, solo, threads.")
@click.option("-n", "--hostname", help="Node name, e.g. crud1@%h.")
@click.option("-l", "--loglevel", default="info", show_default=True)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(
    queues: str | None, concurrency: int | None, pool: str, hostname: str | None,
    loglevel: str, celery_args: tuple[str, ...],
) -> None:
    """Run a worker (Celery's own options may follow `--`).

    \b
    Example:
      dmr worker -Q registry,crud -c 4 -n crud@%h
      dmr worker -Q audit -c 1 -n audit@%h      # the low-priority audit worker
    """
    from workers.app import app

    argv = ["worker", "-Q", queues or ",".join(app.settings.celery.worker_queues)]
    argv += ["-P", pool, "-l", loglevel]
    if concurrency:
        argv += ["-c", str(concurrency)]
    if hostname:
        argv += ["-n", hostname]
    app.worker_main(argv + _celery_args(celery_args))


@click.command("beat", context_settings=PASS_THROUGH)
@click.option("-l", "--loglevel", default="info", show_default=True)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def beat(loglevel: str, celery_args: tuple[str, ...]) -> None:
    """Run the periodic scheduler (exactly one per deployment).

    \b
    Example:
      dmr beat -- --schedule /tmp/celerybeat-schedule
    """
    from workers.app import app

    scheduler = "workers.beat:HeartbeatScheduler"  # for `dmr health beat`
    app.start(["beat", "-l", loglevel, "-S", scheduler, *_celery_args(celery_args)])


@click.command("flower", context_settings=PASS_THROUGH)
@click.argument("flower_args", nargs=-1, type=click.UNPROCESSED)
def flower(flower_args: tuple[str, ...]) -> None:
    """Run Flower on the [flower] address and port, with its basic auth.

    No password ships with the project: without [flower] basic_auth (DMR_FLOWER__BASIC_AUTH),
    a random password for user "admin" is made and printed once.

    \b
    Example:
      DMR_FLOWER__BASIC_AUTH=admin:s3cret dmr flower
    """
    from workers.app import app

    settings = app.settings.flower
    credentials = settings.basic_auth or _random_credentials(settings.address, settings.port)
    # Through the environment, so the password does not show in the process list.
    os.environ["FLOWER_BASIC_AUTH"] = credentials
    app.start(
        ["flower", f"--address={settings.address}", f"--port={settings.port}",
         *_celery_args(flower_args)]
    )


@click.command("demo")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Keep the SQLite files here.")
def demo(data_dir: Path | None) -> None:
    """Run the Product scenario on the embedded default, with a real worker process.

    \b
    Example:
      dmr demo
    """
    from workers.demo import run_demo

    code = run_demo(data_dir)
    if code:
        raise click.exceptions.Exit(code)


@click.group("health")
def health() -> None:
    """Health checks for containers and monitors (exit 0 healthy, 3 not).

    \b
    Example:
      dmr health worker crud@$HOSTNAME
    """


@health.command("beat")
@click.option("--max-age", type=float, default=60.0, show_default=True,
              help="Seconds since beat's last tick after which it counts as hung.")
def health_beat(max_age: float) -> None:
    """Check that beat ticked recently (its heartbeat file, DMR_BEAT_HEARTBEAT).

    \b
    Example:
      dmr health beat --max-age 60
    """
    from workers.beat import heartbeat_age, heartbeat_path

    age = heartbeat_age()
    if age is None:
        message = f"Beat never ticked ({heartbeat_path()} does not exist)."
        raise CliError(message, EXIT_UNAVAILABLE)
    if age > max_age:
        raise CliError(f"Beat last ticked {age:.0f} s ago: it is hung.", EXIT_UNAVAILABLE)
    click.echo(f"beat: ticked {age:.1f} s ago")


@health.command("worker")
@click.argument("hostname")
@click.option("--timeout", type=float, default=5.0, show_default=True, help="Seconds.")
@pass_cli
def health_worker(cli: CliContext, hostname: str, timeout: float) -> None:
    """Ping one worker by node name.

    \b
    Example:
      dmr health worker crud@$HOSTNAME --timeout 5
    """
    replies = cli.client().app.control.ping(destination=[hostname], timeout=timeout)
    if not replies:
        message = f"Worker {hostname!r} did not answer within {timeout:g} s."
        raise CliError(message, EXIT_UNAVAILABLE)
    click.echo(f"{hostname}: ok")


def _random_credentials(address: str, port: int) -> str:
    import secrets

    password = secrets.token_urlsafe(12)
    click.echo(
        f"Flower on http://{address}:{port}/ - user admin, password {password} "
        "(set DMR_FLOWER__BASIC_AUTH=user:password to choose one)",
        err=True,
    )
    return f"admin:{password}"


def _celery_args(args: tuple[str, ...]) -> list[str]:
    return [arg for arg in args if arg != "--"]


def register(root: click.Group) -> None:
    for command in (worker, beat, flower, demo, health):
        root.add_command(command)
