"""A workflow as a graph: nodes by kind, edges labelled with their ``when``, and a run's path.

``workflow_graph`` builds the description; ``to_dot`` and ``to_mermaid`` write it in Graphviz's
and Mermaid's languages, whose own layout engines place it (no layout is computed here). The
SVG is Graphviz's work (``bot/graphs.py``). Every node id and every edge condition appears in
both texts, so a reader (or a test) finds each of them.

A run overlays its state: each node is ``done``, ``waiting``, ``running``, ``failed``,
``cancelled``, ``skipped`` (the run ended without reaching it, or a policy passed it) or
``pending`` (not reached yet); an edge is ``taken`` when the run went from its source to its
target.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from engine.model import HumanConfig, NodeSpec, Run, Step, StepStatus, Workflow

__all__ = [
    "Graph",
    "GraphEdge",
    "GraphNode",
    "NodeState",
    "mermaid_text",
    "to_dot",
    "to_mermaid",
    "workflow_graph",
]


class NodeState(StrEnum):
    """Where a run is with one node."""

    done = "done"
    waiting = "waiting"
    running = "running"
    failed = "failed"
    cancelled = "cancelled"
    skipped = "skipped"
    pending = "pending"


class GraphNode(BaseModel):
    """One node: its id, its kind and, on a run's graph, its state."""

    model_config = ConfigDict(frozen=True)

    id: str
    type: str
    entry: bool = False
    when: str | None = None  # a human node's own condition (it is passed by policy when false)
    state: NodeState | None = None


class GraphEdge(BaseModel):
    """One edge with its condition (None: always holds) and whether a run took it."""

    model_config = ConfigDict(frozen=True)

    source: str
    target: str
    when: str | None = None
    taken: bool | None = None


class Graph(BaseModel):
    """A workflow's graph, with a run's path when ``run_id`` is set."""

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    title: str
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    run_id: str | None = None


_STEP_STATE = {
    StepStatus.succeeded: NodeState.done,
    StepStatus.waiting: NodeState.waiting,
    StepStatus.running: NodeState.running,
    StepStatus.failed: NodeState.failed,
    StepStatus.cancelled: NodeState.cancelled,
    StepStatus.skipped: NodeState.skipped,
}


def _when(spec: NodeSpec) -> str | None:
    return spec.config.when if isinstance(spec.config, HumanConfig) else None


def workflow_graph(workflow: Workflow, run: Run | None = None, steps: Iterable[Step] = ()) -> Graph:
    """The graph of ``workflow``; with ``run`` (and its steps), each node's state on it."""
    if run is None:
        nodes = [
            GraphNode(id=n, type=s.type, entry=n == workflow.entry, when=_when(s))
            for n, s in workflow.nodes.items()
        ]
        edges = [GraphEdge(source=e.source, target=e.target, when=e.when) for e in workflow.edges]
        return Graph(workflow_id=workflow.id, title=workflow.title, nodes=nodes, edges=edges)
    latest: dict[str, Step] = {}
    for step in steps:  # in start order: the last attempt wins
        latest[step.node_id] = step
    unreached = NodeState.skipped if run.status.final else NodeState.pending
    nodes = [
        GraphNode(
            id=n,
            type=s.type,
            entry=n == workflow.entry,
            when=_when(s),
            state=_STEP_STATE[latest[n].status] if n in latest else unreached,
        )
        for n, s in workflow.nodes.items()
    ]
    reached = {n for n, st in latest.items() if st.status is not StepStatus.skipped}
    edges = [
        GraphEdge(
            source=e.source,
            target=e.target,
            when=e.when,
            taken=e.source in reached and e.target in reached,
        )
        for e in workflow.edges
    ]
    return Graph(workflow_id=workflow.id, title=workflow.title, nodes=nodes, edges=edges, run_id=run.id)


# --------------------------------------------------------------------------- Graphviz DOT

# the shape of each node kind (Graphviz names); other kinds are boxes
_DOT_SHAPES = {
    "human": "hexagon",
    "llm": "ellipse",
    "skill": "component",
    "code": "box3d",
    "http": "cds",
    "notify": "note",
    "set": "box",
    "agent": "doubleoctagon",
}
# fill and line colour of each state; skipped and pending nodes are greyed
_DOT_STATES = {
    NodeState.done: ("#dcfae6", "#067647"),
    NodeState.waiting: ("#fef0c7", "#b54708"),
    NodeState.running: ("#dbe6ff", "#3056d3"),
    NodeState.failed: ("#fee4e2", "#b42318"),
    NodeState.cancelled: ("#eef0f4", "#667085"),
    NodeState.skipped: ("#f6f7f9", "#c0c5cf"),
    NodeState.pending: ("#ffffff", "#98a2b3"),
}
_GREY = "#c0c5cf"


