# syntax=docker/dockerfile:1
# Signoff's container image: `signoff serve` as a non-root user, with bubblewrap for the sandbox.
#
#   docker build -t signoff .              # FROM python:3.11-slim
#   deploy/build-image.sh                  # the same with Podman, or from a local base when no registry answers
#
# BASE must be a Debian bookworm image with python3 (3.11 or newer) and its venv module, such as
# the official python:3.11-slim; deploy/build-image.sh builds an equivalent one with mmdebstrap.
# docs/deploy.md explains the options the sandbox needs when the container runs.
ARG BASE=python:3.11-slim

# ---------------------------------------------------------------- build: a virtualenv with Signoff
FROM ${BASE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
# the dependencies first, from pyproject.toml alone, so that a code change reuses this layer
COPY pyproject.toml README.md ./
RUN python3 -m venv /opt/signoff \
 && mkdir -p bot engine skills storage \
 && touch bot/__init__.py engine/__init__.py skills/__init__.py storage/__init__.py \
 && /opt/signoff/bin/pip install --quiet '.[otel]' \
 && /opt/signoff/bin/pip uninstall --quiet --yes signoff \
 && rm -rf build bot engine skills storage ./*.egg-info
COPY . .
# the package itself; then pip and setuptools go: nothing installs anything at run time
RUN /opt/signoff/bin/pip install --quiet --no-deps . \
 && /opt/signoff/bin/pip uninstall --quiet --yes pip setuptools \
 && mkdir -p /srv/signoff/skills \
 && cp -r workflows roles.yml manifest.yml /srv/signoff/ \
 && cp -r skills/library /srv/signoff/skills/

# ---------------------------------------------------------------- runtime: no compiler, no pip
FROM ${BASE}
# bubblewrap runs the code and skill nodes; Graphviz's dot draws the console's workflow and run
# graphs; a fixed uid so that volumes can be prepared for it
RUN apt-get update \
 && apt-get install --yes --no-install-recommends bubblewrap graphviz \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
 && useradd --system --uid 10001 --user-group --home-dir /srv/signoff --shell /usr/sbin/nologin signoff \
 && install -d -o signoff -g signoff /srv/signoff /srv/signoff/data /srv/signoff/workspaces
COPY --from=build /opt/signoff /opt/signoff
# the bundled examples: mount your own over /srv/signoff/workflows, roles.yml and skills/library
COPY --from=build /srv/signoff /srv/signoff
WORKDIR /srv/signoff
ENV PATH=/opt/signoff/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SIGNOFF_HOST=0.0.0.0 \
    SIGNOFF_PORT=3000 \
    SIGNOFF_DATABASE_URL=sqlite:////srv/signoff/data/signoff.db \
    SIGNOFF_WORKSPACE_DIR=/srv/signoff/workspaces
USER 10001:10001
EXPOSE 3000
# liveness only (the process answers); load balancers should use /readyz
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SIGNOFF_PORT', '3000'), timeout=2)"]
ENTRYPOINT ["signoff"]
CMD ["serve"]
