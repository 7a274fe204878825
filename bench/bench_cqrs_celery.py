"""`cqrs.execute_command` (create) through Celery against `records.create`, same run, same
workers, same rows; RabbitMQ broker, PostgreSQL, Redis results. Goal: ratio >= 0.80.

One worker process with two pool children serves `registry`, `crud` and `cqrs`, so commands
also pay for the projector runs their trigger sends. Throughput is tasks per second from the
first send to the last result, the median of interleaved rounds.

    python -m bench.bench_cqrs_celery [--tasks 1000] [--rounds 3] [--redis-db 14]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tasks.client import RegistryClient

from .bench_celery import (
    Workers,
    open_client,
    postgres_database,
    rabbitmq_vhost,
    redis_database,
    throughput,
    wait_until_serving,
)
from .workload import DEFAULT_POSTGRES, Product, rows

GOAL = 0.80
RESULT_TIMEOUT = 120.0


def measure(client: RegistryClient, tasks: int, rounds: int) -> dict[str, float]:
    client.register_model("Product", Product, user_id="bench", user_role="admin").get(
        timeout=RESULT_TIMEOUT)
    client.register_model("ProductEvents", Product, "cqrs", user_id="bench",
                          user_role="admin").get(timeout=RESULT_TIMEOUT)

    def create(row: dict[str, Any]) -> Any:
        return client.create("Product", row, user_id="bench", user_role="admin")

    def command(row: dict[str, Any]) -> Any:
        return client.execute_command(
            {"type": "create", "model": "ProductEvents", "data": row}, "bench", "admin")

    data = rows(tasks)
    for send in (create, command):
        throughput(send, data[:100])
    creates, commands = [], []
    for _ in range(rounds):
        creates.append(throughput(create, data))
        commands.append(throughput(command, data))
    create_rate, command_rate = statistics.median(creates), statistics.median(commands)
    return {"create": create_rate, "command": command_rate, "ratio": command_rate / create_rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--redis-db", type=int, default=14, help="results database")
    args = parser.parse_args()
    with ExitStack() as stack, tempfile.TemporaryDirectory() as logs:
        database_url = stack.enter_context(postgres_database(args.postgres))
        broker_url = stack.enter_context(rabbitmq_vhost())
        results_url = stack.enter_context(redis_database(args.redis_db))
        client, env = open_client(stack, database_url, broker_url, results_url)
        # The benchmark's worker also consumes queue `cqrs`.
        workers = Workers("1x2", env, Path(logs), queues="registry,crud,cqrs", name="benchcqrs")
        stack.callback(workers.stop)
        workers.start()
        wait_until_serving(client, workers)
        figures = measure(client, args.tasks, args.rounds)
    verdict = "ok" if figures["ratio"] >= GOAL else "BELOW GOAL"
    print(f"records.create        {figures['create']:8.0f} tasks/s")
    print(f"cqrs.execute_command  {figures['command']:8.0f} tasks/s   ratio "
          f"{figures['ratio']:.2f}   goal >= {GOAL:.2f}  {verdict}")


if __name__ == "__main__":
    main()
