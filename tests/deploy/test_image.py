"""The container image (built from this checkout by ``make image``) and the compose stack's
essentials, run with Podman on this machine.

Compose itself is not run: no container registry answers here, so the ``postgres`` and ``caddy``
images cannot be pulled. The same Signoff containers run instead, with the options
deploy/compose.yml gives them (``tests.deploy._compose``) on the host's network, against the
machine's PostgreSQL (``SIGNOFF_TEST_POSTGRES_URL``), with FakeSlack as Slack: the one-shot
migration, two replicas on one database, a run started through one replica and decided
through the other, ``/readyz``, a graceful stop, and the sandbox inside the container.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from alembic.script import ScriptDirectory

from bot.blocks.checkpoint import APPROVE
from engine.model import RunStatus
from storage import create_store, schema_status
from storage._migrate import alembic_config
from tests.conftest import drop_pg_schema, pg_schema_url
from tests.deploy._compose import run_options
from tests.deploy._podman import podman, remove, start
from tests.e2e._process import free_port
from tests.fakes.slack import FakeSlack
from tests.reliability._cluster import GROUP, GROUP_MEMBER, MANAGER, Cluster, Server, healthy, write_project
from tests.scenario._harness import SECRET

# the newest revision: every migration added later moves it, so the test names it, not a number
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()

pytestmark = [pytest.mark.image, pytest.mark.postgres]
# a container's first start copies the image (vfs storage) on a loaded machine: be patient
START_S = 240.0


@pytest.fixture
def image() -> str:
    return os.environ["SIGNOFF_TEST_IMAGE"]


@pytest.fixture
def names() -> Iterator[list[str]]:
    """Names of the containers a test starts; each is removed at the end."""
    started: list[str] = []
    yield started
    for name in started:
        remove(name)


@pytest.fixture
def database() -> Iterator[str]:
    schema = f"signoff_img_{uuid.uuid4().hex[:10]}"
    yield pg_schema_url(schema)
    drop_pg_schema(schema)


def mounts(root: Path) -> list[str]:
    """The volumes deploy/compose.yml mounts: workflows, roles, and the shared workspaces."""
    workspaces = root / "workspaces"
    workspaces.mkdir(exist_ok=True)
    os.chown(workspaces, 10001, 10001)  # the image's user
    return [
        *("--volume", f"{root / 'workflows'}:/srv/signoff/workflows:ro"),
        *("--volume", f"{root / 'roles.yml'}:/srv/signoff/roles.yml:ro"),
        *("--volume", f"{workspaces}:/srv/signoff/workspaces"),
    ]


async def test_the_image_is_non_root_slim_and_serves_by_default(image: str) -> None:
    inspected = await podman("image", "inspect", image)
    assert inspected.returncode == 0, inspected.stderr
    found_image = json.loads(inspected.stdout)[0]
    config = found_image["Config"]
    assert config["User"] == "10001:10001"
    assert (config["Entrypoint"], config["Cmd"]) == (["signoff"], ["serve"])
    # Podman reports the (docker-format) health check beside the OCI config, Docker inside it
    check = config.get("Healthcheck") or found_image["Healthcheck"]
    assert "/healthz" in " ".join(check["Test"])
    assert "3000/tcp" in config["ExposedPorts"]
    probe = "for c in gcc cc make pip pip3 apt-get; do command -v $c; done; ls /opt/signoff/bin; id -u"
    found = await podman("run", "--rm", "--entrypoint", "sh", image, "-c", probe)
    lines = found.stdout.split()
    assert lines[-1] == "10001"
    assert not {"gcc", "cc", "make", "pip", "pip3"} & {Path(x).name for x in lines}, lines
    assert "/usr/bin/apt-get" in lines  # the base's package manager, not a build tool


@pytest.fixture
async def cluster(tmp_path: Path, database: str) -> AsyncIterator[Cluster]:
    write_project(tmp_path)
    async with FakeSlack(usergroups={GROUP: [GROUP_MEMBER]}) as fake, aiohttp.ClientSession() as http:
        store = create_store(database, migrate=False)
        try:
            yield Cluster(tmp_path, database, fake, http, store)
        finally:
            await store.close()


def secrets(cluster: Cluster, port: int) -> dict[str, str]:
    """What deploy/signoff.env holds, pointing at this test's database and FakeSlack."""
    return {
        "SIGNOFF_DATABASE_URL": cluster.database_url,
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": cluster.fake.base_url,
        "SIGNOFF_HOST": "127.0.0.1",
        "SIGNOFF_PORT": str(port),
    }


