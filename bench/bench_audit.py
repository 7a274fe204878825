"""The audit pipeline on PostgreSQL: compression, compaction throughput, and its cost to writes.

In one run, on a fresh database:
1. 100,000 audit entries made by real CRUD (`create`, then three `update`s per record, from
   several threads through the in-process registry), with compaction paused;
2. compaction of all of them into blocks (entries/s), with the configured codec;
3. the blocks' size against the same entries as raw JSON (`AuditEntry.model_dump_json()`,
   what the specification stores uncompressed) and against the specification's per-entry
   zlib plus base64; zstd's figure on the same batches for comparison;
4. `create` throughput from several threads with an audit compactor process running (on the
   beat interval, and ten times as often) against the same with compaction paused,
   interleaved.

Goals: ratio >= 5x raw JSON; compaction >= 50,000 entries/s; compaction costs create
throughput <= 10%.

    python -m bench.bench_audit [--entries 100000] [--threads 4] [--phase-seconds 12]
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import multiprocessing
import statistics
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from multiprocessing.synchronize import Event
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field

from registry import DynamicModelRegistry, Settings
from registry.audit.blocks import split_lines
from registry.audit.codecs import codec_for
from registry.tables import audit_blocks

from .workload import DEFAULT_POSTGRES

GOALS = {"ratio": 5.0, "compaction": 50_000.0, "cost": 0.10}
UPDATES_PER_RECORD = 3


class Product(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    sku: str
    price: float = Field(gt=0)
    stock: int = Field(ge=0)
    description: str = ""
    is_active: bool = True
    tags: list[str] = []


def product(i: int) -> dict[str, Any]:
    return {
        "name": f"Product {i}", "sku": f"SKU-{i:07d}", "price": round(5 + (i * 7.31) % 500, 2),
        "stock": i % 120, "description": f"A sturdy product, batch {i % 50}",
        "is_active": i % 3 != 0, "tags": ["catalog", f"group-{i % 12}"],
    }


def open_registry(url: str) -> DynamicModelRegistry:
    return DynamicModelRegistry(url, settings=Settings.load())


# -- 1. entries by real CRUD ---------------------------------------------------------------


def make_entries(url: str, total: int, threads: int) -> float:
    """Create records and update each three times, from `threads` threads; returns seconds."""
    records = total // (1 + UPDATES_PER_RECORD)
    shares = [range(t, records, threads) for t in range(threads)]
    started = time.perf_counter()
    run_threads([functools.partial(_crud, url, share) for share in shares])
    return time.perf_counter() - started


def _crud(url: str, numbers: range) -> None:
    registry = open_registry(url)
    for i in numbers:
        record = registry.create("Product", product(i), f"user-{i % 40}", "admin")
        for step in range(1, UPDATES_PER_RECORD + 1):
            changes = {"price": round(record["price"] + step, 2), "stock": (i + step) % 120}
            registry.update("Product", record["id"], changes, f"user-{(i + step) % 40}", "admin")
    registry.close()


def run_threads(bodies: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=body) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# -- 2. compaction -------------------------------------------------------------------------


def compact_all(registry: DynamicModelRegistry) -> tuple[int, float]:
    """Compact every pending entry; returns (entries, seconds)."""
    entries, started = 0, time.perf_counter()
    while True:
        done = registry.audit_logger.compact(force=True)
        entries += done["entries"]
        if done["entries"] == 0:
            return entries, time.perf_counter() - started


# -- 3. sizes ------------------------------------------------------------------------------


def sizes(registry: DynamicModelRegistry) -> dict[str, float]:
    started = time.perf_counter()
    entries = registry.audit_logger.history("Product")
    read_seconds = time.perf_counter() - started
    raw = [entry.model_dump_json().encode() for entry in entries]
    spec = sum(len(base64.b64encode(zlib.compress(item))) for item in raw)
    with registry.database.read() as conn:
        rows = conn.execute(sa.select(audit_blocks.c.codec, audit_blocks.c.payload,
                                      audit_blocks.c.key_filter)).all()
    stored = sum(len(row.payload) for row in rows)
    index = sum(len(row.key_filter) for row in rows)
    zstd = codec_for("zstd")
    plain = [codec_for(row.codec).decompress(row.payload) for row in rows]
    zstd_started = time.perf_counter()
    zstd_stored = sum(len(zstd.compress(b"".join(line + b"\n" for line in split_lines(block))))
                      for block in plain)
    zstd_seconds = time.perf_counter() - zstd_started
    raw_bytes = sum(map(len, raw))
    return {
        "entries": len(entries), "blocks": len(rows), "read_seconds": read_seconds,
        "raw_json": raw_bytes, "json_lines": sum(map(len, plain)), "stored": stored,
        "index": index, "spec": spec, "zstd": zstd_stored, "zstd_seconds": zstd_seconds,
    }


def hash_costs(registry: DynamicModelRegistry, limit: int = 20_000) -> dict[str, float]:
    """Microseconds per entry body: the keyed hash that create signs and compaction checks,
    against the plain sha256 it replaced, over the run's own entries, best of three."""
    with registry.database.read() as conn:
        rows = conn.execute(sa.select(audit_blocks.c.codec, audit_blocks.c.payload)).all()
    bodies = [line for row in rows
              for line in split_lines(codec_for(row.codec).decompress(row.payload))][:limit]
    keys = registry.audit_logger.keys
    signed = [keys.sign(body) for body in bodies]

    def per_entry(work: Callable[[], object]) -> float:
        best = min(_timed(work) for _ in range(3))
        return best / len(bodies) * 1e6

    return {
        "sha256": per_entry(lambda: [hashlib.sha256(b).hexdigest() for b in bodies]),
        "sign": per_entry(lambda: [keys.sign(b) for b in bodies]),
        "check": per_entry(
            lambda: [keys.matches(b, h) for b, h in zip(bodies, signed, strict=True)]
        ),
    }


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def verify_costs(registry: DynamicModelRegistry) -> dict[str, Any]:
    """Seconds of `verify` over the chain and the histories alone, and of `verify_audit`,
    which also folds each history and compares it with every stored row."""
    started = time.perf_counter()
    chain = registry.audit_logger.verify()
    chain_seconds = time.perf_counter() - started
    started = time.perf_counter()
    rows = registry.verify_audit()
    return {"chain": chain, "chain_seconds": chain_seconds, "rows": rows,
            "rows_seconds": time.perf_counter() - started}


