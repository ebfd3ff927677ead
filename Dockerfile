# kschema: one image, one CLI. `kschema run` (the default) runs the operator, the webhook and the read API in
# one process; `kschema operator|webhook|api` run them apart. Built from the repository root.

# The base of both stages: any image with Python 3.11 at /usr/local/bin/python3.11 (the official slim image by
# default; a build with no access to a registry passes a locally made equivalent).
ARG BASE=python:3.11-slim

FROM ${BASE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A PEM CA to trust in this stage only, for builds behind a TLS-intercepting proxy. It never reaches the final
# image, which copies nothing but the venv from here.
ARG EXTRA_CA=""

WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./

# The dependencies first, pinned by constraints.txt, in a layer of their own that a code change leaves cached.
# The venv's interpreter link points at /usr/local/bin/python3.11, the same path in both stages, and pip
# compiles the bytecode here so nothing is written at run time.
RUN if [ -n "$EXTRA_CA" ]; then \
      printf '%s\n' "$EXTRA_CA" > /usr/local/share/ca-certificates/build-extra-ca.crt \
      && update-ca-certificates >/dev/null \
      && export PIP_CERT=/etc/ssl/certs/ca-certificates.crt; \
    fi \
 && python -m venv /opt/venv \
 && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && /opt/venv/bin/pip install --no-cache-dir --constraint constraints.txt --requirement /tmp/requirements.txt

COPY operator/ operator/

# Then the wheel, with pip itself removed from the venv the final stage ships.
RUN /opt/venv/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /dist . \
 && /opt/venv/bin/pip install --no-cache-dir --constraint constraints.txt /dist/kschema-*.whl \
 && /opt/venv/bin/pip uninstall --yes --quiet pip \
 && /opt/venv/bin/kschema --help >/dev/null


FROM ${BASE}

LABEL org.opencontainers.image.title="kschema" \
      org.opencontainers.image.description="A Kubernetes-native schema registry" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed numeric UID/GID, so Kubernetes can verify runAsNonRoot without resolving a user name.
# The chart's securityContext uses the same IDs.
RUN groupadd --system --gid 10001 kschema \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin kschema \
 && mkdir -p /var/lib/kschema \
 && chown 10001:10001 /var/lib/kschema

COPY --from=builder /opt/venv /opt/venv

# Read-only root filesystem: Python writes no bytecode, HOME and temporary files live in /tmp (an emptyDir in
# the chart), and the SQLite store lives on the data volume at /var/lib/kschema.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    KSCHEMA_STORE_URL=sqlite:////var/lib/kschema/registry.db

USER 10001:10001
WORKDIR /var/lib/kschema
VOLUME ["/var/lib/kschema"]

# 8080: operator health and metrics; 8081: read API (Confluent REST), health and metrics; 9443: webhook (HTTPS).
EXPOSE 8080 8081 9443

# kschema installs its own handlers for SIGTERM and SIGINT (also as PID 1, where a signal without a handler is
# ignored): either one stops the operator, the webhook and the read API together, and the process exits within
# a second. SIGTERM is what Kubernetes and container runtimes send by default.
STOPSIGNAL SIGTERM

ENTRYPOINT ["kschema"]
CMD ["run"]
