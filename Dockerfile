# The image docker-compose.yml runs for workers, beat and Flower.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt settings.toml README.md ./
COPY inspector inspector
COPY registry registry
COPY tasks tasks
COPY workers workers
# Pinned versions (constraints.txt, refreshed by .ci/lock), the same the tests ran with.
RUN pip install --no-cache-dir -c constraints.txt '.[parquet]' && useradd --create-home dmr
USER dmr
ENV DMR_SETTINGS=/app/settings.toml
CMD ["dmr", "worker"]
