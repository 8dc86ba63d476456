"""Fixtures for end-to-end tests: a real process container on SQLite in a temporary folder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import Settings
from bot.wiring import Container, build
from engine.model import Delivery
from engine.ports import SendResult


class RecordingSender:
    """A Sender that keeps every delivery it is asked to send and reports success."""

    def __init__(self) -> None:
        self.sent: list[Delivery] = []

    async def send(self, delivery: Delivery, related: list[Delivery]) -> SendResult:
        """Record the delivery."""
        self.sent.append(delivery)
        return SendResult(ok=True, channel_ref="local", message_ts=str(len(self.sent)))


@pytest.fixture
def workflows_dir(tmp_path: Path) -> Path:
    """An empty workflows folder; modules override this fixture to write their own files."""
    folder = tmp_path / "workflows"
    folder.mkdir()
    return folder


@pytest.fixture
def sender() -> RecordingSender:
    """The sender the container's outbox uses."""
    return RecordingSender()


@pytest.fixture
async def container(tmp_path: Path, workflows_dir: Path, sender: RecordingSender) -> AsyncIterator[Container]:
    """A wired process on a fresh SQLite file, without a sandbox; closed at teardown."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/s.db",
        workflows_dir=workflows_dir,
        skills_dir=tmp_path / "none",
        roles_file=tmp_path / "roles.yml",
        workspace_dir=tmp_path / "workspaces",
        secret_key_file=tmp_path / "secret_key",
    )
    built = await build(settings, sender=sender, with_sandbox=False)
    yield built
    await built.close()
