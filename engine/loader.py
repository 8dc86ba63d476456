"""Load workflow files (YAML or JSON) into validated ``Workflow`` models.

Every problem is reported with the file, the line, the node and the field, e.g.
``workflows/refund.yml:14: node 'approval': field 'assignee': unknown assignee 'rol:manager'``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import ValidationError

from engine._yaml_lines import LineMap, load_with_lines
from engine.errors import InvalidWorkflow, WorkflowIssue
from engine.expressions import Condition, ExpressionError, compared_strings, compile_condition
from engine.model import Edge, HumanConfig, Limits, NodeSpec, Workflow, parse_duration
from engine.nodes.base import LoadContext, NodeKind, SkillRunner
from engine.nodes.human import possible_actions
from engine.nodes.registry import NODE_KINDS
from engine.roles import Role
from engine.templates import TemplateFailure, compile_value, walk_templates

__all__ = ["CompiledWorkflow", "load_directory", "load_workflow_file", "load_workflow_text"]

_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
_TOP_KEYS = {"id", "title", "description", "inputs", "nodes", "edges", "version", "tags", "limits"}
_COMMON_NODE_KEYS = {"id", "type", "title", "retries", "timeout", "description"}
NODE_ROOTS = frozenset({"inputs", "nodes", "run"})
RESPONSE_ROOTS = NODE_ROOTS | {"response"}


@dataclass
class CompiledWorkflow:
    """Load-time compiled parts: templates per node, edge conditions, ancestors."""

    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    conditions: dict[int, Condition] = field(default_factory=dict)
    node_conditions: dict[str, Condition] = field(default_factory=dict)
    ancestors: dict[str, frozenset[str]] = field(default_factory=dict)


class _Issues:
    def __init__(self, file: str, lines: LineMap) -> None:
        self.file = file
        self.lines = lines
        self.items: list[WorkflowIssue] = []
        self.node_index: dict[str, int] = {}

    def add(
        self, message: str, path: tuple[str | int, ...] = (), node: str | None = None, fld: str | None = None
    ) -> None:
        self.items.append(
            WorkflowIssue(message, file=self.file, line=self.lines.line(path), node=node, field=fld)
        )


def load_workflow_file(
    path: Path,
    *,
    roles: Mapping[str, Role] | None = None,
    skills: SkillRunner | None = None,
    llm_available: bool = True,
    display: str | None = None,
) -> Workflow:
    """Load and validate one workflow file. Raises InvalidWorkflow listing every issue."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidWorkflow([WorkflowIssue(f"cannot read file: {exc.strerror}", file=name)]) from exc
    return load_workflow_text(text, file=name, roles=roles, skills=skills, llm_available=llm_available)


def load_directory(
    directory: Path,
    *,
    roles: Mapping[str, Role] | None = None,
    skills: SkillRunner | None = None,
    llm_available: bool = True,
) -> tuple[dict[str, Workflow], list[InvalidWorkflow]]:
    """Load every ``*.yml``, ``*.yaml`` and ``*.json`` file; returns the good ones and the errors."""
    good: dict[str, Workflow] = {}
    bad: list[InvalidWorkflow] = []
    files = sorted(p for p in directory.iterdir() if p.suffix in {".yml", ".yaml", ".json"} and p.is_file())
    for path in files:
        try:
            wf = load_workflow_file(path, roles=roles, skills=skills, llm_available=llm_available)
        except InvalidWorkflow as exc:
            bad.append(exc)
            continue
        if wf.id in good:
            bad.append(
                InvalidWorkflow(
                    [
                        WorkflowIssue(
                            f"workflow id '{wf.id}' is also used by {good[wf.id].path}", file=str(path)
                        )
                    ]
                )
            )
            continue
        good[wf.id] = wf
    return good, bad


