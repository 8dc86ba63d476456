# The two commands a newcomer needs: `make run` and `make test`. Both set everything up first.
VENV ?= .venv
IMAGE ?= localhost/signoff:ci
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install sysdeps lint typecheck imports unit image image-test bench clean

$(STAMP): pyproject.toml clients/python/pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e './clients/python' -e '.[dev,langgraph,mcp]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/signoff serve

lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

imports: $(STAMP)
	$(VENV)/bin/lint-imports

# bubblewrap and Podman's Docker-compatible API for the sandbox tests (installs only what is missing)
sysdeps:
	@bash .ci/sandbox-setup.sh > .sandbox-env

unit: $(STAMP) sysdeps
	. ./.sandbox-env && $(VENV)/bin/pytest -q -p no:cacheprovider

# the container image (Podman; from a local Debian base when no registry answers), then the tests
# that run it: the compose stack's essentials on this machine's PostgreSQL (docs/deploy.md)
image:
	bash deploy/build-image.sh $(IMAGE)

image-test: $(STAMP) sysdeps image
	. ./.sandbox-env && SIGNOFF_TEST_IMAGE=$(IMAGE) $(VENV)/bin/pytest -q -p no:cacheprovider -m image tests/deploy

test: lint typecheck imports unit image-test

# the engine's own figures, then Signoff next to LangGraph, DBOS and holdpoint in one run
bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/engine.py --json
	$(PY) bench/peers.py --json

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
