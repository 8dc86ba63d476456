"""``/signoff``: run, list, status, inbox, cancel, pause, resume, delegate, help.

Answers that need no database ride in the ack; the others are acked first and answered
through the outbox (``slack.reply``), so nothing slow happens before Slack's 3 s.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from bot import messages
from bot.blocks import forms
from bot.slack.deps import SlackDeps
from bot.slack.inbox import waiting_for
from bot.slack.install import in_workspace
from bot.slack.listeners._common import Body, user_of, where
from bot.slack.listeners._runs import ask_inputs, start_run
from engine.commands import Cancel, Pause, Resume
from engine.delegation import delegate, end_delegations
from engine.errors import Conflict, InvalidInput, NotAllowed, NotFound
from engine.inputs import coerce_inputs, parse_pairs
from engine.model import Run
from engine.outcome import run_outcome
from engine.sensitive import redact_run

__all__ = ["register"]

_Sub = Callable[[SlackDeps, AsyncAck, Body, str], Awaitable[None]]


def register(app: AsyncApp, deps: SlackDeps) -> None:
    """Register the ``/signoff`` command."""

    async def signoff(ack: AsyncAck, body: Body) -> None:
        sub, _, rest = str(body.get("text") or "").strip().partition(" ")
        handler = _SUBCOMMANDS.get(sub.lower() or "help")
        if handler is None:
            await ack(text=messages.unknown_command(sub).text)
            return
        await handler(deps, ack, body, rest.strip())

    app.command(messages.COMMAND)(signoff)


async def _help(deps: SlackDeps, ack: AsyncAck, body: Body, rest: str) -> None:
    await ack(text=messages.HELP)


async def _list(deps: SlackDeps, ack: AsyncAck, body: Body, rest: str) -> None:
    await ack(text=messages.workflow_list([(w.id, w.title) for w in deps.container.catalog.all()]).text)


async def _run(deps: SlackDeps, ack: AsyncAck, body: Body, rest: str) -> None:
    catalog = deps.container.catalog
    try:
        pairs, words = parse_pairs(rest)
    except InvalidInput as exc:
        await ack(text=messages.invalid_input({"": str(exc)}).text)
        return
    try:
        workflow = catalog.get(words[0]) if words else None
    except NotFound:
        await ack(text=messages.unknown_workflow(words[0], catalog.ids()).text)
        return
    if workflow is None or len(words) > 1:
        extra = {"": f"unexpected words: {' '.join(words[1:])}"} if workflow else {"": "name a workflow"}
        await ack(text=messages.invalid_input(extra).text)
        return
    values, errors = coerce_inputs(workflow.inputs, pairs)
    fields = forms.schema_fields(workflow.inputs)
    unknown = {k: v for k, v in errors.items() if k not in fields}
    if unknown:
        await ack(text=messages.invalid_input(unknown).text)
        return
    try:
        deps.container.engine.check_inputs(workflow, values)
    except InvalidInput as exc:
        errors = {**exc.errors, **errors}
    if "" in errors:
        await ack(text=messages.invalid_input(errors).text)
        return
    await ack()
    if errors:
        await ask_inputs(deps, body, workflow, values, [f for f in fields if f in errors])
        return
    await start_run(deps, body, workflow, values, channel=body.get("channel_id"))


async def _status(deps: SlackDeps, ack: AsyncAck, body: Body, rest: str) -> None:
    await ack()
    user, store = user_of(body), deps.container.store
    try:
        run = await _run_here(deps, rest)
    except NotFound:
        await deps.reply(user, messages.run_not_found(rest), **where(body))
        return
    checkpoints = await store.list_checkpoints(run_id=run.id)
    open_cps = [cp for cp in checkpoints if cp.status.value == "open"]
    shown = redact_run(await deps.container.engine.redactor(run), run)  # its reason may quote data
    notice = messages.run_status(shown, open_cps, run_outcome(run, checkpoints))
    await deps.reply(user, notice, run_id=run.id, **where(body))


async def _run_here(deps: SlackDeps, run_id: str) -> Run:
    """The run, unless it is missing or another workspace's (not shown, nor said to exist).

    Raises:
        NotFound: either way.
    """
    run = await deps.container.store.get_run(run_id)
    if not in_workspace(run.team):
        raise NotFound(f"run {run_id} not found")
    return run


async def _inbox(deps: SlackDeps, ack: AsyncAck, body: Body, rest: str) -> None:
    await ack()
    user = user_of(body)
    waiting = await waiting_for(deps.container, deps.directory, user)
    if not waiting:
        await deps.reply(user, messages.empty_inbox(), **where(body))
        return
    await deps.reply(user, messages.waiting_list(waiting), **where(body))


async def _cancel(deps: SlackDeps, ack: AsyncAck, body: Body, rest: str) -> None:
    await ack()
    user = user_of(body)
    try:
        await _run_here(deps, rest)
        run = await deps.container.engine.cancel(Cancel(run_id=rest, actor=user, channel="slack"))
    except NotFound:
        notice = messages.run_not_found(rest)
    except NotAllowed as exc:
        notice = messages.not_allowed(str(exc))
    except Conflict as exc:
        notice = messages.run_finished(rest, str(exc).rsplit("(", 1)[-1].rstrip(")"))
    else:
        notice = messages.cancelled(run.id)
    await deps.reply(user, notice, **where(body))


async def _pause(deps: SlackDeps, ack: AsyncAck, body: Body, rest: str) -> None:
    await ack()
    user = user_of(body)
    try:
        await _run_here(deps, rest)  # another workspace's run is not said to exist
        run = await deps.container.engine.pause(Pause(run_id=rest, actor=user, channel="slack"))
    except (NotFound, NotAllowed, Conflict) as exc:
        notice = _refused(rest, exc)
    else:
        notice = messages.paused(run.id)
    await deps.reply(user, notice, **where(body))


async def _resume(deps: SlackDeps, ack: AsyncAck, body: Body, rest: str) -> None:
    await ack()
    user = user_of(body)
    engine = deps.container.engine
    try:
        await _run_here(deps, rest)
        run = await engine.resume(Resume(run_id=rest, actor=user, channel="slack"))
    except (NotFound, NotAllowed, Conflict) as exc:
        await deps.reply(user, _refused(rest, exc), **where(body))
        return
    await deps.reply(user, messages.resumed(run.id), **where(body))
    await engine.drive(run.id)


def _refused(run_id: str, exc: NotFound | NotAllowed | Conflict) -> messages.Notice:
    if isinstance(exc, NotFound):
        return messages.run_not_found(run_id)
    if isinstance(exc, NotAllowed):
        return messages.not_allowed(str(exc))
    return messages.run_state(str(exc))


_MENTION = re.compile(r"^<@([A-Z0-9]+)(?:\|[^>]*)?>$")


def _delegation_args(rest: str) -> tuple[str, date] | None:
    words = rest.split()
    if len(words) != 3 or words[1].lower() != "until":
        return None
    mention = _MENTION.match(words[0])
    try:
        last_day = date.fromisoformat(words[2])
    except ValueError:
        return None
    return (mention.group(1), last_day) if mention else None


async def _delegate(deps: SlackDeps, ack: AsyncAck, body: Body, rest: str) -> None:
    if rest.strip().lower() in {"off", "end", "stop"}:
        await ack()
        user = user_of(body)
        ended = await end_delegations(deps.container.engine, delegator=user, actor=user, channel="slack")
        await deps.reply(user, messages.delegation_ended([d.delegate for d in ended]), **where(body))
        return
    parsed = _delegation_args(rest)
    if parsed is None:
        await ack(text=messages.bad_delegation().text)
        return
    await ack()
    user = user_of(body)
    to, last_day = parsed
    # "until 2026-12-01" includes that day: the delegation ends at the next midnight UTC
    until = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    try:
        await delegate(deps.container.engine, delegator=user, to=to, until=until, actor=user, channel="slack")
    except InvalidInput as exc:
        await deps.reply(user, messages.invalid_input(exc.errors), **where(body))
        return
    except NotAllowed as exc:
        await deps.reply(user, messages.not_allowed(str(exc)), **where(body))
        return
    await deps.reply(
        user, messages.delegation_set(to, f"{last_day.isoformat()} (end of day, UTC)"), **where(body)
    )


_SUBCOMMANDS: dict[str, _Sub] = {
    "help": _help,
    "list": _list,
    "run": _run,
    "status": _status,
    "inbox": _inbox,
    "cancel": _cancel,
    "pause": _pause,
    "resume": _resume,
    "delegate": _delegate,
}
