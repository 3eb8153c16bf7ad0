# The vigil demo application: `vigil demo --no-stack` (the simulated agent application and its
# exporter on port 9464). docker-compose.yaml runs it beside Prometheus, Alertmanager and Grafana;
# on its own, with a token of your own for the webhook:
#
#   docker build -t vigil-demo .
#   openssl rand -hex 32 > webhook-token
#   docker run --rm -p 127.0.0.1:9464:9464 \
#     -v "$PWD/webhook-token:/run/secrets/vigil-token:ro" \
#     -e VIGIL_EXPORTER_WEBHOOK_BEARER_TOKEN_FILE=/run/secrets/vigil-token vigil-demo
#
# (or -e VIGIL_EXPORTER_WEBHOOK_BEARER_TOKEN=<token>). The image does not start an open receiver:
# it listens on all of the container's interfaces, so it refuses to start without webhook
# credentials (VIGIL_EXPORTER_REQUIRE_WEBHOOK_CREDENTIALS=true, the way the postgres image wants
# a password) and says which variable to set. Alertmanager sends the same token
# (authorization: {type: Bearer, credentials_file: ...}). /metrics and /api/* stay readable
# without credentials unless VIGIL_EXPORTER_API_BEARER_TOKEN (or API_USERNAME/API_PASSWORD) is
# set, which the exporter warns about at start; Prometheus then needs the same credentials.
#
# Stage 1 builds vigil's wheel from the repository (non-editable), stage 2 installs it with its
# dependencies into a clean image that runs as an unprivileged user.

FROM python:3.11.15-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /src
# Only what the wheel is made of (.dockerignore keeps everything else out of the context).
COPY pyproject.toml README.md ./
COPY lib/ lib/
COPY exporter/ exporter/
COPY alerts/ alerts/
COPY dashboards/ dashboards/
COPY examples/vigil_demo/ examples/vigil_demo/
RUN pip wheel --no-deps --wheel-dir /wheels .


FROM python:3.11.15-slim-bookworm

# Inside a container the exporter must listen on all of the container's interfaces for
# Prometheus (another container) to reach it; what the host exposes is decided by the published
# port (docker-compose.yaml publishes on 127.0.0.1 only). Outside containers vigil stays on
# loopback by default. Listening that wide, the webhook must have credentials (see the top).
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIGIL_EXPORTER_HOST=0.0.0.0 \
    VIGIL_EXPORTER_PORT=9464 \
    VIGIL_EXPORTER_STATE_DIR=/var/lib/vigil \
    VIGIL_EXPORTER_REQUIRE_WEBHOOK_CREDENTIALS=true

COPY --from=build /wheels/ /tmp/wheels/
# The wheel with its exporter extra (FastAPI, uvicorn): the demo serves the exporter. DL3013
# (pin versions) does not apply: this is the local wheel built above, named with a variable so
# the extra can be added to it.
# hadolint ignore=DL3013
RUN whl="$(echo /tmp/wheels/vigil-*.whl)" \
 && pip install "${whl}[exporter]" \
 && rm -rf /tmp/wheels \
 && groupadd --system --gid 10001 vigil \
 && useradd --system --uid 10001 --gid vigil --no-create-home --shell /usr/sbin/nologin vigil \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/vigil

# The webhook's durable alert store (SQLite); docker-compose.yaml keeps it in a volume, so
# alerts acknowledged to Alertmanager survive a restart of the container.
VOLUME ["/var/lib/vigil"]

USER 10001:10001
WORKDIR /tmp

EXPOSE 9464

# /healthz is the exporter's liveness route (always 200 while it serves); slim has no curl.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=2)"]

# No --duration: runs until stopped (SIGTERM from `docker compose down` ends it cleanly and
# prints the final report). --no-stack: compose provides Prometheus and Alertmanager.
CMD ["vigil", "demo", "--no-stack"]
