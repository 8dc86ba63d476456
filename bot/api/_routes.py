"""Every route of the API in one table: the handlers are mounted from it and the OpenAPI document
is generated from it, with the same pydantic models the handlers read and write."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from pydantic import BaseModel

from bot.api import _checkpoints, _control, _runs, _webhooks
from bot.api._models import (
    CheckpointCreate,
    CheckpointList,
    CheckpointOut,
    CheckpointPage,
    DecisionCreate,
    DecisionOut,
    DeliveryList,
    DeliveryOut,
    EndpointCreate,
    EndpointCreated,
    EndpointList,
    NoBody,
    Pending,
    RerunIn,
    RunCreate,
    RunList,
    RunOut,
    RunPage,
    RunResult,
    VoteRecorded,
    WaitQuery,
)

__all__ = ["OPERATIONS", "PREFIX", "Operation"]

PREFIX = "/api/v1"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Operation:
    """One route: how it is called, what it needs, what it answers."""

    method: str
    path: str
    handler: Handler
    name: str
    summary: str
    tag: str
    scope: str | None
    responses: tuple[tuple[int, type[BaseModel] | None, str], ...]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    idempotent: bool = False

    @property
    def url(self) -> str:
        """The full path, with ``{id}`` parameters."""
        return PREFIX + self.path


_CP = "checkpoints"
_RUNS = "runs"
_HOOKS = "webhooks"

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "POST",
        "/checkpoints",
        _checkpoints.create,
        "createCheckpoint",
        "Ask a person (a checkpoint without a workflow file); idempotent by key",
        _CP,
        "checkpoints:create",
        (
            (201, CheckpointOut, "Created"),
            (200, CheckpointOut, "The same key and request again: the same checkpoint"),
        ),
        body=CheckpointCreate,
        idempotent=True,
    ),
    Operation(
        "GET",
        "/checkpoints",
        _checkpoints.listing,
        "listCheckpoints",
        "Checkpoints, newest first (open ones by default)",
        _CP,
        "checkpoints:read",
        ((200, CheckpointPage, "A page"),),
        query=CheckpointList,
    ),
    Operation(
        "GET",
        "/checkpoints/{id}",
        _checkpoints.get,
        "getCheckpoint",
        "One checkpoint, with its decision once resolved",
        _CP,
        "checkpoints:read",
        ((200, CheckpointOut, "The checkpoint"),),
    ),
    Operation(
        "GET",
        "/checkpoints/{id}/decision",
        _checkpoints.wait_decision,
        "getDecision",
        "The decision (200), or 202 while open after waiting up to `wait` seconds",
        _CP,
        "checkpoints:read",
        ((200, DecisionOut, "Resolved"), (202, Pending, "Still open")),
        query=WaitQuery,
    ),
    Operation(
        "POST",
        "/checkpoints/{id}/decisions",
        _checkpoints.decide,
        "decideCheckpoint",
        "Decide as the person the key is bound to (through the decision gate)",
        _CP,
        "checkpoints:decide",
        ((200, DecisionOut, "Resolved"), (202, VoteRecorded, "A quorum vote or edit was recorded")),
        body=DecisionCreate,
    ),
    Operation(
        "POST",
        "/checkpoints/{id}/cancel",
        _checkpoints.cancel,
        "cancelCheckpoint",
        "Withdraw an ask (its requester or an admin)",
        _CP,
        "checkpoints:create",
        ((200, CheckpointOut, "Cancelled"),),
        body=NoBody,
    ),
    Operation(
        "POST",
        "/runs",
        _runs.create,
        "startRun",
        "Start a workflow run; idempotent by key",
        _RUNS,
        "runs:write",
        ((201, RunOut, "Started"), (200, RunOut, "The same key and request again: the same run")),
        body=RunCreate,
        idempotent=True,
    ),
    Operation(
        "GET",
        "/runs",
        _runs.listing,
        "listRuns",
        "Runs, newest first",
        _RUNS,
        "runs:read",
        ((200, RunPage, "A page"),),
        query=RunList,
    ),
    Operation(
        "GET", "/runs/{id}", _runs.get, "getRun", "One run", _RUNS, "runs:read", ((200, RunOut, "The run"),)
    ),
    Operation(
        "GET",
        "/runs/{id}/result",
        _runs.result,
        "getRunResult",
        "The result once the run ended (200), or 202 after waiting up to `wait` seconds",
        _RUNS,
        "runs:read",
        ((200, RunResult, "Ended"), (202, RunOut, "Not ended yet")),
        query=WaitQuery,
    ),
    Operation(
        "POST",
        "/runs/{id}/cancel",
        _runs.cancel,
        "cancelRun",
        "Cancel a run (its requester or an admin)",
        _RUNS,
        "runs:write",
        ((200, RunOut, "Cancelled"),),
        body=NoBody,
    ),
    Operation(
        "POST",
        "/runs/{id}/pause",
        _control.pause,
        "pauseRun",
        "Pause a run before its next step; it still takes decisions (its requester or an admin)",
        _RUNS,
        "runs:write",
        ((200, RunOut, "Paused"),),
        body=NoBody,
    ),
    Operation(
        "POST",
        "/runs/{id}/resume",
        _control.resume,
        "resumeRun",
        "Resume a paused run (its requester or an admin)",
        _RUNS,
        "runs:write",
        ((200, RunOut, "Resumed"),),
        body=NoBody,
    ),
    Operation(
        "POST",
        "/runs/{id}/rerun",
        _control.rerun,
        "rerunRun",
        "A new run linked to an ended one, reusing its steps and decisions before `from`",
        _RUNS,
        "runs:write",
        ((201, RunOut, "Started"),),
        body=RerunIn,
    ),
    Operation(
        "POST",
        "/webhook-endpoints",
        _webhooks.create,
        "createWebhookEndpoint",
        "Subscribe a URL to events; the secret is shown once",
        _HOOKS,
        "webhooks:manage",
        ((201, EndpointCreated, "Created"),),
        body=EndpointCreate,
    ),
    Operation(
        "GET",
        "/webhook-endpoints",
        _webhooks.listing,
        "listWebhookEndpoints",
        "The caller's webhook endpoints",
        _HOOKS,
        "webhooks:manage",
        ((200, EndpointList, "Endpoints"),),
    ),
    Operation(
        "DELETE",
        "/webhook-endpoints/{id}",
        _webhooks.delete,
        "deleteWebhookEndpoint",
        "Stop sending to an endpoint",
        _HOOKS,
        "webhooks:manage",
        ((204, None, "Deleted"),),
    ),
    Operation(
        "POST",
        "/webhook-endpoints/{id}/rotate",
        _webhooks.rotate,
        "rotateWebhookSecret",
        "A new secret; the previous one signs too for 24 hours",
        _HOOKS,
        "webhooks:manage",
        ((200, EndpointCreated, "Rotated"),),
        body=NoBody,
    ),
    Operation(
        "GET",
        "/webhook-endpoints/{id}/deliveries",
        _webhooks.deliveries,
        "listEndpointDeliveries",
        "The newest messages to one endpoint",
        _HOOKS,
        "webhooks:manage",
        ((200, DeliveryList, "Deliveries"),),
    ),
    Operation(
        "GET",
        "/callback-deliveries",
        _webhooks.callbacks,
        "listCallbackDeliveries",
        "The newest messages to the callback_urls this key named",
        _HOOKS,
        "webhooks:manage",
        ((200, DeliveryList, "Deliveries"),),
    ),
    Operation(
        "POST",
        "/webhook-deliveries/{id}/redeliver",
        _webhooks.redeliver,
        "redeliverWebhook",
        "Send one message again now (same webhook-id)",
        _HOOKS,
        "webhooks:manage",
        ((202, DeliveryOut, "Queued"),),
        body=NoBody,
    ),
)
