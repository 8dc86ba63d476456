"""Prompts and notify texts are the author's Slack markup; the data they interpolate is inert."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engine.commands import Decide
from engine.templates import TemplateFailure, compile_value, render_markup, render_value
from tests.unit.engine.conftest import World

FORGED = "<!channel> <https://evil.example|https://bank.example>\n*Account*\nDE89-REAL-PAYROLL"

PAY = """\
id: pay
inputs:
  type: object
  properties: {customer: {type: string}, account: {type: string}}
  required: [customer, account]
nodes:
  - id: approve
    type: human
    prompt: "Pay *{{ inputs.customer }}* now? <https://docs.example/pay|How we pay>"
    proposed: {account: "{{ inputs.account }}"}
    response_schema: {type: object, properties: {account: {type: string}}}
    assignee: user:mia
  - id: tell
    type: notify
    text: "Paid *{{ inputs.customer }}* to {{ nodes.approve.data.account }}."
edges:
  - {from: approve, to: tell}
"""


def test_the_authors_markup_stays_and_interpolated_data_is_inert() -> None:
    out = render_markup(
        compile_value("Pay *{{ who }}*: {{ n }} {{ items }}"), {"who": FORGED, "n": 3, "items": [1]}
    )
    assert out.startswith("Pay *&lt;!channel&gt; &lt;https://evil.example\uff5chttps://bank.example&gt;")
    assert out.count("*") == 2, "only the author's bold"
    assert "\n" not in out
    assert out.endswith(": 3 [1]")
    # a template that is one expression renders to text on this path too
    assert render_markup(compile_value("{{ who }}"), {"who": "*x*"}) == "\uff0ax\uff0a"
    assert render_markup("no template *here*", {}) == "no template *here*"
    # the plain path is unchanged: data for nodes keeps its characters and its type
    assert render_value(compile_value("{{ who }}"), {"who": FORGED}) == FORGED
    with pytest.raises(TemplateFailure, match="'nope' is undefined"):
        render_markup(compile_value("Hi {{ nope }}"), {})


async def test_a_checkpoint_prompt_and_a_notify_text_carry_no_markup_from_data(
    make_world: Callable[..., World],
) -> None:
    w = make_world(PAY)
    run = await w.engine.start("pay", {"customer": FORGED, "account": "DE00-1"}, requester="alice")
    await w.engine.drive(run.id)
    [cp] = await w.store.list_checkpoints(run_id=run.id, open_only=True)
    assert cp.prompt.count("*") == 2
    assert "<https://docs.example/pay|How we pay>" in cp.prompt, "the author may link"
    for raw in ("<!channel>", "<https://evil", "\n*Account*"):
        assert raw not in cp.prompt
    await w.engine.decide(Decide(checkpoint_id=cp.id, action="approve", actor="mia"))
    [notify] = [d for d in await w.store.list_deliveries(run_id=run.id) if d.kind == "notify"]
    text = str(notify.payload["text"])
    assert text.count("*") == 2
    assert text.endswith(" to DE00-1.")
    for raw in ("<!channel>", "<https://evil", "\n*Account*"):
        assert raw not in text
