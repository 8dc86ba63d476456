"""The Retry button of a failed-run notice: the failed steps again in the same run when their
failure is retryable (``Engine.retry``: same idempotency keys), else a rerun from the failed
node (``engine.rerun``) reusing the earlier steps' outputs and decisions. Nobody is asked again."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from bot import messages
from bot.blocks.notices import RETRY
from bot.slack.deps import SlackDeps
from bot.slack.install import in_workspace
from bot.slack.listeners._common import Body, user_of, where
from engine.commands import Rerun, Retry
from engine.errors import Conflict, InvalidInput, NotAllowed, NotFound

__all__ = ["register"]


def register(app: AsyncApp, deps: SlackDeps) -> None:
    """Register the Retry button."""

    async def retry(ack: AsyncAck, body: Body, action: Body) -> None:
        await ack()
        user, run_id = user_of(body), str(action.get("value", ""))
        engine = deps.container.engine
        try:
            found = await deps.container.store.get_run(run_id)
        except NotFound:
            found = None
        if found is None or not in_workspace(found.team):  # another workspace's run does not exist here
            await deps.reply(user, messages.run_not_found(run_id), **where(body))
            return
        try:
            same = await engine.retry(Retry(run_id=run_id, actor=user, channel="slack"))
        except Conflict:
            same = None  # not retryable in place: a rerun instead
        except (NotFound, NotAllowed):
            same = None  # the rerun below says why, as it would
        if same is not None:
            await deps.reply(user, messages.retrying(run_id, same.pending), run_id=run_id, **where(body))
            await engine.drive(run_id)
            return
        try:
            new = await engine.rerun(Rerun(run_id=run_id, actor=user, channel="slack"))
        except NotFound:
            await deps.reply(user, messages.run_not_found(run_id), **where(body))
            return
        except (NotAllowed, Conflict, InvalidInput) as exc:
            await deps.reply(user, messages.not_allowed(str(exc)), **where(body))
            return
        notice = messages.rerun_started(run_id, new.id, str(new.origin.get("from", "")))
        await deps.reply(user, notice, run_id=new.id, **where(body))
        await engine.drive(new.id)

    app.action(RETRY)(retry)
