"""LangGraph: pause a graph on a Signoff checkpoint and resume it with the person's decision.

Inside a node, ``await checkpoint(sg, "Deploy?", assignee=...)`` opens a checkpoint with an
idempotency key made of the thread id, the checkpoint namespace (which names the node's task),
the node and the index of this call in the node, then calls
``interrupt({"signoff": {"checkpoint_id": ...}})``. LangGraph re-runs the node from its first
line on resume: the same key returns the same checkpoint (no second card), and ``interrupt``
returns the decision this time.

``drive(graph, input, config, sg)`` runs the graph until it ends or only foreign interrupts
remain, waits for each Signoff decision, and resumes with ``Command(resume={interrupt_id:
decision})``. On a thread that already has checkpoints it never starts over: after a crash or
restart it picks up the interrupts the checkpointer kept and waits for the same checkpoints.
Interrupts without the ``signoff`` key pass through to the caller, except LangChain's
human-in-the-loop requests when ``hitl_assignee`` is given: those are asked through Signoff and
answered in LangChain's response shape, so an existing graph gets Slack approvals unchanged.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from langgraph.config import get_config
from langgraph.types import Command, Interrupt, interrupt
from pydantic import BaseModel

from signoff_client._async import Assignee, AsyncSignoff
from signoff_client._hitl import parse_hitl
from signoff_client._models import Decision, decision_of
from signoff_client._sync import Signoff

__all__ = [
    "SIGNOFF",
    "Driven",
    "checkpoint",
    "checkpoint_key",
    "checkpoint_sync",
    "drive",
    "signoff_interrupts",
]

T = TypeVar("T", bound=BaseModel)
SIGNOFF = "signoff"
"""The key of an interrupt value that names a Signoff checkpoint."""
_COUNTER = "__signoff_checkpoints"
_MAX_KEY = 255


def checkpoint_key() -> str:
    """The idempotency key of the next checkpoint asked from the running node.

    ``langgraph:{thread}:{namespace}:{node}:{index}``; the namespace names the node's task, so a
    node visited again later (a loop) asks anew, while a re-run of the same task (a resume, a
    retry, a restart) gets the same key. Hashed when it would exceed 255 characters.
    """
    config = get_config()
    conf = config.get("configurable", {})
    counter = conf.setdefault(_COUNTER, itertools.count())  # one per task execution
    node = (config.get("metadata") or {}).get("langgraph_node", "")
    key = f"langgraph:{conf.get('thread_id', '')}:{conf.get('checkpoint_ns', '')}:{node}:{next(counter)}"
    if len(key) > _MAX_KEY:
        key = "langgraph:sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def _value(checkpoint_id: str, key: str) -> dict[str, Any]:
    return {SIGNOFF: {"checkpoint_id": checkpoint_id, "key": key}}


@overload
async def checkpoint(
    sg: AsyncSignoff, prompt: str, *, assignee: Assignee, response_model: None = None, **fields: Any
) -> Decision[Any]: ...
@overload
async def checkpoint(
    sg: AsyncSignoff, prompt: str, *, assignee: Assignee, response_model: type[T], **fields: Any
) -> Decision[T]: ...
async def checkpoint(
    sg: AsyncSignoff,
    prompt: str,
    *,
    assignee: Assignee,
    response_model: type[T] | None = None,
    **fields: Any,
) -> Decision[T] | Decision[Any]:
    """Ask a person from an async node and pause the graph until the decision.

    Args:
        sg: The client.
        prompt: The question; ``fields`` as in ``checkpoints.create`` (``show``, ``proposed``...).
        response_model: Parses ``decision.data``; its JSON Schema becomes the response schema.

    Returns:
        The decision, once the driver resumed the graph with it.
    """
    key = checkpoint_key()
    cp = await sg.checkpoints.create(
        prompt, key=key, assignee=assignee, response_model=response_model, **fields
    )
    return decision_of(interrupt(_value(cp.id, key)), response_model)


@overload
def checkpoint_sync(
    sg: Signoff, prompt: str, *, assignee: Assignee, response_model: None = None, **fields: Any
) -> Decision[Any]: ...
@overload
def checkpoint_sync(
    sg: Signoff, prompt: str, *, assignee: Assignee, response_model: type[T], **fields: Any
) -> Decision[T]: ...
def checkpoint_sync(
    sg: Signoff,
    prompt: str,
    *,
    assignee: Assignee,
    response_model: type[T] | None = None,
    **fields: Any,
) -> Decision[T] | Decision[Any]:
    """``checkpoint`` for a synchronous node, with the synchronous client."""
    key = checkpoint_key()
    cp = sg.checkpoints.create(prompt, key=key, assignee=assignee, response_model=response_model, **fields)
    return decision_of(interrupt(_value(cp.id, key)), response_model)


def signoff_interrupts(interrupts: Sequence[Interrupt]) -> dict[str, str]:
    """``{interrupt id: checkpoint id}`` of the interrupts that name a Signoff checkpoint."""
    found: dict[str, str] = {}
    for item in interrupts:
        value = item.value
        if isinstance(value, dict) and isinstance(value.get(SIGNOFF), dict):
            cp_id = value[SIGNOFF].get("checkpoint_id")
            if isinstance(cp_id, str):
                found[item.id] = cp_id
    return found


@dataclass
class Driven:
    """Where ``drive`` stopped: the graph's values, and the interrupts left for the caller."""

    values: Any
    interrupts: list[Interrupt] = field(default_factory=list)
    decisions: dict[str, Decision[Any]] = field(default_factory=dict)
    """Every Signoff decision the graph was resumed with, by checkpoint id."""

    @property
    def finished(self) -> bool:
        """True when the graph ran to its end (no interrupt is left)."""
        return not self.interrupts