# -- 4. create throughput with and without compaction --------------------------------------


def compactor(url: str, interval: float, ready: Event, stop: Event) -> None:
    """The audit worker's work in its own process: compact, then wait `interval` seconds."""
    registry = open_registry(url)
    registry.audit_logger.compact()
    ready.set()  # started and connected: the measured phase starts now
    while not stop.is_set():
        registry.audit_logger.compact()
        stop.wait(interval)
    registry.close()


def create_rate(url: str, threads: int, seconds: float) -> float:
    counts = [0] * threads
    deadline = time.perf_counter() + seconds

    def body(slot: int) -> None:
        registry = open_registry(url)
        while time.perf_counter() < deadline:
            registry.create("Product", product(slot * 1_000_000 + counts[slot]), "bench", "admin")
            counts[slot] += 1
        registry.close()

    started = time.perf_counter()
    run_threads([functools.partial(body, slot) for slot in range(threads)])
    return sum(counts) / (time.perf_counter() - started)


def rate_with_compactor(url: str, threads: int, seconds: float, interval: float | None) -> float:
    if interval is None:
        return create_rate(url, threads, seconds)
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Event(), context.Event()
    process = context.Process(target=compactor, args=(url, interval, ready, stop))
    process.start()
    ready.wait(timeout=60)
    try:
        return create_rate(url, threads, seconds)
    finally:
        stop.set()
        process.join(timeout=60)


def throughput_phases(url: str, threads: int, seconds: float, interval: float) -> dict[str, float]:
    # "eager" compacts ten times as often as the schedule: about as soon as a batch fills.
    modes: dict[str, float | None] = {"paused": None, "scheduled": interval,
                                      "eager": interval / 10}
    rates: dict[str, list[float]] = {mode: [] for mode in modes}
    for _ in range(2):  # interleaved, so drift on the machine hits every mode alike
        for mode, every in modes.items():
            rates[mode].append(rate_with_compactor(url, threads, seconds, every))
    return {mode: statistics.median(found) for mode, found in rates.items()}


