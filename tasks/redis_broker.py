"""The Redis broker: kombu's Redis transport, made to drop queue entries that are not messages.

kombu keeps each message in a Redis list as a JSON envelope (`body`, `headers`, `properties`
with its `delivery_tag` and `delivery_info`, ...). Anything with write access to Redis can push
something else into that list (`LPUSH <queue> 'not json'`); kombu's channel then fails while it
decodes the entry, in the worker's event loop, before any of the project's message checks run,
and the worker stops. This channel checks each entry it pops: one that is not an envelope kombu
can turn into a message is logged as one WARNING line naming its queue and dropped (it is already
off the list, so nothing has to be removed). A well-formed envelope goes on exactly as before;
what is *in* the message (task headers, body) is the guarded consumer's to check
(`workers/message_checks.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport.virtual import Empty
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads

__all__ = ["Channel", "NotAnEnvelope", "Transport", "is_redis_broker", "read_envelope"]

#: `broker_transport` names this class, so Celery uses it for `redis://` and `rediss://` URLs.
TRANSPORT_PATH = "tasks.redis_broker:Transport"
REDIS_SCHEMES = ("redis", "rediss")

logger = logging.getLogger(__name__)


class NotAnEnvelope(ValueError):
    """Raised when a queue entry is not a kombu message envelope; the message says what is wrong."""


def is_redis_broker(url: str) -> bool:
    return url.split(":", 1)[0] in REDIS_SCHEMES


def read_envelope(raw: bytes | str, codecs: Mapping[str, Any]) -> dict[str, Any]:
    """The envelope in a queue entry, checked for everything kombu's channel reads from it.

    `codecs` are the body encodings the channel knows (`Channel.codecs`); the body must decode
    with the one the envelope names. Raises `NotAnEnvelope` naming the first thing wrong.
    """
    try:
        envelope = loads(bytes_to_str(raw))
    except (TypeError, ValueError, RecursionError) as error:
        raise NotAnEnvelope(f"not JSON ({type(error).__name__})") from None
    if not isinstance(envelope, dict):
        raise NotAnEnvelope(f"a JSON {type(envelope).__name__}, not an object")
    properties = _field(envelope, "properties", dict)
    delivery_info = _field(properties, "delivery_info", dict, where="properties.")
    for key in ("exchange", "routing_key"):
        _field(delivery_info, key, str, where="properties.delivery_info.")
    _field(properties, "delivery_tag", str, where="properties.")
    _optional(envelope, "headers", dict)
    _optional(envelope, "content-type", str)
    _optional(envelope, "content-encoding", str)
    _check_body(_field(envelope, "body", str), properties, codecs)
    return envelope


def _field(holder: dict[str, Any], key: str, kind: type, where: str = "") -> Any:
    if key not in holder:
        raise NotAnEnvelope(f"no {where}{key}")
    value = holder[key]
    if not isinstance(value, kind):
        raise NotAnEnvelope(f"{where}{key} is a {type(value).__name__}, not a {kind.__name__}")
    return value


def _optional(holder: dict[str, Any], key: str, kind: type) -> None:
    if holder.get(key) is not None:
        _field(holder, key, kind)


def _check_body(body: str, properties: dict[str, Any], codecs: Mapping[str, Any]) -> None:
    encoding = properties.get("body_encoding")
    if not body or encoding is None:
        return
    if not isinstance(encoding, str) or encoding not in codecs:
        raise NotAnEnvelope(f"unknown properties.body_encoding {str(encoding)[:40]!r}")
    try:
        codecs[encoding].decode(body)
    except (TypeError, ValueError) as error:  # binascii.Error is a ValueError
        raise NotAnEnvelope(f"body is not {encoding} ({type(error).__name__})") from None


class Channel(kombu_redis.Channel):
    """kombu's Redis channel; both ways it pops a queue entry check the entry first."""

    def _brpop_read(self, **options: Any) -> bool:
        # What kombu's own `_brpop_read` does, with the entry checked before it is delivered.
        try:
            try:
                popped = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                # Disconnect, so the next poll reconnects (as kombu does).
                self.client.connection.disconnect()
                raise
            if not popped:
                raise Empty()
            key, raw = popped
            queue = bytes_to_str(key).rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(queue)
            envelope = self._envelope_or_none(raw, queue)
            if envelope is None:
                raise Empty()
            self.connection._deliver(envelope, queue)
            return True
        finally:
            # As kombu's own `_brpop_read`: its flag holds a connection or None, though kombu
            # declares it False.
            self._in_poll = None  # type: ignore[assignment]
            self._flush_brpop_reauth()

    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        # What kombu's own `_get` does, with an entry that is not an envelope skipped.
        with self.conn_or_acquire() as client:
            for priority in self.priority_steps:
                raw = client.rpop(self._q_for_pri(queue, priority))
                if raw:
                    self._maybe_update_queues_expire(client, queue)
                    envelope = self._envelope_or_none(raw, queue)
                    if envelope is not None:
                        return envelope
            self._maybe_update_queues_expire(client, queue)
            raise Empty()

    def _envelope_or_none(self, raw: bytes | str, queue: str) -> dict[str, Any] | None:
        try:
            return read_envelope(raw, self.codecs)
        except NotAnEnvelope as problem:
            # Never the entry itself: it may be large, or hold what someone should not log.
            logger.warning("Dropped an entry of Redis queue %r that is not a message: %s "
                           "(%d bytes)", queue, problem, len(raw))
            return None


class Transport(kombu_redis.Transport):
    Channel = Channel