async def run_service(cluster: Cluster, image: str, names: list[str], service: str) -> tuple[int, str]:
    """Run a service of deploy/compose.yml to its end (the migration), or until it refuses."""
    name = f"signoff-test-{service}-{uuid.uuid4().hex[:6]}"
    names.append(name)
    options, command = run_options(service, secrets(cluster, free_port()))
    args = ["--rm", "--name", name, "--network", "host", *options, *mounts(cluster.root), image, *command]
    done = await podman("run", *args, timeout=START_S * 2)
    return done.returncode, done.stdout + done.stderr


async def start_replica(cluster: Cluster, image: str, names: list[str], service: str) -> Server:
    name = f"signoff-test-{service}-{uuid.uuid4().hex[:6]}"
    names.append(name)
    port = free_port()
    options, command = run_options(service, secrets(cluster, port))
    args = ["--rm", "--name", name, "--network", "host", *options, *mounts(cluster.root), image, *command]
    server = Server(name, port, start(args, cluster.root / f"{name}.log"), cluster.root / f"{name}.log")
    cluster.servers.append(server)
    await healthy(cluster.http, server, START_S)
    return server


async def readyz(cluster: Cluster, server: Server) -> dict[str, object] | None:
    async with cluster.http.get(f"http://127.0.0.1:{server.port}/readyz") as response:
        body: dict[str, object] = await response.json()
        return body if response.status == 200 else None


async def test_the_compose_stack_essentials(image: str, cluster: Cluster, names: list[str]) -> None:
    # before the migration service ran, a replica refuses the empty database
    code, output = await run_service(cluster, image, names, "signoff-1")
    assert code == 2, output
    assert f"needs revision {HEAD}: run `signoff db upgrade`" in output

    code, output = await run_service(cluster, image, names, "migrate")
    assert code == 0, output
    assert f"upgraded the database schema from empty to {HEAD}" in output
    assert schema_status(cluster.database_url).current == HEAD

    one = await start_replica(cluster, image, names, "signoff-1")
    two = await start_replica(cluster, image, names, "signoff-2")
    for server in (one, two):

        async def ready(server: Server = server) -> dict[str, object] | None:
            return await readyz(cluster, server)

        body = await cluster.until(ready, watch=server, timeout=START_S)
        assert body["checks"] == {"database": "ok", "schema": "ok", "scheduler": "ok", "slack": "ok"}

    assert await cluster.command(one, "run refund customer=ACME amount=250") == 200

    async def waiting() -> str | None:
        cps = await cluster.store.list_checkpoints(open_only=True)
        return cps[0].id if cps else None

    cp_id = await cluster.until(waiting, watch=one, timeout=120)
    assert await cluster.interact(two, cluster.click_payload(APPROVE, cp_id, MANAGER)) == 200

    async def succeeded() -> bool:
        [run] = await cluster.store.list_runs()
        return run.status is RunStatus.succeeded

    await cluster.until(succeeded, watch=two, timeout=120)
    [decision] = await cluster.store.list_decisions()
    assert (decision.actor, decision.action) == (MANAGER, "approve")

    # a graceful stop: SIGTERM, the replica drains and exits 0 well before the kill
    stopped = await podman("stop", "--time", "60", one.name)
    assert stopped.returncode == 0, stopped.stderr
    assert await asyncio.to_thread(one.proc.wait, 120) == 0, one.output()
    assert "shutting down: not ready" in one.output()
    assert await readyz(cluster, two) is not None, "the other replica carries on"


async def test_the_sandbox_works_inside_the_container(image: str, names: list[str]) -> None:
    name = f"signoff-test-sandbox-{uuid.uuid4().hex[:6]}"
    names.append(name)
    options, _ = run_options("signoff-1", {})
    security = [
        o
        for pair in zip(options[::2], options[1::2], strict=True)
        if pair[0] == "--security-opt"
        for o in pair
    ]
    done = await podman(
        "run", "--rm", "--name", name, *security, image, "skills", "test", "pii-redact", timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed, 0 failed" in done.stdout
    # without those options bubblewrap cannot make its namespaces: every fixture fails, clearly
    names.append(f"{name}-bare")
    bare = await podman(
        "run", "--rm", "--name", f"{name}-bare", image, "skills", "test", "pii-redact", timeout=600
    )
    assert bare.returncode == 2
    assert "0 passed, 3 failed" in bare.stdout


async def test_the_image_draws_graphs_and_can_export_traces(image: str) -> None:
    # the console's workflow and run graphs need Graphviz's dot; traces need the otel extra
    drawn = await podman("run", "--rm", image, "graph", "refund", "--format", "svg", timeout=300)
    assert drawn.returncode == 0, drawn.stdout + drawn.stderr
    assert "<svg" in drawn.stdout
    assert drawn.stdout.rstrip().endswith("</svg>")
    probe = "import opentelemetry.sdk.trace, opentelemetry.exporter.otlp.proto.http.trace_exporter"
    traced = await podman("run", "--rm", "--entrypoint", "python3", image, "-c", probe, timeout=300)
    assert traced.returncode == 0, traced.stderr
