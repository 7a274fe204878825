"""The embedded default's broker: kombu's filesystem transport, made safe for many processes.

Why this transport: it needs no service, and unlike kombu's SQLAlchemy transport it has fanout
exchanges, so Celery's events and remote control work: Flower shows tasks and workers, and
`dmr` can ask whether a worker serves a queue before it waits. Every process (workers, beat,
producers, Flower) uses one folder, named by the broker URL `filesystem:///absolute/folder`:

    <folder>/queues/      one file per message: <time>_<uuid>.<queue>.msg
    <folder>/processing/  messages a consumer took and has not acknowledged yet
    <folder>/control/     the exchange tables (which queue is bound to which exchange)

What this module changes in kombu's transport, and why:
- A message is written under a temporary name and renamed into `queues/`, so a consumer never
  reads a half-written file (kombu writes in place, and its reader takes no lock).
- A consumer claims a message by renaming it into `processing/` (atomic on one filesystem; kombu
  moves it to the system temp folder, a copy when that is another filesystem), and deletes it
  only when the message is acknowledged. A worker killed mid-task leaves the claim behind, and
  any process puts claims older than `visibility_timeout` back into its queue: at-least-once
  delivery, as with the Redis broker.
- File names start with the wall-clock time in zero-padded nanoseconds, so name order is send
  order across processes and restarts (kombu uses unpadded monotonic milliseconds).
- Event and remote-control reply queues of processes that died (a killed Flower, a killed
  `dmr` command) would collect messages forever: their messages older than a minute are
  dropped and their bindings removed, as RabbitMQ expires such queues.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from queue import Empty
from typing import Any
from urllib.parse import unquote, urlparse

from kombu.exceptions import ChannelError
from kombu.transport import filesystem, virtual
from kombu.utils.json import dumps, loads

__all__ = ["Channel", "Transport", "broker_folder", "is_file_broker", "transport_options"]

#: `broker_transport` names this class, so Celery uses it for `filesystem://` URLs.
TRANSPORT_PATH = "tasks.file_broker:Transport"
#: Seconds after which an unread event or reply message is dropped (RabbitMQ: event queue
#: messages live 5 s, idle event queues 60 s).
EPHEMERAL_SECONDS = 60.0
#: Seconds between two sweeps by one channel.
SWEEP_EVERY = 10.0
#: Queue names whose messages are ephemeral: events, remote-control replies and mailboxes.
EPHEMERAL_PREFIXES = ("celeryev.",)
EPHEMERAL_SUFFIXES = (".reply.celery.pidbox", ".celery.pidbox")


def is_file_broker(url: str) -> bool:
    return url.split(":", 1)[0] == "filesystem"


def broker_folder(url: str) -> Path:
    """The folder of a `filesystem:///absolute/folder` URL; raises ValueError without one."""
    path = unquote(urlparse(url).path)
    if not path or path == "/":
        raise ValueError(
            f"Broker URL {url!r} names no folder; write filesystem:///absolute/folder."
        )
    return Path(path)


def transport_options(
    url: str, visibility_timeout: float, polling_interval: float
) -> dict[str, Any]:
    """Celery's `broker_transport_options` for a file broker URL."""
    folder = broker_folder(url)
    return {
        "data_folder_in": str(folder / "queues"),
        "data_folder_out": str(folder / "queues"),
        "processed_folder": str(folder / "processing"),
        "control_folder": str(folder / "control"),
        "visibility_timeout": visibility_timeout,
        "polling_interval": polling_interval,
    }


