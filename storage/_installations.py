"""Slack installations (multi-workspace mode): one row per workspace, tokens as ciphertext."""

from __future__ import annotations

from engine.installations import SlackInstallation
from engine.ports import AuditDraft
from storage import _audit
from storage._db import Tx
from storage._sql import Sql
from storage.mapping import INSTALLATIONS, upsert

__all__ = ["delete", "get", "listing", "save"]

_SAVE = upsert(INSTALLATIONS, "team_id", keep={"team_id", "installed_at"})
_GET = INSTALLATIONS.select("WHERE team_id = :team_id")
_ALL = INSTALLATIONS.select("ORDER BY team_id")
_DELETE = Sql("DELETE FROM slack_installations WHERE team_id = :team_id RETURNING team_id")


def save(tx: Tx, installation: SlackInstallation, audit: list[AuditDraft]) -> None:
    """Insert or replace the installation of its workspace (the first install time is kept)."""
    tx.run(_SAVE, INSTALLATIONS.params(installation, tx.pg))
    _audit.append(tx, audit, _audit.lock_head(tx, audit))


def get(tx: Tx, team_id: str) -> SlackInstallation | None:
    """One workspace's installation, if any."""
    row = tx.query(_GET, {"team_id": team_id}).fetchone()
    return None if row is None else INSTALLATIONS.load(row, tx.pg)


def listing(tx: Tx) -> list[SlackInstallation]:
    """Every installation, by team id."""
    return INSTALLATIONS.load_all(tx.query(_ALL).fetchall(), tx.pg)


def delete(tx: Tx, team_id: str, audit: list[AuditDraft]) -> bool:
    """Delete one workspace's installation; False (and no audit) when there was none."""
    gone = tx.query(_DELETE, {"team_id": team_id}).fetchone() is not None
    if gone:
        _audit.append(tx, audit, _audit.lock_head(tx, audit))
    return gone
