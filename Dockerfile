# The adflywheel service: the lean install (no video stack; loop 4 reports itself off) from the
# hashed lock, then the project itself without dependencies, run as a non-root user.
#   docker build -t adflywheel .
#   docker run --rm -p 8000:8000 -v adflywheel-data:/data adflywheel         # serve
#   docker run --rm -v adflywheel-data:/data adflywheel db upgrade           # any CLI command
# docs/deploy.md: the settings, compose.yaml with PostgreSQL and Redis.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Every wheel the service needs, each checked against its hash in the lock.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock
# Then the project alone: its dependencies are all in the lock.
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-deps .

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="adflywheel" \
      org.opencontainers.image.description="Self-learning ad flywheel for video ads on Meta"
# The service listens on every interface of the container (the default is 127.0.0.1) and keeps
# its embedded state (SQLite when no database is given, model and index files) in the volume.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ADFLYWHEEL_HOST=0.0.0.0 \
    ADFLYWHEEL_PORT=8000 \
    ADFLYWHEEL_DATA_DIR=/data \
    ADFLYWHEEL_LOG_FORMAT=json
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /data \
        --shell /usr/sbin/nologin adflywheel
COPY --from=build /opt/venv /opt/venv
COPY deploy/docker/healthcheck.py /usr/local/bin/adflywheel-healthcheck
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/usr/local/bin/adflywheel-healthcheck"]
ENTRYPOINT ["adflywheel"]
CMD ["serve"]
