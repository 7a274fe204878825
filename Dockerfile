# The image docker-compose.yml runs for workers, beat and Flower.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml settings.toml README.md ./
COPY registry registry
COPY tasks tasks
COPY workers workers
RUN pip install --no-cache-dir . && useradd --create-home dmr
USER dmr
ENV DMR_SETTINGS=/app/settings.toml
CMD ["dmr", "worker"]
