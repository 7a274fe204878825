"""The event store on PostgreSQL with concurrent writers: a reader that follows positions
never skips an event that commits after a higher position was already visible."""

from __future__ import annotations

import datetime
import random
import threading
import time
from collections.abc import Iterator

import pytest

from registry.cqrs.events import Event
from registry.cqrs.store import EventStore
from registry.database import Database

pytestmark = pytest.mark.integration

WRITERS = 4
READERS = 2
EVENTS_PER_WRITER = 120


@pytest.fixture
def store(postgres_url: str) -> Iterator[EventStore]:
    database = Database(postgres_url, pool_size=WRITERS + READERS + 2)
    database.create_catalog()
    yield EventStore(database)
    database.dispose()


def event(writer: int, n: int) -> Event:
    return Event(
        model="Item",
        aggregate_id=f"w{writer}-{n}",
        version=1,
        type="created",
        data={"state": {"n": n}},
        schema_version=1,
        timestamp=datetime.datetime.now(datetime.UTC),
    )


def test_readers_following_positions_skip_nothing_under_four_writers(store: EventStore) -> None:
    committed: list[int] = []
    lock = threading.Lock()
    writing = threading.Event()
    writing.set()

    def write(writer: int) -> None:
        rng = random.Random(writer)
        for n in range(EVENTS_PER_WRITER):
            with store.database.write() as conn:
                [stored] = store.append(conn, [event(writer, n)])
                # Hold the transaction open after taking a position, so that later positions
                # of other writers commit first: the window a naive reader falls into.
                time.sleep(rng.uniform(0, 0.006))
            with lock:
                committed.append(stored.position or 0)

    seen: list[list[int]] = [[] for _ in range(READERS)]

    def read(reader: int) -> None:
        after = 0
        while True:
            done = not writing.is_set()
            batch, _head = store.read_after(after, 7)
            for item in batch:
                assert item.position is not None and item.position > after
                seen[reader].append(item.position)
                after = item.position
            if done and not batch:
                return

    threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    readers = [threading.Thread(target=read, args=(r,)) for r in range(READERS)]
    for thread in readers + threads:
        thread.start()
    for thread in threads:
        thread.join()
    writing.clear()
    for thread in readers:
        thread.join()

    assert len(committed) == WRITERS * EVENTS_PER_WRITER
    for positions in seen:
        assert positions == sorted(committed), "a reader skipped or reordered an event"


def test_a_naive_reader_does_skip_late_commits(store: EventStore) -> None:
    """The test above could fail: reading up to the visible maximum, without the lock, does
    pass over a lower position that commits afterwards."""
    database = store.database
    with database.engine.connect() as slow:
        transaction = slow.begin()
        [low] = store.append(slow, [event(0, 0)])
        with database.write() as fast:
            # Another writer cannot wait on our shared lock, so it commits a higher position.
            [high] = store.append(fast, [event(1, 0)])
        with database.read() as reader:
            visible = store.last_position(reader)
            naive = store.read(reader, 0, visible, 100)
        transaction.commit()
    assert low.position is not None and high.position is not None
    assert low.position < high.position
    assert [e.position for e in naive] == [high.position]  # the naive reader skipped `low`
    events, head = store.read_after(0, 100)
    assert [e.position for e in events] == [low.position, high.position]
    assert head == high.position
