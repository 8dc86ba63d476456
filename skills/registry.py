"""The versioned skill library: ``skills/library/<name>/<version>/`` plus ``skills.lock.json``.

A published version is immutable: its content hash is recorded in the lock file, and loading
refuses a folder whose content no longer matches (or that disappeared). Changes go in a new
version, so a run pinned to ``name@version`` always runs the code it was pinned to.
"""

from __future__ import annotations

import builtins
import json
import os
import tempfile
from pathlib import Path

from engine.errors import InvalidInput, InvalidWorkflow, NotFound, WorkflowIssue
from skills._skill_model import (
    NAME_RE,
    VERSION_RE,
    Fixture,
    FixtureResult,
    Skill,
    SkillSpec,
    content_hash,
    parse_skill,
    version_key,
)
from skills._skill_run import RegistryRunner, run_skill, test_skill

__all__ = [
    "LOCK_FILE",
    "Fixture",
    "FixtureResult",
    "RegistryRunner",
    "Skill",
    "SkillRegistry",
    "SkillSpec",
    "content_hash",
    "run_skill",
    "test_skill",
]

LOCK_FILE = "skills.lock.json"


class SkillRegistry:
    """Every skill version found under one library root, keyed by ``name@version``."""

    def __init__(self, root: Path, skills: dict[str, Skill], lock: dict[str, str]) -> None:
        """Prefer ``SkillRegistry.load``, which checks everything first."""
        self.root = root
        self._skills = dict(skills)
        self._lock = dict(lock)

    @classmethod
    def load(cls, root: Path) -> SkillRegistry:
        """Load and check every version folder under ``root`` against the lock file.

        This reads files synchronously: it runs at start-up or from the CLI, before serving.

        Raises:
            InvalidWorkflow: every problem found, each naming the file and field, including
                published versions whose content changed or whose folder is gone.
        """
        if not root.is_dir():
            raise InvalidWorkflow([WorkflowIssue("skills directory does not exist", file=str(root))])
        issues: list[WorkflowIssue] = []
        lock = _read_lock(root / LOCK_FILE, issues)
        skills: dict[str, Skill] = {}
        folders = _version_folders(root, issues)
        for folder, name, version in folders:
            parsed = parse_skill(folder, name=name, version=version)
            if isinstance(parsed, list):
                issues += parsed
                continue
            published = lock.get(parsed.ref)
            if published is not None and published != parsed.content_hash:
                issues.append(
                    WorkflowIssue(_changed(parsed.ref, published, parsed.content_hash), file=str(folder))
                )
                continue
            skills[parsed.ref] = parsed.model_copy(update={"published": published is not None})
        for ref in sorted(set(lock) - {f"{name}@{version}" for _, name, version in folders}):
            message = f"skill {ref} is published but its folder is missing"
            issues.append(WorkflowIssue(message, file=str(root / LOCK_FILE)))
        if issues:
            raise InvalidWorkflow(issues)
        return cls(root, skills, lock)

    def get(self, ref: str) -> Skill:
        """The skill version pinned by ``ref`` (``name@1.2.0``).

        Raises:
            InvalidInput: ``ref`` is not pinned to an exact version (``name``, ``name@latest``).
            NotFound: no such skill, or no such version (the message lists those that exist).
        """
        name, _, version = ref.partition("@")
        versions = self.versions(name)
        if not versions:
            known = ", ".join(sorted({s.spec.name for s in self._skills.values()})) or "none"
            raise NotFound(f"unknown skill '{name}' (known skills: {known})")
        if not VERSION_RE.match(version):
            message = f"skill '{ref}' is not pinned; use {name}@<version> (versions: {', '.join(versions)})"
            raise InvalidInput(message, {"skill": message})
        skill = self._skills.get(f"{name}@{version}")
        if skill is None:
            raise NotFound(f"skill {name} has no version {version} (versions: {', '.join(versions)})")
        return skill

    def list(self) -> builtins.list[Skill]:
        """Every version, by name then version."""
        return sorted(self._skills.values(), key=lambda s: (s.spec.name, version_key(s.spec.version)))

    def versions(self, name: str) -> builtins.list[str]:
        """The versions of ``name``, oldest first (empty when unknown)."""
        found = [s.spec.version for s in self._skills.values() if s.spec.name == name]
        return sorted(found, key=version_key)

    def publish(self, ref: str) -> Skill:
        """Record ``ref``'s content hash in the lock file; from then on it may not change.

        Publishing an already published version is a no-op.

        Raises:
            InvalidWorkflow: the folder no longer loads, or changed since publication.
            InvalidInput, NotFound: as for ``get``.
        """
        skill = self.get(ref)
        fresh = parse_skill(skill.path, name=skill.spec.name, version=skill.spec.version)
        if isinstance(fresh, list):
            raise InvalidWorkflow(fresh)
        published = self._lock.get(ref)
        if published is not None and published != fresh.content_hash:
            raise InvalidWorkflow(
                [WorkflowIssue(_changed(ref, published, fresh.content_hash), file=str(skill.path))]
            )
        if published is None:
            self._lock[ref] = fresh.content_hash
            _write_lock(self.root / LOCK_FILE, self._lock)
        self._skills[ref] = fresh.model_copy(update={"published": True})
        return self._skills[ref]


def _changed(ref: str, published: str, current: str) -> str:
    return (
        f"skill {ref} changed after it was published (hash {current[:19]}, published {published[:19]}); "
        "publish a new version instead"
    )


def _version_folders(root: Path, issues: list[WorkflowIssue]) -> list[tuple[Path, str, str]]:
    found = []
    for name_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        if not NAME_RE.match(name_dir.name):
            issues.append(WorkflowIssue("not a valid skill name (like refund-policy)", file=str(name_dir)))
            continue
        for version_dir in sorted(p for p in name_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if not VERSION_RE.match(version_dir.name):
                issues.append(
                    WorkflowIssue("not a semantic version folder (like 1.2.0)", file=str(version_dir))
                )
                continue
            found.append((version_dir, name_dir.name, version_dir.name))
    return found


def _read_lock(path: Path, issues: list[WorkflowIssue]) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        issues.append(WorkflowIssue(f"invalid JSON: {e}", file=str(path)))
        return {}
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        issues.append(WorkflowIssue('must map "name@version" to "sha256:..."', file=str(path)))
        return {}
    return {str(k): str(v) for k, v in data.items()}


def _write_lock(path: Path, lock: dict[str, str]) -> None:
    text = json.dumps(dict(sorted(lock.items())), indent=2) + "\n"
    # Write-then-rename so a crash never leaves a half-written lock that would block start-up.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".skills.lock.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
