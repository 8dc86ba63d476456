"""Signoff next to its peers, measured in one invocation, in alternating rounds.

    pip install -e '.[bench]'        # langgraph + its SQLite checkpointer, dbos, holdpoint
    python bench/peers.py --json [--rounds 3] [--chains 100] [--cycles 200]

The same workload shapes run on every system that is installed, one system after another inside
each round, so that a busy machine slows all of them alike; each figure is the median over the
rounds, and ``ratio_to_signoff`` divides the peer's figure by Signoff's (for a time, a ratio
above 1 means the peer is slower; for a rate, below 1).

Shapes, all durable on a SQLite file with synchronous commits:

* ``per_node_us``: a ten-node chain of trivial steps, total time per node.
* ``cycles_per_s``: start, pause for a person, decide, resume, finish, one after another.
  Signoff: the ``gate`` workflow of bench/engine.py. LangGraph: ``interrupt()`` and
  ``Command(resume=...)``. DBOS: a workflow that waits on ``DBOS.recv`` and a ``DBOS.send``.
  holdpoint (an approval queue, no engine): a guarded call and its approval.
* ``pauses_per_s`` / ``resumes_per_s``: the two halves of a cycle, measured in bulk.

A peer that is not installed is reported as ``"missing"``, never guessed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

Figures = dict[str, float]


# --- Signoff ---------------------------------------------------------------------------------


def signoff_round(tmp: Path, chains: int, cycles: int) -> Figures:
    from bench.engine import _container
    from engine.commands import Decide

    async def go() -> Figures:
        c = await _container(f"sqlite:///{tmp}/signoff.db", tmp)
        try:
            engine = c.engine
            t0 = time.perf_counter()
            for i in range(chains):
                run = await engine.start("chain", {"x": i}, requester="bench")
                await engine.drive(run.id)
            per_node = (time.perf_counter() - t0) / (chains * 10) * 1e6

            t0 = time.perf_counter()
            for i in range(cycles):
                run = await engine.start("gate", {"x": i}, requester="bench")
                await engine.drive(run.id)
            pauses = cycles / (time.perf_counter() - t0)
            cps = await c.store.list_checkpoints(open_only=True, limit=cycles * 2)
            t0 = time.perf_counter()
            for cp in cps:
                await engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="approver"))
            resumes = len(cps) / (time.perf_counter() - t0)

            t0 = time.perf_counter()
            for i in range(cycles):
                run = await engine.start("gate", {"x": i}, requester="bench")
                await engine.drive(run.id)
                [cp] = await c.store.list_checkpoints(run_id=run.id, open_only=True)
                await engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="approver"))
            whole = cycles / (time.perf_counter() - t0)
            return _figures(per_node, pauses, resumes, whole)
        finally:
            await c.close()

    return asyncio.run(go())


def _figures(per_node: float | None, pauses: float, resumes: float, cycles: float) -> Figures:
    out = {"pauses_per_s": pauses, "resumes_per_s": resumes, "cycles_per_s": cycles}
    if per_node is not None:
        out["per_node_us"] = per_node
    return out


# --- LangGraph (SQLite checkpointer, durability="sync") --------------------------------------


def langgraph_round(tmp: Path, chains: int, cycles: int) -> Figures:
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Command, interrupt
    from typing_extensions import TypedDict

    class State(TypedDict, total=False):
        x: int
        v: str
        ok: bool

    conn = sqlite3.connect(tmp / "langgraph.db", check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()

    chain_b = StateGraph(State)
    for i in range(10):
        chain_b.add_node(f"n{i}", lambda s, i=i: {"v": f"{s['x']}-{i}"})
    chain_b.add_edge(START, "n0")
    for i in range(9):
        chain_b.add_edge(f"n{i}", f"n{i + 1}")
    chain_b.add_edge("n9", END)
    chain = chain_b.compile(checkpointer=saver)

    def ask(state: State) -> State:
        return {"ok": bool(interrupt({"question": f"ok {state['x']}?"}))}

    gate_b = StateGraph(State)
    gate_b.add_node("a", lambda s: {"v": str(s["x"])})
    gate_b.add_node("h", ask)
    gate_b.add_node("b", lambda s: {"v": "done"})
    gate_b.add_edge(START, "a")
    gate_b.add_edge("a", "h")
    gate_b.add_edge("h", "b")
    gate_b.add_edge("b", END)
    gate = gate_b.compile(checkpointer=saver)

    def cfg(tid: str) -> Any:
        return {"configurable": {"thread_id": tid}}

    try:
        t0 = time.perf_counter()
        for i in range(chains):
            chain.invoke({"x": i}, cfg(f"c{i}"), durability="sync")
        per_node = (time.perf_counter() - t0) / (chains * 10) * 1e6

        t0 = time.perf_counter()
        for i in range(cycles):
            gate.invoke({"x": i}, cfg(f"p{i}"), durability="sync")
        pauses = cycles / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for i in range(cycles):
            gate.invoke(Command(resume=True), cfg(f"p{i}"), durability="sync")
        resumes = cycles / (time.perf_counter() - t0)

        t0 = time.perf_counter()
        for i in range(cycles):
            gate.invoke({"x": i}, cfg(f"w{i}"), durability="sync")
            gate.invoke(Command(resume=True), cfg(f"w{i}"), durability="sync")
        whole = cycles / (time.perf_counter() - t0)
        return _figures(per_node, pauses, resumes, whole)
    finally:
        conn.close()


# --- DBOS (SQLite system database) -----------------------------------------------------------

_DBOS: dict[str, Any] = {}


def _dbos(tmp: Path) -> dict[str, Any]:
    """DBOS is a process-wide singleton: configure and launch it once, on the first round's file."""
    if _DBOS:
        return _DBOS
    from dbos import DBOS

    DBOS(
        config={
            "name": "signoff-bench",
            "system_database_url": f"sqlite:///{tmp}/dbos.db",
            "log_level": "WARNING",
        }
    )

    @DBOS.step()
    def step(x: int, i: int) -> str:
        return f"{x}-{i}"

    @DBOS.workflow()
    def chain(x: int) -> str:
        v = ""
        for i in range(10):
            v = step(x, i)
        return v

    @DBOS.workflow()
    def gate(x: int) -> bool:
        step(x, 0)
        ok = DBOS.recv("decision", timeout_seconds=60)
        step(x, 1)
        return bool(ok)

    DBOS.launch()
    _DBOS.update(DBOS=DBOS, chain=chain, gate=gate)
    return _DBOS