def _quoted(text: str) -> str:
    """A DOT double-quoted string: backslashes, quotes and line ends escaped."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "\\n")
    return f'"{escaped}"'


def _dot_node(node: GraphNode) -> str:
    attrs = {
        "label": f"{node.id}\n{node.type}" + (f"\nwhen {node.when}" if node.when else ""),
        "shape": _DOT_SHAPES.get(node.type, "box"),
        "tooltip": f"{node.id} ({node.type}{', ' + node.state.value if node.state else ''})",
    }
    if node.state is not None:
        fill, line = _DOT_STATES[node.state]
        attrs |= {"fillcolor": fill, "color": line}
        if node.state in {NodeState.skipped, NodeState.pending}:
            attrs |= {"fontcolor": line, "style": "filled,dashed"}
    if node.entry:
        attrs["penwidth"] = "2"
    if node.state is not None:
        attrs["class"] = f"state-{node.state.value}"  # the SVG node's class: state-done, ...
    body = ", ".join(f"{k}={_quoted(v)}" for k, v in attrs.items())
    return f"  {_quoted(node.id)} [{body}];"


def _dot_edge(edge: GraphEdge) -> str:
    attrs: dict[str, str] = {}
    if edge.when is not None:
        attrs["label"] = edge.when
    if edge.taken is True:
        attrs |= {"penwidth": "2.5", "color": "#067647"}
    elif edge.taken is False:
        attrs |= {"color": _GREY, "fontcolor": "#98a2b3", "style": "dashed"}
    body = ", ".join(f"{k}={_quoted(v)}" for k, v in attrs.items())
    return f"  {_quoted(edge.source)} -> {_quoted(edge.target)}" + (f" [{body}];" if body else ";")


def to_dot(graph: Graph) -> str:
    """The graph in Graphviz's DOT language (top to bottom)."""
    lines = [
        f"digraph {_quoted(graph.workflow_id)} {{",
        "  rankdir=TB;",
        '  graph [fontname="Helvetica", fontsize=11];',
        '  node [fontname="Helvetica", fontsize=11, style=filled, fillcolor="#ffffff"];',
        '  edge [fontname="Helvetica", fontsize=9, color="#475467"];',
    ]
    lines += [_dot_node(n) for n in graph.nodes]
    lines += [_dot_edge(e) for e in graph.edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- Mermaid

_MERMAID_SHAPES = {
    "human": ("{{", "}}"),
    "llm": ("([", "])"),
    "skill": ("[[", "]]"),
    "code": ("[/", "/]"),
    "http": ("[\\", "\\]"),
    "notify": (">", "]"),
    "set": ("[", "]"),
    "agent": ("((", "))"),
}
# Mermaid's entity codes for the characters that end or restyle a label
_MERMAID_ESCAPES = {"#": "#35;", '"': "#quot;", "|": "#124;", "<": "#lt;", ">": "#gt;", "\n": " "}
_MERMAID_CLASSES = {
    NodeState.done: "fill:#dcfae6,stroke:#067647,color:#067647",
    NodeState.waiting: "fill:#fef0c7,stroke:#b54708,color:#b54708",
    NodeState.running: "fill:#dbe6ff,stroke:#3056d3,color:#3056d3",
    NodeState.failed: "fill:#fee4e2,stroke:#b42318,color:#b42318",
    NodeState.cancelled: "fill:#eef0f4,stroke:#667085,color:#667085",
    NodeState.skipped: "fill:#f6f7f9,stroke:#c0c5cf,color:#98a2b3,stroke-dasharray:4 3",
    NodeState.pending: "fill:#ffffff,stroke:#98a2b3,color:#667085,stroke-dasharray:4 3",
}


def mermaid_text(text: str) -> str:
    """``text`` inside a quoted Mermaid label (its special characters as entity codes)."""
    return "".join(_MERMAID_ESCAPES.get(ch, ch) for ch in text)


def to_mermaid(graph: Graph) -> str:
    """The graph as a Mermaid flowchart; node keys are ``n0``, ``n1``, ... (a node id such as
    ``end`` would be a keyword), labelled with the node's id and kind."""
    keys = {node.id: f"n{i}" for i, node in enumerate(graph.nodes)}
    lines = ["flowchart TD"]
    for node in graph.nodes:
        left, right = _MERMAID_SHAPES.get(node.type, ("[", "]"))
        label = mermaid_text(node.id) + "<br/>" + mermaid_text(node.type)
        if node.when:
            label += "<br/>when " + mermaid_text(node.when)
        lines.append(f'  {keys[node.id]}{left}"{label}"{right}')
    taken: list[int] = []
    greyed: list[int] = []
    for i, edge in enumerate(graph.edges):
        arrow = "-->" if edge.taken is not False else "-.->"
        text = f'|"{mermaid_text(edge.when)}"|' if edge.when is not None else ""
        lines.append(f"  {keys[edge.source]} {arrow}{text} {keys[edge.target]}")
        (taken if edge.taken else greyed if edge.taken is False else []).append(i)
    states = {n.state for n in graph.nodes if n.state is not None}
    for state in sorted(states):
        lines.append(f"  classDef {state.value} {_MERMAID_CLASSES[state]}")
        members = ",".join(keys[n.id] for n in graph.nodes if n.state is state)
        lines.append(f"  class {members} {state.value}")
    if taken:
        lines.append(f"  linkStyle {','.join(map(str, taken))} stroke:#067647,stroke-width:2.5px")
    if greyed:
        lines.append(f"  linkStyle {','.join(map(str, greyed))} stroke:#c0c5cf")
    return "\n".join(lines) + "\n"