def _wire(decision: Decision[Any]) -> dict[str, Any]:
    """The decision as the server sent it (what ``checkpoint`` parses on resume)."""
    body = decision.model_dump(mode="json", exclude={"data", "raw_data"})
    return {**body, "data": decision.raw_data}


async def drive(
    graph: Any,
    graph_input: Any,
    config: Any,
    sg: AsyncSignoff,
    *,
    timeout: float | None = None,
    on_waiting: Callable[[list[str]], None] | None = None,
    hitl_assignee: Assignee | None = None,
    hitl_timeout: str | None = None,
) -> Driven:
    """Run the graph on ``config``'s thread, resuming it with Signoff decisions until it ends.

    Starts the graph with ``graph_input`` only when the thread has no checkpoint yet; otherwise
    it continues from where the checkpointer stopped (after a crash or a restart of this process
    it waits for the same checkpoints). Several pending checkpoints are waited for together; the
    graph is resumed with whichever are decided.

    Args:
        graph: A compiled graph with a checkpointer.
        timeout: Seconds to wait for one round of decisions (None: until they come).
        on_waiting: Called with the checkpoint ids before each wait (for logs and progress).
        hitl_assignee: When set, LangChain's human-in-the-loop interrupts (``HumanInterrupt``
            lists and ``HumanInTheLoopMiddleware`` requests) are asked of this assignee through
            Signoff and answered in their own response shape; otherwise they pass through.
        hitl_timeout: The deadline of those checkpoints (``4h``...); at it the action is not run.

    Returns:
        The final values, or the values and the interrupts that are not Signoff's.
    """
    decisions: dict[str, Decision[Any]] = {}
    state = await graph.aget_state(config)
    if not state.values and not state.next:
        await graph.ainvoke(graph_input, config)
    elif state.next and not state.interrupts:
        await graph.ainvoke(None, config)  # a step was under way when the process stopped
    while True:
        state = await graph.aget_state(config)
        ours, foreign = await _units(sg, config, state.interrupts, hitl_assignee, hitl_timeout)
        if not ours:
            return Driven(state.values, foreign, decisions)
        if on_waiting is not None:
            on_waiting(sorted({cp for unit in ours.values() for cp in unit.checkpoint_ids}))
        decided = await _first_decided(sg, ours, timeout)
        for unit_decisions in decided.values():
            decisions.update({d.checkpoint_id: d for d in unit_decisions})
        resume = {i: ours[i].answer(ds) for i, ds in decided.items()}
        await graph.ainvoke(Command(resume=resume), config)


@dataclass(frozen=True)
class _Unit:
    """One interrupt to resume: its checkpoints, and how their decisions become its answer."""

    checkpoint_ids: list[str]
    answer: Callable[[list[Decision[Any]]], Any]


async def _units(
    sg: AsyncSignoff,
    config: Any,
    interrupts: Sequence[Interrupt],
    hitl_assignee: Assignee | None,
    hitl_timeout: str | None,
) -> tuple[dict[str, _Unit], list[Interrupt]]:
    ours: dict[str, _Unit] = {}
    foreign: list[Interrupt] = []
    checkpoints = signoff_interrupts(interrupts)
    for item in interrupts:
        if item.id in checkpoints:
            ours[item.id] = _Unit([checkpoints[item.id]], lambda ds: _wire(ds[0]))
            continue
        request = parse_hitl(item.value) if hitl_assignee is not None else None
        if request is None or hitl_assignee is None:
            foreign.append(item)
            continue
        thread = (config.get("configurable") or {}).get("thread_id", "")
        ids = []
        for index, action in enumerate(request.actions):
            cp = await sg.checkpoints.create(
                action.description,
                key=f"langgraph-hitl:{thread}:{item.id}:{index}",
                assignee=hitl_assignee,
                show={"action": action.name, "args": action.args},
                proposed=action.args,
                response_schema=_args_schema(action.args) if action.edit else None,
                options=request.options(action),
                timeout=hitl_timeout,
            )
            ids.append(cp.id)
        ours[item.id] = _Unit(ids, request.answer)
    return ours, foreign


_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number"}


def _args_schema(args: dict[str, Any]) -> dict[str, Any]:
    """A schema that lets a person edit an action's arguments (typed as they came)."""
    properties = {k: {"type": _TYPES.get(type(v), "string")} for k, v in args.items()}
    return {"type": "object", "properties": properties, "required": sorted(args)}


async def _first_decided(
    sg: AsyncSignoff, pending: dict[str, _Unit], timeout: float | None
) -> dict[str, list[Decision[Any]]]:
    """Wait for the pending interrupts; return those fully decided once the first is."""

    async def decided(unit: _Unit) -> list[Decision[Any]]:
        return list(
            await asyncio.gather(*(sg.checkpoints.wait(cp, timeout=timeout) for cp in unit.checkpoint_ids))
        )

    tasks = {interrupt_id: asyncio.create_task(decided(unit)) for interrupt_id, unit in pending.items()}
    try:
        await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_COMPLETED)
        return {i: t.result() for i, t in tasks.items() if t.done()}
    finally:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
