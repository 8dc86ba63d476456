"""The ``InstallationStore`` port in plain Python, mixed into ``InMemoryRunStore`` (private)."""

from __future__ import annotations

from engine.installations import SlackInstallation
from engine.ports import AuditDraft

__all__ = ["InMemoryInstallations"]


class InMemoryInstallations:
    """Slack installations in a dictionary keyed by team id."""

    _installs: dict[str, SlackInstallation]

    def _append(self, drafts: list[AuditDraft]) -> None:
        raise NotImplementedError

    def _installations(self) -> dict[str, SlackInstallation]:
        found: dict[str, SlackInstallation] | None = getattr(self, "_installs", None)
        if found is None:
            found = self._installs = {}
        return found

    async def save_installation(self, installation: SlackInstallation, audit: list[AuditDraft]) -> None:
        """Insert or replace the installation of ``installation.team_id`` (keeping the first install time)."""
        known = self._installations().get(installation.team_id)
        if known is not None:
            installation = installation.model_copy(update={"installed_at": known.installed_at})
        self._installations()[installation.team_id] = installation
        self._append(audit)

    async def get_installation(self, team_id: str) -> SlackInstallation | None:
        """The installation of one workspace, if any."""
        return self._installations().get(team_id)

    async def list_installations(self) -> list[SlackInstallation]:
        """Every installation, by team id."""
        return [self._installations()[k] for k in sorted(self._installations())]

    async def delete_installation(self, team_id: str, audit: list[AuditDraft]) -> bool:
        """Delete one workspace's installation; False when there was none."""
        if self._installations().pop(team_id, None) is None:
            return False
        self._append(audit)
        return True
