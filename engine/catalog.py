"""The workflows a process knows: the current files, and pinned versions by content hash."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path

from engine.errors import InvalidWorkflow, NotFound, WorkflowIssue
from engine.loader import load_directory, load_workflow_text
from engine.model import Workflow, WorkflowVersion
from engine.nodes.base import SkillRunner
from engine.ports import RunStore
from engine.roles import Role

__all__ = ["WorkflowCatalog"]


class WorkflowCatalog:
    """Current workflows by id, plus a cache of compiled pinned versions by hash."""

    def __init__(
        self,
        workflows: Mapping[str, Workflow],
        *,
        roles: Mapping[str, Role] | None = None,
        skills: SkillRunner | None = None,
        errors: list[InvalidWorkflow] | None = None,
        llm_available: bool = True,
    ) -> None:
        self._current = dict(workflows)
        self._by_hash: dict[str, Workflow] = {wf.content_hash: wf for wf in workflows.values()}
        self.roles = dict(roles or {})
        self.skills = skills
        self.errors = list(errors or [])
        self.llm_available = llm_available

    @classmethod
    def from_directory(
        cls,
        directory: Path,
        *,
        roles: Mapping[str, Role] | None = None,
        skills: SkillRunner | None = None,
        llm_available: bool = True,
    ) -> WorkflowCatalog:
        """Load every workflow file in ``directory``; broken files are kept in ``errors``."""
        if not directory.is_dir():
            return cls({}, roles=roles, skills=skills, llm_available=llm_available)
        good, bad = load_directory(directory, roles=roles, skills=skills, llm_available=llm_available)
        return cls(good, roles=roles, skills=skills, errors=bad, llm_available=llm_available)

    def ids(self) -> list[str]:
        """Workflow ids, sorted."""
        return sorted(self._current)

    def all(self) -> list[Workflow]:
        """Current workflows, sorted by id."""
        return [self._current[i] for i in self.ids()]

    def get(self, workflow_id: str) -> Workflow:
        """The current version. Raises NotFound naming close matches."""
        try:
            return self._current[workflow_id]
        except KeyError:
            close = difflib.get_close_matches(workflow_id, self.ids(), n=3, cutoff=0.5)
            hint = (
                f"; did you mean {', '.join(close)}?"
                if close
                else f"; known: {', '.join(self.ids()) or 'none'}"
            )
            raise NotFound(f"unknown workflow '{workflow_id}'{hint}") from None

    def close_matches(self, workflow_id: str) -> list[str]:
        """Workflow ids that look like ``workflow_id``."""
        return difflib.get_close_matches(workflow_id, self.ids(), n=3, cutoff=0.4)

    def reload(self, good: Mapping[str, Workflow], bad: list[InvalidWorkflow]) -> list[Workflow]:
        """Serve a fresh load of the folder; returns the workflows whose source changed.

        A valid file replaces its workflow. A file that no longer loads keeps its last valid
        version serving and is reported in ``errors``. A workflow whose file is gone is no
        longer offered (runs pinned to it go on: they read their version by hash).
        """
        broken = {issue.file for err in bad for issue in err.issues if issue.file}
        kept = {wf.id: wf for wf in self._current.values() if wf.id not in good and wf.path in broken}
        changed = [
            wf
            for wf in good.values()
            if wf.id not in self._current or self._current[wf.id].content_hash != wf.content_hash
        ]
        self._current = {**kept, **good}
        for wf in good.values():
            self._by_hash.setdefault(wf.content_hash, wf)
        self.errors = list(bad)
        return changed

    def errors_for(self, workflow_id: str) -> list[WorkflowIssue]:
        """The problems of the file that holds ``workflow_id``, while it does not load."""
        current = self._current.get(workflow_id)
        if current is None or not current.path:
            return []
        return [issue for err in self.errors for issue in err.issues if issue.file == current.path]

    def remember(self, workflow: Workflow) -> None:
        """Keep a compiled version that is not among the files (an ask's workflow) by its hash."""
        self._by_hash.setdefault(workflow.content_hash, workflow)

    async def pinned(self, content_hash: str, store: RunStore) -> Workflow:
        """The exact version a run started on, compiled once per process."""
        cached = self._by_hash.get(content_hash)
        if cached is not None:
            return cached
        version: WorkflowVersion = await store.get_workflow_version(content_hash)
        wf = load_workflow_text(
            version.source, file=version.path or version.workflow_id, roles=self.roles, skills=self.skills
        )
        self._by_hash[content_hash] = wf
        return wf