def dbos_round(tmp: Path, chains: int, cycles: int) -> Figures:
    d = _dbos(tmp)
    dbos, chain, gate = d["DBOS"], d["chain"], d["gate"]
    t0 = time.perf_counter()
    for i in range(chains):
        chain(i)
    per_node = (time.perf_counter() - t0) / (chains * 10) * 1e6

    # a pause is a workflow started and parked on recv; a resume is the send and the finish
    t0 = time.perf_counter()
    handles = [dbos.start_workflow(gate, i) for i in range(cycles)]
    pauses = cycles / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for h in handles:
        dbos.send(h.get_workflow_id(), True, "decision")
    for h in handles:
        h.get_result()
    resumes = cycles / (time.perf_counter() - t0)

    t0 = time.perf_counter()
    for i in range(cycles):
        h = dbos.start_workflow(gate, i)
        dbos.send(h.get_workflow_id(), True, "decision")
        h.get_result()
    whole = cycles / (time.perf_counter() - t0)
    return _figures(per_node, pauses, resumes, whole)


# --- holdpoint (an approval queue: no workflow, no steps) ------------------------------------


def holdpoint_round(tmp: Path, chains: int, cycles: int) -> Figures:
    from holdpoint import HoldPoint, SQLiteStore

    store = SQLiteStore(str(tmp / "holdpoint.db"))
    hold = HoldPoint(store=store)

    @hold.guard(kind="gate")
    def act(x: int) -> str:
        return f"done {x}"

    try:
        t0 = time.perf_counter()
        pending = [act(x=i) for i in range(cycles)]
        pauses = cycles / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for p in pending:
            hold.approve(p.id, actor="approver")
        resumes = cycles / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for i in range(cycles):
            hold.approve(act(x=i).id, actor="approver")
        whole = cycles / (time.perf_counter() - t0)
        return _figures(None, pauses, resumes, whole)
    finally:
        with contextlib.suppress(Exception):
            store.close()


PEERS: dict[str, tuple[str | None, Callable[[Path, int, int], Figures]]] = {
    "signoff": (None, signoff_round),
    "langgraph": ("langgraph.checkpoint.sqlite", langgraph_round),
    "dbos": ("dbos", dbos_round),
    "holdpoint": ("holdpoint", holdpoint_round),
}


def _installed(module: str | None) -> bool:
    if module is None:
        return True
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


@contextlib.contextmanager
def _dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="signoff-peers-") as tmp:
        yield Path(tmp)


def measure(rounds: int, chains: int, cycles: int, only: list[str] | None) -> dict[str, Any]:
    names = [n for n in PEERS if only is None or n in only or n == "signoff"]
    samples: dict[str, list[Figures]] = {n: [] for n in names}
    missing = [n for n in names if not _installed(PEERS[n][0])]
    with _dir() as root:
        for r in range(rounds):
            # alternate the order too, so no system always runs right after the same neighbour
            order = [n for n in names if n not in missing]
            if r % 2:
                order.reverse()
            for name in order:
                work = root / f"{name}-{r}"
                work.mkdir()
                samples[name].append(PEERS[name][1](work, chains, cycles))
    out: dict[str, Any] = {}
    for name in names:
        if name in missing:
            out[name] = "missing"
            continue
        keys = samples[name][0].keys()
        out[name] = {k: round(statistics.median(s[k] for s in samples[name]), 1) for k in keys}
    base = out["signoff"]
    for name in names:
        if name == "signoff" or out[name] == "missing":
            continue
        out[name]["ratio_to_signoff"] = {
            k: round(v / base[k], 2) for k, v in out[name].items() if base.get(k)
        }
    out["rounds"] = rounds
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chains", type=int, default=100, help="ten-node chains per round")
    parser.add_argument("--cycles", type=int, default=200, help="pause/decide cycles per round")
    parser.add_argument("--only", action="append", help="peer to include (repeatable); Signoff always runs")
    args = parser.parse_args()
    out = measure(args.rounds, args.chains, args.cycles, args.only)
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
