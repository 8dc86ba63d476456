"""The deployment files, checked without building anything: deploy/compose.yml against the
Compose Specification's JSON schema and the stack's rules, the Caddyfile, the env example and
the Dockerfile's shape.

``compose-spec.json`` is ``schema/compose-spec.json`` of github.com/compose-spec/compose-spec at
170098ba07d9f53c383a41bfd4c5166b0a4529a6 (Apache-2.0), the schema ``docker compose`` validates with.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from jsonschema import Draft7Validator

from bot.doctor import variables
from tests.deploy._compose import REPO, compose, service

SPEC = json.loads((Path(__file__).with_name("compose-spec.json")).read_text())
REPLICAS = ["signoff-1", "signoff-2"]


def test_compose_file_follows_the_compose_specification() -> None:
    errors = sorted(Draft7Validator(SPEC).iter_errors(compose()), key=lambda e: list(e.path))
    assert [f"{list(e.path)}: {e.message}" for e in errors] == []


def test_migrations_run_once_before_the_replicas() -> None:
    migrate = service("migrate")
    assert migrate["command"] == ["db", "upgrade"]
    assert migrate["restart"] == "no"
    for name in REPLICAS:
        spec = service(name)
        assert spec["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert spec["depends_on"]["postgres"] == {"condition": "service_healthy"}
        assert spec["environment"]["SIGNOFF_AUTO_MIGRATE"] == "off", "replicas never migrate"
        assert "command" not in spec, "the image's default: signoff serve"


def test_replicas_share_the_image_secrets_and_run_workspaces() -> None:
    specs = [service(name) for name in [*REPLICAS, "migrate"]]
    assert len({s["image"] for s in specs}) == 1
    for spec in specs:
        assert spec["env_file"] == ["signoff.env"]
        assert "workspaces:/srv/signoff/workspaces" in spec["volumes"]
        grace = float(spec["environment"]["SIGNOFF_SHUTDOWN_GRACE"])
        assert float(spec["stop_grace_period"].removesuffix("s")) > grace
        assert "seccomp=unconfined" in spec["security_opt"]
    text = (REPO / "deploy" / "compose.yml").read_text()
    assert not re.search(r"xox[bpa]-|PASSWORD:\s*\S", text), "secrets belong in the env file"
    assert service("postgres")["env_file"] == ["signoff.env"]


def test_the_proxy_sends_traffic_to_ready_replicas_only() -> None:
    caddyfile = (REPO / "deploy" / "Caddyfile").read_text()
    upstreams = re.search(r"reverse_proxy ([^{]+)\{", caddyfile)
    assert upstreams is not None
    assert upstreams.group(1).split() == [f"{name}:3000" for name in REPLICAS]
    assert re.search(r"^\s*health_uri /readyz$", caddyfile, re.MULTILINE)
    # the probes name failing dependencies: not for the outside
    assert re.search(r"@probes path /healthz /readyz\s+respond @probes 404", caddyfile)
    assert service("proxy")["depends_on"] == REPLICAS


def test_env_example_names_only_settings_signoff_or_the_stack_reads() -> None:
    known = {v.name for v in variables()} | {"POSTGRES_PASSWORD", "SIGNOFF_SITE"}
    lines = (REPO / "deploy" / "signoff.env.example").read_text().splitlines()
    names = [line.split("=", 1)[0] for line in lines if line and not line.startswith("#")]
    assert set(names) <= known, set(names) - known
    assert "deploy/signoff.env" in (REPO / ".gitignore").read_text().splitlines()


def test_dockerfile_is_multi_stage_non_root_and_serves() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert text.count("\nFROM ${BASE}") == 2
    assert "ARG BASE=python:3.11-slim" in text
    final = text.rsplit("\nFROM ", 1)[1]
    assert re.search(r"^USER 10001:10001$", final, re.MULTILINE)
    assert 'ENTRYPOINT ["signoff"]' in final
    assert 'CMD ["serve"]' in final
    assert "/healthz" in final.split("HEALTHCHECK", 1)[1]
    assert "pip install" not in final, "nothing is built in the final stage"
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    assert "*" in ignored, "the context is an allow list"
