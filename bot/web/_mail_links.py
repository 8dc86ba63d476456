"""The page behind a mailed decision link (private).

``GET /mail/decide/{token}`` only shows the request (``engine.shown.shown_document``) and its
buttons: mail scanners and link previewers fetch links, and nothing they do decides. Only the
``POST`` from that page, with the page's CSRF token, uses the link (once: a compare-and-set on
its ``login_tokens`` row) and decides, through the one gate (``Engine.decide``) with the
link's checkpoint version as ``expected_version``, as the person the link was mailed to. A
link for an older version shows the current proposal instead of deciding.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aiohttp import web

from bot.mail import DecisionLinks, LinkClaim
from bot.web._views import CONTAINER, PERSON, drive_soon, render
from engine.commands import Decide
from engine.errors import Conflict, InvalidInput, NeedsDetail, NotAllowed
from engine.model import Checkpoint, CheckpointStatus, Delivery
from engine.people import actor_of
from engine.ports import AuditDraft
from engine.shown import shown_document, shown_hash

__all__ = ["MAIL_LINKS", "link_decide", "link_page"]

MAIL_LINKS = web.AppKey("signoff.web.mail_links", DecisionLinks)
_BAD = "This decision link is not valid: it was changed or cut short. Use the link from the mail as it is."
_EXPIRED = "This decision link has expired. The request is still in the console, or wait for a reminder."
_USED = "This decision link was already used (a link decides once), or has expired. Nothing was decided now."
_NO_CODE = "Type the one-time code from the mail (it is not in the link). Nothing was decided."
_WRONG_CODE = (
    "That code is not the one in the mail, so nothing was decided and this link no longer works. "
    "A new mail with a new link and code is on its way to the address it was sent to."
)
# options a link can decide; edit and answer need the console's form
_SIMPLE = frozenset({"approve", "reject"})


def _options(cp: Checkpoint) -> list[str]:
    return [o for o in cp.options if o not in {"edit", "answer"}]


def _page(
    request: web.Request,
    *,
    status: int = 200,
    cp: Checkpoint | None = None,
    claim: LinkClaim | None = None,
    action: str = "",
    error: str = "",
    notice: str = "",
    done: str = "",
    comment: str = "",
) -> web.Response:
    values: dict[str, Any] = {
        "cp": cp,
        "shown": shown_document(cp) if cp is not None else None,
        "seen": shown_hash(cp) if cp is not None else "",
        "claim": claim,
        "action": action,
        "options": _options(cp) if cp is not None else [],
        "error": error,
        "notice": notice,
        "done": done,
        "comment": comment,
        "console": f"/checkpoints/{cp.id}" if cp is not None else "/",
    }
    return render(request, "mail_decide.html", status=status, **values)


def _claim(request: web.Request) -> tuple[LinkClaim | None, web.Response | None]:
    claim = request.app[MAIL_LINKS].read(request.match_info["token"])
    if claim is None:
        return None, _page(request, status=400, error=_BAD)
    if claim.expired(request.app[CONTAINER].clock.now()):
        return None, _page(request, status=400, error=_EXPIRED)
    person = request.get(PERSON)
    if person is not None and claim.principal not in person.principals:
        error = (
            f"This link was mailed to {claim.principal.removeprefix('email:')}, and you are signed in "
            f"as {person.name or person.actor}. Nothing was decided; open it signed in as its owner, "
            "or decide in the console as yourself."
        )
        return None, _page(request, status=403, error=error)
    return claim, None


def _not_open(request: web.Request, cp: Checkpoint, claim: LinkClaim) -> web.Response | None:
    """A page instead of the form when the request is closed or changed since the mail."""
    if cp.status is not CheckpointStatus.open:
        outcome = cp.outcome.value if cp.outcome is not None else "closed"
        return _page(request, status=409, cp=cp, error=f"This request was already decided ({outcome}).")
    if claim.version < cp.content_version:
        notice = (
            "This request changed after the mail was sent, so this link no longer decides it. "
            "This is the current proposal; decide it in the console, or with the link of a newer mail."
        )
        return _page(request, status=409, cp=cp, notice=notice)
    return None


async def _correct(
    request: web.Request, cp: Checkpoint, claim: LinkClaim, why: str, comment: str
) -> web.Response:
    """Nothing was decided: the page again, posting to a fresh link of the same scope."""
    again = await request.app[MAIL_LINKS].again(claim, request.app[CONTAINER].clock.now())
    action = request.path.rsplit("/", 1)[0] + "/" + again
    renewed = replace(claim, needs_code=False)  # the code was right: the fresh link needs none
    return _page(request, status=400, cp=cp, claim=renewed, action=action, error=why, comment=comment)


async def _mail_again(request: web.Request, cp: Checkpoint, claim: LinkClaim) -> None:
    """After a wrong code: an audit event, and a new mail (link and code) to the link's owner."""
    c = request.app[CONTAINER]
    now = c.clock.now()
    row = Delivery(
        id=c.ids.new("dlv_"),
        run_id=cp.run_id,
        checkpoint_id=cp.id,
        kind="checkpoint",
        target=claim.principal,
        payload={"role": "assignee", "again": "wrong code"},
        next_attempt_at=now,
        created_at=now,
    )
    audit = AuditDraft(
        at=now,
        actor=actor_of(claim.principal),
        channel="email",
        kind="decision.code_refused",
        run_id=cp.run_id,
        checkpoint_id=cp.id,
        payload={"principal": claim.principal, "version": claim.version},
    )
    await c.store.add_deliveries([row], [audit])
    c.engine.changed(cp.run_id)  # the outbox sends it now


