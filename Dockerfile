# The ostwatch stream worker for infra/docker-compose.yml (production-like: Kafka + ClickHouse
# servers through OSTWATCH_* settings). Not buildable on the development machines (no Docker).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ostwatch ostwatch
COPY schemas schemas
COPY producers producers
COPY streams streams
COPY sinks sinks
COPY dashboards dashboards
COPY infra infra
RUN pip install --no-cache-dir . && useradd --system --home /data ostwatch && mkdir -p /data \
    && chown ostwatch /data
USER ostwatch
ENV OSTWATCH_DATA_DIR=/data
CMD ["ostwatch", "worker"]
