# The two commands a newcomer needs: `make run` and `make test`. Both set everything up first.
VENV ?= .venv
IMAGE ?= localhost/signoff:ci
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install sysdeps lint typecheck imports unit image image-test bench clean

# the first `make run` (or `make test`) sets up .venv and says what it is doing while it does
$(STAMP): pyproject.toml clients/python/pyproject.toml
	@echo "==> setting up $(VENV): Python packages for Signoff (a few minutes the first time)"
	@test -x $(PY) || { echo "==> creating the virtual environment $(VENV)"; python3 -m venv $(VENV); }
	@echo "==> updating pip"
	@$(PY) -m pip install --quiet --upgrade pip
	@echo "==> installing Signoff, its client and their dependencies (pip lists each package)"
	$(PY) -m pip install --progress-bar on -e './clients/python' -e '.[dev,langgraph,mcp]'
	@touch $(STAMP)
	@echo "==> $(VENV) is ready"

install: $(STAMP)

run: $(STAMP)
	@echo "==> starting Signoff (signoff serve; Ctrl-C stops it)"
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

# the engine's own figures, Signoff next to LangGraph, DBOS and holdpoint in one run, then the
# floor under them (the same writes straight to the drivers, Bolt acking and nothing else)
bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/engine.py --json
	$(PY) bench/peers.py --json
	$(PY) bench/floor.py --json

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
