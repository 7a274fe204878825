"""CPU time by component while a workload runs, read from /proc (Linux).

On a small shared machine the producer, the workers, the broker, Redis and PostgreSQL all
take turns on the same cores, so tasks per second alone cannot say what limits a workload.
`CpuMeter` snapshots the CPU seconds of each group of processes before and after a
measurement and reports milliseconds of CPU per task for each; `others` is whatever else the
machine was busy with meanwhile (other users' work makes every figure lower).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["GROUPS", "CpuMeter"]

GROUPS = ("producer", "workers", "broker", "redis", "postgres", "others")
_TICKS = os.sysconf("SC_CLK_TCK")
_PROC = Path("/proc")


class CpuMeter:
    """CPU milliseconds per task, by group, summed over every measurement of a label.

    `worker_groups` gives the process group ids of the workers (their pool children share
    them); `database` is the PostgreSQL database whose backends count as `postgres`;
    `broker_comm` is the broker's process name (`beam.smp` for RabbitMQ, `redis-server`).
    """

    def __init__(
        self, worker_groups: Callable[[], set[int]], database: str, broker_comm: str
    ) -> None:
        self.worker_groups = worker_groups
        self.database = database
        self.broker_comm = broker_comm
        self.cpu_ms: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(GROUPS, 0.0))
        self.tasks: dict[str, int] = defaultdict(int)

    @contextmanager
    def measure(self, label: str, tasks: int) -> Iterator[None]:
        before, machine_before = self._snapshot(), _machine_busy()
        yield
        after, machine_after = self._snapshot(), _machine_busy()
        ours = 0.0
        for group in GROUPS[:-1]:
            spent = sum(after[group].get(pid, 0.0) - start
                        for pid, start in before[group].items() if pid in after[group])
            spent += sum(cpu for pid, cpu in after[group].items() if pid not in before[group])
            self.cpu_ms[label][group] += spent * 1000
            ours += spent
        self.cpu_ms[label]["others"] += max(0.0, machine_after - machine_before - ours) * 1000
        self.tasks[label] += tasks

    def per_task(self, label: str) -> dict[str, float]:
        return {group: ms / self.tasks[label] for group, ms in self.cpu_ms[label].items()}

    def _snapshot(self) -> dict[str, dict[int, float]]:
        groups: dict[str, dict[int, float]] = {group: {} for group in GROUPS}
        workers = self.worker_groups()
        for pid, comm, pgrp, cpu in _processes():
            group = self._group_of(pid, comm, pgrp, workers)
            if group is not None:
                groups[group][pid] = cpu
        return groups

    def _group_of(self, pid: int, comm: str, pgrp: int, workers: set[int]) -> str | None:
        if pid == os.getpid():
            return "producer"
        if pgrp in workers:
            return "workers"
        if comm == self.broker_comm:
            return "broker"
        if comm.startswith("redis-server"):
            return "redis"
        if comm.startswith("postgres") and f" {self.database} " in _cmdline(pid):
            return "postgres"
        return None


def _processes() -> Iterator[tuple[int, str, int, float]]:
    """(pid, name, process group, CPU seconds) of every process still readable."""
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        # After the name: state, ppid, pgrp, ..., utime (12th), stime (13th).
        yield int(entry.name), comm, int(fields[2]), (int(fields[11]) + int(fields[12])) / _TICKS


def _cmdline(pid: int) -> str:
    try:
        return (_PROC / str(pid) / "cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def _machine_busy() -> float:
    """CPU seconds the whole machine spent busy (not idle or waiting for I/O) since boot."""
    values = [int(v) for v in (_PROC / "stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / _TICKS