async def link_page(request: web.Request) -> web.Response:
    """The request and its buttons. A GET uses nothing and decides nothing."""
    claim, refused = _claim(request)
    if claim is None:
        return refused or _page(request, status=400, error=_BAD)
    cp = await request.app[CONTAINER].store.get_checkpoint(claim.checkpoint_id)
    return _not_open(request, cp, claim) or _page(request, cp=cp, claim=claim, action=request.path)


async def link_decide(request: web.Request) -> web.Response:
    """The page's button: use the link once and decide as the person it was mailed to."""
    c = request.app[CONTAINER]
    claim, refused = _claim(request)
    if claim is None:
        return refused or _page(request, status=400, error=_BAD)
    cp = await c.store.get_checkpoint(claim.checkpoint_id)
    closed = _not_open(request, cp, claim)
    if closed is not None:
        return closed
    form = await request.post()
    choice = str(form.get("decision", ""))
    comment = str(form.get("comment", "")).strip()
    if choice not in _options(cp):
        return _page(
            request, status=400, cp=cp, claim=claim, action=request.path, error="Pick one of the buttons."
        )
    links = request.app[MAIL_LINKS]
    used = await links.use(claim, c.clock.now(), str(form.get("code", "")))
    if used == "no_code":
        return _page(
            request, status=400, cp=cp, claim=claim, action=request.path, error=_NO_CODE, comment=comment
        )
    if used == "wrong_code":
        await _mail_again(request, cp, claim)
        return _page(request, status=403, cp=cp, error=_WRONG_CODE)
    if used != "ok":
        return _page(request, status=400, cp=cp, error=_USED)
    command = Decide(
        checkpoint_id=cp.id,
        action=choice,
        actor=actor_of(claim.principal),
        channel="email",
        comment=comment or None,
        confirm=str(form.get("confirm", "")).strip() or None,
        expected_version=claim.version,
        seen=shown_hash(cp),
    )
    try:
        decision = await c.engine.decide(command, drive=False)
    except (InvalidInput, NeedsDetail) as exc:
        why = exc.question if isinstance(exc, NeedsDetail) else str(exc)
        return await _correct(request, cp, claim, why, comment)
    except NotAllowed as exc:
        if exc.rule == "confirm_word":  # a mistyped word: the person may type it again
            return await _correct(request, cp, claim, f"Nothing was decided: {exc}", comment)
        return _page(request, status=403, cp=cp, error=f"Nothing was decided: {exc}")
    except Conflict as exc:
        fresh = await c.store.get_checkpoint(cp.id)
        return _not_open(request, fresh, claim) or _page(request, status=409, cp=fresh, error=str(exc))
    if decision is not None:
        await drive_soon(request.app, cp.run_id)
    done = f"Your decision ({choice}) was recorded." if choice in _SIMPLE else f"You chose {choice}."
    return _page(request, cp=await c.store.get_checkpoint(cp.id), done=done)