def load_workflow_text(
    text: str,
    *,
    file: str = "<workflow>",
    roles: Mapping[str, Role] | None = None,
    skills: SkillRunner | None = None,
    llm_available: bool = True,
) -> Workflow:
    """Load and validate workflow source text. Raises InvalidWorkflow listing every issue."""
    try:
        raw, lines = load_with_lines(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = None if mark is None else mark.line + 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise InvalidWorkflow(
            [WorkflowIssue(f"not valid YAML or JSON: {problem}", file=file, line=line)]
        ) from exc
    issues = _Issues(file, lines)
    if not isinstance(raw, dict):
        issues.add("a workflow file must be a mapping with id, nodes and edges")
        raise InvalidWorkflow(issues.items)
    ctx = LoadContext(
        roles=dict(roles or {}), skills=skills, node_ids=frozenset(), llm_available=llm_available
    )
    wf = _build(raw, text, file, issues, ctx)
    if issues.items or wf is None:
        raise InvalidWorkflow(issues.items)
    return wf


def _build(raw: dict[str, Any], text: str, file: str, issues: _Issues, ctx: LoadContext) -> Workflow | None:
    for key in raw:
        if key not in _TOP_KEYS:
            issues.add(f"unknown key '{key}' (allowed: {', '.join(sorted(_TOP_KEYS))})", (key,))
    wf_id = raw.get("id")
    if not isinstance(wf_id, str) or not _ID.match(wf_id):
        issues.add("'id' is required: letters, digits, '-' or '_', starting with a letter", ("id",))
        wf_id = "invalid"
    label = raw.get("version")
    if label is not None and (isinstance(label, bool) or not isinstance(label, str | int | float)):
        issues.add(
            "'version' is a label such as 1.2.0 or \"2026-12 pricing\": a string or a number", ("version",)
        )
    inputs = _check_inputs(raw.get("inputs", {"type": "object", "properties": {}}), issues)
    nodes = _load_nodes(raw.get("nodes"), issues, ctx)
    edges = _load_edges(raw.get("edges", []), issues, nodes)
    limits = load_limits(raw.get("limits"), issues)
    if issues.items:
        return None
    entry = _check_graph(nodes, edges, issues)
    if entry is None:
        return None
    compiled = CompiledWorkflow(ancestors=_ancestors(nodes, edges))
    _compile_templates(nodes, compiled, issues)
    _check_upstream(nodes, compiled, issues)
    _check_verify(nodes, ctx, issues)
    _compile_conditions(nodes, edges, compiled, issues)
    if issues.items:
        return None
    return Workflow(
        id=wf_id,
        title=str(raw.get("title") or wf_id),
        description=str(raw.get("description") or ""),
        inputs=inputs,
        nodes=nodes,
        edges=edges,
        entry=entry,
        source=text,
        content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        path=file,
        label="" if label is None else str(label),
        limits=limits,
        compiled=compiled,
    )


_WHOLE_LIMITS = {"max_steps": "steps", "max_tokens": "tokens"}


def load_limits(raw: Any, issues: _Issues) -> Limits:
    """``limits: {max_steps, max_wall_time, max_tokens, max_cost}``; each problem names its key."""
    if raw is None:
        return Limits()
    if not isinstance(raw, dict):
        issues.add(
            "'limits' must be a mapping of max_steps, max_wall_time, max_tokens, max_cost", ("limits",)
        )
        return Limits()
    values: dict[str, Any] = {}
    for key, value in raw.items():
        path, fld = ("limits", key), f"limits.{key}"
        if key in _WHOLE_LIMITS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                issues.add(
                    f"must be a whole number of {_WHOLE_LIMITS[key]}, 1 or more, not {value!r}", path, fld=fld
                )
                continue
            values[key] = value
        elif key == "max_wall_time":
            try:
                values[key] = parse_duration(value)
            except ValueError as exc:
                issues.add(str(exc), path, fld=fld)
        elif key == "max_cost":
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                issues.add(f"must be a positive amount in USD, like 0.50, not {value!r}", path, fld=fld)
                continue
            values[key] = float(value)
        else:
            known = "max_steps, max_wall_time, max_tokens, max_cost"
            issues.add(f"unknown limit '{key}' (allowed: {known})", path, fld=fld)
    return Limits(**values)


def _check_inputs(schema: Any, issues: _Issues) -> dict[str, Any]:
    if not isinstance(schema, dict):
        issues.add("'inputs' must be a JSON Schema object", ("inputs",))
        return {}
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = ".".join(str(p) for p in exc.path)
        issues.add(f"'inputs' is not a valid JSON Schema at '{where}': {exc.message}", ("inputs", *exc.path))
    if schema.get("type", "object") != "object":
        issues.add("'inputs' must have type: object", ("inputs", "type"))
    return schema


def _load_nodes(raw_nodes: Any, issues: _Issues, ctx: LoadContext) -> dict[str, NodeSpec]:
    if not isinstance(raw_nodes, list) or not raw_nodes:
        issues.add("'nodes' must be a non-empty list", ("nodes",))
        return {}
    ids = [n.get("id") for n in raw_nodes if isinstance(n, dict)]
    ctx.node_ids = frozenset(i for i in ids if isinstance(i, str))
    nodes: dict[str, NodeSpec] = {}
    for index, raw in enumerate(raw_nodes):
        spec = _load_node(index, raw, issues, ctx, nodes)
        if spec is not None:
            nodes[spec.id] = spec
    return nodes


def _load_node(
    index: int, raw: Any, issues: _Issues, ctx: LoadContext, seen: dict[str, NodeSpec]
) -> NodeSpec | None:
    path: tuple[str | int, ...] = ("nodes", index)
    if not isinstance(raw, dict):
        issues.add(f"node #{index + 1} must be a mapping with id and type", path)
        return None
    node_id = raw.get("id")
    if not isinstance(node_id, str) or not _ID.match(node_id):
        issues.add(f"node #{index + 1}: 'id' is required (letters, digits, '-' or '_')", (*path, "id"))
        return None
    if node_id in seen:
        issues.add(f"duplicate node id (first defined on line {seen[node_id].line})", (*path, "id"), node_id)
        return None
    type_name = raw.get("type")
    kind = NODE_KINDS.get(str(type_name))
    if kind is None:
        known = ", ".join(sorted(NODE_KINDS))
        issues.add(f"unknown node type {type_name!r} (known: {known})", (*path, "type"), node_id, "type")
        return None
    # a human node's title is a template shown to people, so it stays in its config
    common = _COMMON_NODE_KEYS - {"title"} if type_name == "human" else _COMMON_NODE_KEYS
    config_raw = {k: v for k, v in raw.items() if k not in common}
    try:
        config = kind.config_model.model_validate(config_raw)
    except ValidationError as exc:
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            fld = ".".join(loc) or None
            message = _pydantic_message(err)
            issues.add(message, (*path, *err["loc"]), node_id, fld)
        return None
    timeout = None
    if "timeout" in raw and type_name != "human":
        try:
            timeout = parse_duration(raw["timeout"])
        except ValueError as exc:
            issues.add(str(exc), (*path, "timeout"), node_id, "timeout")
    if type_name == "human" and "timeout" in raw:
        config = config.model_copy(update={"timeout": str(raw["timeout"])})
    retries = raw.get("retries", 0)
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 10:
        issues.add("'retries' must be a whole number from 0 to 10", (*path, "retries"), node_id, "retries")
        retries = 0
    issues.node_index[node_id] = index
    spec = NodeSpec(
        id=node_id,
        type=str(type_name),
        line=issues.lines.line(path),
        title=raw.get("title"),
        config=config,
        retries=retries,
        timeout=timeout,
    )
    for fld, message in kind.check(spec, ctx):
        issues.add(message, (*path, *fld.split(".")) if fld else path, node_id, fld)
    return spec


def _pydantic_message(err: Any) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown field (check the spelling; see architecture.md §4 for the node format)"
    if kind == "missing":
        return "this field is required"
    msg: str = err.get("msg", "invalid value")
    return msg.removeprefix("Value error, ")


def _load_edges(raw_edges: Any, issues: _Issues, nodes: dict[str, NodeSpec]) -> list[Edge]:
    if not isinstance(raw_edges, list):
        issues.add("'edges' must be a list of {from, to, when}", ("edges",))
        return []
    edges: list[Edge] = []
    for index, raw in enumerate(raw_edges):
        path: tuple[str | int, ...] = ("edges", index)
        try:
            edge = Edge.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                issues.add(f"edge #{index + 1}: {_pydantic_message(err)}", (*path, *err["loc"]), None, None)
            continue
        edge = edge.model_copy(update={"line": issues.lines.line(path)})
        for end in (edge.source, edge.target):
            if end not in nodes:
                issues.add(f"edge {edge.source}→{edge.target}: unknown node '{end}'", path)
        edges.append(edge)
    return edges


def _check_graph(nodes: dict[str, NodeSpec], edges: list[Edge], issues: _Issues) -> str | None:
    targets = {e.target for e in edges}
    entries = [n for n in nodes if n not in targets]
    if len(entries) != 1:
        found = ", ".join(entries) or "none (every node has an incoming edge: a cycle)"
        issues.add(f"a workflow needs exactly one entry node (a node with no incoming edge); found: {found}")
        return None
    entry = entries[0]
    successors: dict[str, list[str]] = {n: [] for n in nodes}
    for edge in edges:
        successors[edge.source].append(edge.target)
    cycle = _find_cycle(entry, successors)
    if cycle:
        node = nodes[cycle[0]]
        issues.items.append(
            WorkflowIssue(
                f"cycle {' → '.join(cycle)}: loops are not supported; route back through a new node instead",
                file=issues.file,
                line=node.line,
                node=node.id,
            )
        )
        return None
    reachable = _reachable(entry, successors)
    for node in nodes.values():
        if node.id not in reachable:
            issues.items.append(
                WorkflowIssue(
                    f"unreachable: no path leads here from the entry node '{entry}'",
                    file=issues.file,
                    line=node.line,
                    node=node.id,
                )
            )
    return entry if not issues.items else None


def _reachable(entry: str, successors: dict[str, list[str]]) -> set[str]:
    seen = {entry}
    stack = [entry]
    while stack:
        for nxt in successors[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _find_cycle(entry: str, successors: dict[str, list[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in successors[node]:
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in [entry, *successors]:
        if start not in state and (found := visit(start)):
            return found
    return None


def _ancestors(nodes: dict[str, NodeSpec], edges: list[Edge]) -> dict[str, frozenset[str]]:
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    for edge in edges:
        preds[edge.target].append(edge.source)
    out: dict[str, frozenset[str]] = {}
    for node in nodes:
        seen: set[str] = set()
        stack = list(preds[node])
        while stack:
            cur = stack.pop()
            if cur not in seen:
                seen.add(cur)
                stack.extend(preds[cur])
        out[node] = frozenset(seen)
    return out


def _kind(node: NodeSpec) -> type[NodeKind]:
    return NODE_KINDS[node.type]


def _compile_templates(nodes: dict[str, NodeSpec], compiled: CompiledWorkflow, issues: _Issues) -> None:
    for node in nodes.values():
        config = node.config.model_dump(mode="json", by_alias=True)
        out: dict[str, Any] = {}
        for fld in _kind(node).template_fields:
            if fld not in config:
                continue
            try:
                out[fld] = compile_value(config[fld])
            except TemplateFailure as exc:
                issues.items.append(_at(issues, node, fld, str(exc)))
                continue
            for template in walk_templates(out[fld]):
                _check_refs(template.roots, template.node_refs, node, fld, compiled, issues, NODE_ROOTS)
        compiled.templates[node.id] = out


def _check_upstream(nodes: dict[str, NodeSpec], compiled: CompiledWorkflow, issues: _Issues) -> None:
    # a node id read outside templates (an llm node's extract.from) must also run earlier
    for node in nodes.values():
        source = getattr(getattr(node.config, "extract", None), "source", None)
        if isinstance(source, str) and source in nodes and source not in compiled.ancestors[node.id]:
            message = f"extract.from: '{source}' is not a node that runs before '{node.id}'"
            issues.items.append(_at(issues, node, "extract", message))


def _check_verify(nodes: dict[str, NodeSpec], ctx: LoadContext, issues: _Issues) -> None:
    for node in nodes.values():
        verify = getattr(node.config, "verify", None)
        if verify is None:
            continue
        if not ctx.llm_available:
            message = "verify needs a language model, and none is configured: set ANTHROPIC_API_KEY"
            issues.items.append(_at(issues, node, "verify", message))


def _check_refs(
    roots: frozenset[str],
    refs: frozenset[str],
    node: NodeSpec,
    fld: str,
    compiled: CompiledWorkflow,
    issues: _Issues,
    allowed: frozenset[str],
    *,
    include_self: bool = False,
) -> None:
    for root in sorted(roots - allowed):
        issues.items.append(
            _at(
                issues,
                node,
                fld,
                f"unknown template variable '{root}' (use one of: {', '.join(sorted(allowed))})",
            )
        )
    known = compiled.ancestors[node.id] | ({node.id} if include_self else set())
    for ref in sorted(refs - known):
        issues.items.append(
            _at(issues, node, fld, f"'nodes.{ref}' is not a node that runs before '{node.id}'")
        )


def _at(issues: _Issues, node: NodeSpec, fld: str | None, message: str) -> WorkflowIssue:
    index = issues.node_index.get(node.id)
    line = node.line if index is None or fld is None else issues.lines.line(("nodes", index, fld))
    return WorkflowIssue(message, file=issues.file, line=line, node=node.id, field=fld)


def _check_actions(edge: Edge, source: NodeSpec, config: HumanConfig, issues: _Issues) -> None:
    """An edge that tests ``response.action`` against an option its node does not offer would
    never (or always) hold: a typo such as ``'aprove'`` is refused here, not found in production."""
    possible = possible_actions(config)
    for value in compared_strings(edge.when or "", ("response", "action")):
        if value not in possible:
            message = (
                f"edge {edge.source}→{edge.target}: response.action is never {value!r} "
                f"(node '{source.id}' ends with one of: {', '.join(possible)})"
            )
            issues.items.append(WorkflowIssue(message, file=issues.file, line=edge.line, field="when"))


def _compile_conditions(
    nodes: dict[str, NodeSpec], edges: list[Edge], compiled: CompiledWorkflow, issues: _Issues
) -> None:
    for index, edge in enumerate(edges):
        if edge.when is None:
            continue
        source = nodes[edge.source]
        allowed = RESPONSE_ROOTS if source.type == "human" else NODE_ROOTS
        try:
            compiled.conditions[index] = compile_condition(edge.when, allowed)
        except ExpressionError as exc:
            issues.items.append(
                WorkflowIssue(
                    f"edge {edge.source}→{edge.target}: {exc}", file=issues.file, line=edge.line, field="when"
                )
            )
            continue
        if isinstance(source.config, HumanConfig):
            _check_actions(edge, source, source.config, issues)
    for node in nodes.values():
        when = getattr(node.config, "when", None)
        if node.type != "human" or not isinstance(when, str):
            continue
        try:
            compiled.node_conditions[node.id] = compile_condition(when, NODE_ROOTS)
        except ExpressionError as exc:
            issues.items.append(_at(issues, node, "when", str(exc)))