class Channel(filesystem.Channel):
    """kombu's filesystem channel with atomic writes, claims and sweeps (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._claims: dict[str, Path] = {}
        self._no_ack_queues: set[str] = set()
        self._last_sweep = 0.0
        for folder in (self.queues, self.processing, self.control_folder):
            folder.mkdir(parents=True, exist_ok=True)

    @property
    def queues(self) -> Path:
        return Path(self.data_folder_in)

    @property
    def processing(self) -> Path:
        return Path(self.processed_folder)

    # -- writing -----------------------------------------------------------------------

    # kombu's base channel names the message `message`, its filesystem channel `payload`; no
    # name fits both, and kombu passes it by position.
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{time.time_ns():020d}_{uuid.uuid4()}.{queue}.msg"
        temporary = self.queues / f".{name}.tmp"
        try:
            with open(temporary, "wb") as file:
                file.write(dumps(payload).encode("utf-8"))
            os.replace(temporary, self.queues / name)
        except OSError as exc:
            raise ChannelError(f"Cannot add message {name!r}: {exc}") from exc

    # -- reading -----------------------------------------------------------------------

    def basic_consume(self, queue: str, no_ack: bool, *args: Any, **kwargs: Any) -> Any:
        if no_ack:
            self._no_ack_queues.add(queue)
        return super().basic_consume(queue, no_ack, *args, **kwargs)

    def basic_get(self, queue: str, no_ack: bool = False, **kwargs: Any) -> Any:
        if no_ack:
            self._no_ack_queues.add(queue)
        return super().basic_get(queue, no_ack, **kwargs)

    def _get(self, queue: str, timeout: float | None = None) -> Any:
        self._sweep_now_and_then()
        suffix = f".{queue}.msg"
        for name in sorted(os.listdir(self.queues)):
            if name.startswith(".") or name.partition(".")[2] != suffix[1:]:
                continue
            claimed = self.processing / name
            try:
                os.replace(self.queues / name, claimed)
                os.utime(claimed)  # the claim's age counts from now, not from the send
            except FileNotFoundError:
                continue  # another consumer took it first
            payload = loads(claimed.read_bytes())
            if queue in self._no_ack_queues:
                claimed.unlink(missing_ok=True)
            else:
                self._claims[payload["properties"]["delivery_tag"]] = claimed
            return payload
        raise Empty()

    def basic_ack(self, delivery_tag: str, multiple: bool = False) -> None:
        super().basic_ack(delivery_tag, multiple)
        self._release(delivery_tag)

    def basic_reject(self, delivery_tag: str, requeue: bool = False) -> None:
        super().basic_reject(delivery_tag, requeue)  # requeue: a new copy first (_restore)
        self._release(delivery_tag)

    def _release(self, delivery_tag: str) -> None:
        claimed = self._claims.pop(delivery_tag, None)
        if claimed is not None:
            claimed.unlink(missing_ok=True)

    def _restore(self, message: Any) -> None:
        super()._restore(message)  # a new copy in the queue, then the claim goes
        self._release(message.delivery_tag)

    def _size(self, queue: str) -> int:
        suffix = f"{queue}.msg"
        return sum(1 for name in os.listdir(self.queues) if name.partition(".")[2] == suffix)

    # -- sweeping ------------------------------------------------------------------------

    def _sweep_now_and_then(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep >= SWEEP_EVERY:
            self._last_sweep = now
            self.sweep()

    def sweep(self) -> None:
        """Put back claims past the visibility timeout; drop stale ephemeral messages."""
        now = time.time()
        timeout = float(self.transport_options.get("visibility_timeout", 300.0))
        for claimed in _files(self.processing):
            if now - _mtime(claimed) > timeout and claimed not in self._claims.values():
                _move(claimed, self.queues / claimed.name)
        dead: set[str] = set()
        for message in _files(self.queues):
            queue = message.name.partition(".")[2][: -len(".msg")]
            if _ephemeral(queue) and now - _mtime(message) > EPHEMERAL_SECONDS:
                message.unlink(missing_ok=True)
                dead.add(queue)
        if dead:
            self._unbind_everywhere(dead)

    def _unbind_everywhere(self, queues: set[str]) -> None:
        for table in self.control_folder.glob("*.exchange"):
            exchange = table.name[: -len(".exchange")]
            for entry in self.get_table(exchange):
                if entry.queue in queues:
                    self._delete(entry.queue, exchange, entry.routing_key, entry.pattern)


class Transport(filesystem.Transport):
    """kombu's filesystem transport with `Channel` above."""

    Channel = Channel
    # No host to connect to: without this kombu warns "No hostname was supplied" on every clone.
    default_connection_params: dict[str, Any] = {}
    implements = virtual.Transport.implements.extend(
        asynchronous=False, exchange_type=frozenset(["direct", "topic", "fanout"])
    )

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        # kombu shares one in-memory record of declared bindings per process; two folders in
        # one process (tests, a tool pointed at two brokers) would then skip writing a
        # binding to the second folder's control files. The files are the record here.
        self.state = virtual.BrokerState()


def _ephemeral(queue: str) -> bool:
    return queue.startswith(EPHEMERAL_PREFIXES) or queue.endswith(EPHEMERAL_SUFFIXES)


def _files(folder: Path) -> list[Path]:
    try:
        return [folder / name for name in os.listdir(folder) if name.endswith(".msg")]
    except FileNotFoundError:
        return []


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")  # gone meanwhile: never stale


def _move(source: Path, target: Path) -> None:
    try:
        os.replace(source, target)
    except FileNotFoundError:
        pass  # acknowledged, or put back by another process, meanwhile
