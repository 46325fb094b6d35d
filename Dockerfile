# The ostwatch stream worker for infra/docker-compose.yml (production-like: Kafka + ClickHouse
# servers through OSTWATCH_* settings). Not buildable on the development machines (no Docker).
#
# The image runs the package as users install it: the first stage builds the sdist and, from
# it, the wheel (package discovery and data as pyproject.toml declares them); the second
# installs only that wheel, with its dependencies, and holds no source tree.
# tests/integration/test_installed_package.py runs the same wheel from an empty directory.

FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir "build>=1.2"
# .dockerignore keeps the virtualenv, tests, benchmarks and local data out of the context.
COPY . .
RUN python -m build --outdir /dist .

FROM python:3.11-slim
COPY --from=build /dist/*.whl /tmp/dist/
RUN pip install --no-cache-dir /tmp/dist/*.whl && rm -rf /tmp/dist \
    && useradd --system --home /data ostwatch && mkdir -p /data && chown ostwatch /data
USER ostwatch
WORKDIR /data
ENV OSTWATCH_DATA_DIR=/data
CMD ["ostwatch", "worker"]
