"""Slack workspaces that installed Signoff (the OAuth v2 install flow, multi-workspace mode).

The engine only keeps them: the tokens it stores are ciphertext (the Slack surface encrypts
them before they reach a store, docs/security.md), and it never calls Slack. One installation
per workspace, keyed by ``team_id`` (the enterprise id for an org-wide install); installing
again replaces it, an ``app_uninstalled`` or ``tokens_revoked`` event deletes it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from engine.ports import AuditDraft

__all__ = ["InstallationStore", "SlackInstallation"]


class SlackInstallation(BaseModel):
    """One workspace's installation; every ``*_token`` field holds ciphertext."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    team_id: str
    team_name: str | None = None
    enterprise_id: str | None = None
    enterprise_name: str | None = None
    is_enterprise_install: bool = False
    app_id: str | None = None
    bot_id: str | None = None
    bot_user_id: str | None = None
    bot_token: str | None = None
    bot_refresh_token: str | None = None
    bot_token_expires_at: datetime | None = None
    bot_scopes: list[str] = Field(default_factory=list)
    user_id: str | None = None
    user_token: str | None = None
    user_refresh_token: str | None = None
    user_token_expires_at: datetime | None = None
    user_scopes: list[str] = Field(default_factory=list)
    installed_at: datetime
    updated_at: datetime


@runtime_checkable
class InstallationStore(Protocol):
    """Where installations are kept (the SQL store and ``InMemoryRunStore``)."""

    async def save_installation(self, installation: SlackInstallation, audit: list[AuditDraft]) -> None:
        """Insert or replace the installation of ``installation.team_id``, with its audit events."""
        ...

    async def get_installation(self, team_id: str) -> SlackInstallation | None:
        """The installation of one workspace (or org-wide install), if any."""
        ...

    async def list_installations(self) -> list[SlackInstallation]:
        """Every installation, by team id."""
        ...

    async def delete_installation(self, team_id: str, audit: list[AuditDraft]) -> bool:
        """Delete one workspace's installation; False when there was none (audit then not written)."""
        ...
