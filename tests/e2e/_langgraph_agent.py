"""An agent process for the LangGraph tests: a graph that drafts a note, asks a manager through
Signoff, and sends the approved note (appending a line to a file, so a test counts sends).

``python -m tests.e2e._langgraph_agent BASE_URL KEY CHECKPOINTS_DB THREAD SENT_FILE`` prints
``waiting <checkpoint ids>`` before each wait and ``done <json>`` at the end.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any, TypedDict

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel

from signoff_client import AsyncSignoff
from signoff_client.langgraph import checkpoint, drive


class Note(BaseModel):
    """What the manager approves or edits."""

    message: str


class State(TypedDict, total=False):
    customer: str
    note: str
    outcome: str
    sent: str


def build(sg: AsyncSignoff, sent_file: Path, saver: AsyncSqliteSaver) -> Any:
    """The compiled graph."""

    async def draft(state: State) -> State:
        return {"note": f"We refunded {state['customer']}."}

    async def approve(state: State) -> State:
        decision = await checkpoint(
            sg,
            f"Send this note to {state['customer']}?",
            assignee="role:manager",
            show={"customer": state["customer"]},
            proposed=Note(message=state["note"]),
            response_model=Note,
        )
        return {"outcome": decision.outcome, "note": decision.data.message if decision.data else ""}

    async def send(state: State) -> State:
        with sent_file.open("a", encoding="utf-8") as out:
            out.write(state["note"] + "\n")
        return {"sent": state["note"]}

    graph = StateGraph(State)
    graph.add_node("draft", draft)
    graph.add_node("approve", approve)
    graph.add_node("send", send)
    graph.add_edge(START, "draft")
    graph.add_edge("draft", "approve")
    graph.add_conditional_edges(
        "approve", lambda s: "send" if s["outcome"] in {"approved", "edited"} else END
    )
    graph.add_edge("send", END)
    return graph.compile(checkpointer=saver)


async def main(base: str, key: str, db: str, thread: str, sent_file: str) -> None:
    def waiting(ids: list[str]) -> None:
        sys.stdout.write("waiting " + " ".join(ids) + "\n")
        sys.stdout.flush()

    async with AsyncSignoff(base, key) as sg, AsyncSqliteSaver.from_conn_string(db) as saver:
        graph = build(sg, Path(sent_file), saver)
        config = {"configurable": {"thread_id": thread}}
        result = await drive(graph, {"customer": "ACME"}, config, sg, on_waiting=waiting)
        sys.stdout.write("done " + json.dumps(result.values) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
