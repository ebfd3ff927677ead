# The local stand-in for the Dockerfile's public base (python:3.11-slim) where no registry is reachable:
# Debian's python3.11 on a debootstrap root, with the official image's /usr/local/bin links, so the project's
# Dockerfile builds unchanged on it. Built by `python -m kschema.devcluster.image` (make image).
ARG DEBIAN=kschema.local/debian:bookworm-slim
FROM ${DEBIAN}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3.11 python3.11-venv ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && ln -s /usr/bin/python3.11 /usr/local/bin/python3.11 \
 && ln -s python3.11 /usr/local/bin/python3 \
 && ln -s python3 /usr/local/bin/python \
 && python --version
ENV LANG=C.UTF-8
CMD ["python3"]