# -- the run -------------------------------------------------------------------------------


def with_database(admin_url: str, body: Callable[[str], None]) -> None:
    name = f"dmr_bench_audit_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        body(sa.make_url(admin_url).set(database=name).render_as_string(False))
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def verdict(ok: bool) -> str:
    return "ok" if ok else "BELOW GOAL"


def run(url: str, args: argparse.Namespace) -> None:
    registry = open_registry(url)
    registry.register_model("Product", Product)
    audit = registry.audit_logger.compaction_policy()
    print(f"codec {audit.codec.name} level {audit.codec.level}, batch {audit.batch_size}, "
          f"{args.threads} writer threads, PostgreSQL")

    seconds = make_entries(url, args.entries, args.threads)
    pending = registry.audit_logger.stats()["pending"]
    print(f"made {pending} entries by CRUD in {seconds:.1f} s ({pending / seconds:.0f} ops/s)")

    compacted, took = compact_all(registry)
    rate = compacted / took
    print(f"compaction: {compacted} entries in {took:.2f} s = {rate:,.0f} entries/s  "
          f"goal >= {GOALS['compaction']:,.0f}  {verdict(rate >= GOALS['compaction'])}")

    size = sizes(registry)
    ratio, spec_ratio = size["raw_json"] / size["stored"], size["raw_json"] / size["spec"]
    print(f"history read of all {size['entries']:.0f} entries from {size['blocks']:.0f} blocks: "
          f"{size['read_seconds']:.2f} s")
    print(f"raw JSON {size['raw_json']:,.0f} B; JSON lines in blocks {size['json_lines']:,.0f} B")
    print(f"blocks ({audit.codec.name}) {size['stored']:,.0f} B: {ratio:.2f}x raw JSON  "
          f"goal >= {GOALS['ratio']:.0f}x  {verdict(ratio >= GOALS['ratio'])}; "
          f"with key filters {size['raw_json'] / (size['stored'] + size['index']):.2f}x")
    print(f"spec per-entry zlib+base64 {size['spec']:,.0f} B: {spec_ratio:.2f}x raw JSON")
    print(f"same batches with zstd {size['zstd']:,.0f} B: {size['raw_json'] / size['zstd']:.2f}x "
          f"raw JSON (compress only: {size['entries'] / size['zstd_seconds']:,.0f} entries/s)")

    costs = hash_costs(registry)
    print(f"entry hash per entry: keyed sign {costs['sign']:.2f} us, keyed check "
          f"{costs['check']:.2f} us; plain sha256 (before keys) {costs['sha256']:.2f} us")

    rates = throughput_phases(url, args.threads, args.phase_seconds, args.interval)
    for mode in ("scheduled", "eager"):
        cost = 1 - rates[mode] / rates["paused"]
        print(f"create/s paused {rates['paused']:.0f}, compaction {mode} {rates[mode]:.0f}: "
              f"cost {cost:+.1%}  goal <= {GOALS['cost']:.0%}  {verdict(cost <= GOALS['cost'])}")
    checked = verify_costs(registry)
    report = checked["chain"]
    print(f"verify after the run: ok={report['ok']}, {report['blocks']} blocks, "
          f"{report['entries']} entries, {report['pending']} pending, "
          f"{checked['chain_seconds']:.2f} s; with every row compared to its folded history: "
          f"ok={checked['rows']['ok']}, {checked['rows']['records']} records, "
          f"{checked['rows_seconds']:.2f} s")
    registry.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--phase-seconds", type=float, default=12.0)
    parser.add_argument("--interval", type=float, default=None,
                        help="seconds between scheduled compactions "
                        "(default: audit.compact_interval_seconds)")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    args = parser.parse_args()
    if args.interval is None:
        args.interval = Settings.load().audit.compact_interval_seconds
    with_database(args.postgres, lambda url: run(url, args))


if __name__ == "__main__":
    main()
