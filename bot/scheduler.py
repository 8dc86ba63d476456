"""Timers: APScheduler (AsyncIOScheduler, SQLAlchemy job store on the same database) turns
checkpoint deadlines and reminders into engine calls.

The checkpoint's ``due_at`` stays the source of truth. Jobs are a schedule of *when to look*:
firing is idempotent, so a job that runs twice (two replicas), late (after a restart) or after a
person decided changes nothing. On start-up, and every ``reconcile_s``, each process reconciles:
overdue deadlines fire now, missing jobs are created, jobs of closed checkpoints are removed.

A checkpoint opened by another process (a CLI run, another replica) is planned at once, through
the path decisions use to cross processes: on PostgreSQL the commit that opens it sends a
``NOTIFY`` (``storage._listen``) that wakes this process's ``LISTEN`` connection; on SQLite,
which cannot tell, the planning loop reads the audit tail every ``poll_s`` (its head is one
row) and plans the runs of new ``checkpoint.opened`` events.

APScheduler stores jobs by reference (``module:function``) with picklable arguments, so the job
functions below find this process's ``Timeouts`` through a module-level registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.util import datetime_to_utc_timestamp

from engine.clients import ChangeFeed
from engine.model import Checkpoint
from engine.timeouts import Timeouts, timer_plan

__all__ = ["Timers"]

log = logging.getLogger("signoff.timers")
_ACTIVE: dict[str, Timeouts] = {}
JOB_TABLE = "signoff_timer_jobs"
_OPENED = "checkpoint.opened"
_BACKLOG = 1000  # more new audit events than this at once: reconcile instead of reading them


async def fire_deadline_job(scope: str, checkpoint_id: str, level: int) -> None:
    """APScheduler entry point: a checkpoint's deadline may have passed."""
    timeouts = _ACTIVE.get(scope)
    if timeouts is not None:
        outcome = await timeouts.fire_deadline(checkpoint_id, level)
        log.info("deadline of %s (level %d): %s", checkpoint_id, level, outcome)


async def reminder_job(scope: str, checkpoint_id: str, index: int) -> None:
    """APScheduler entry point: time for reminder ``index``."""
    timeouts = _ACTIVE.get(scope)
    if timeouts is not None:
        await timeouts.send_reminder(checkpoint_id, index)


class _BatchingJobStore(SQLAlchemyJobStore):  # type: ignore[misc]
    """The SQLAlchemy job store, able to insert many new jobs in one transaction.

    Reconciling 10,000 open checkpoints would otherwise cost 10,000 commits at start-up.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.batch: list[Any] | None = None

    def add_job(self, job: Any) -> None:
        if self.batch is None:
            super().add_job(job)
        else:
            self.batch.append(job)

    def flush(self, jobs: list[Any]) -> None:
        """Insert ``jobs`` in one transaction; on a clash (another replica), one by one."""
        if not jobs:
            return
        rows = [
            {
                "id": job.id,
                "next_run_time": datetime_to_utc_timestamp(job.next_run_time),
                "job_state": pickle.dumps(job.__getstate__(), self.pickle_protocol),
            }
            for job in jobs
        ]
        try:
            with self.engine.begin() as connection:
                connection.execute(self.jobs_t.insert(), rows)
        except Exception:  # an id another process inserted meanwhile: fall back to upserts
            for job in jobs:
                try:
                    super().add_job(job)
                except ConflictingIdError:
                    self.update_job(job)


def _engine_options(url: str) -> dict[str, object]:
    # our own store holds SQLite's write lock for short transactions: wait instead of failing
    return {"connect_args": {"timeout": 30}} if url.startswith("sqlite") else {"pool_pre_ping": True}


class Timers:
    """Schedules deadline and reminder jobs for open checkpoints.

    Args:
        timeouts: fires deadlines and reminders through the engine.
        job_store_url: the database of the job store.
        scope: names this instance's ``Timeouts`` for the job functions.
        reconcile_s: how often everything is reconciled.
        feed: other processes' commits (PostgreSQL ``LISTEN``); without one that listens, the
            audit tail is read every ``poll_s`` seconds instead.
    """

    def __init__(
        self,
        timeouts: Timeouts,
        job_store_url: str,
        *,
        scope: str = "default",
        reconcile_s: float = 30.0,
        feed: ChangeFeed | None = None,
        poll_s: float = 0.25,
    ) -> None:
        self.timeouts = timeouts
        self.feed = feed
        self.poll_s = poll_s
        self._stop_feed: Callable[[], Awaitable[None]] | None = None
        self._seq: int | None = None  # the audit tail read so far (None: not following it)
        self._resync = False  # reconcile at the next turn of the loop
        self.store = timeouts.store
        self.clock = timeouts.engine.clock
        self.scope = scope
        self.reconcile_s = reconcile_s
        self.jobstore = _BatchingJobStore(
            url=job_store_url, tablename=JOB_TABLE, engine_options=_engine_options(job_store_url)
        )
        self.scheduler = AsyncIOScheduler(
            jobstores={"default": self.jobstore},
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
            timezone="UTC",
        )
        self._known: set[str] = set()
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Start the scheduler after a first reconciliation; returns how many jobs were added."""
        _ACTIVE[self.scope] = self.timeouts
        if self.feed is not None:
            self._stop_feed = await self.feed.subscribe(self._notified)
        if self._stop_feed is None:
            self._seq = (await self.store.audit_head())[0]  # before the reconciliation: nothing missed
        self.scheduler.start(paused=True)
        added = await self.reconcile()
        self.scheduler.resume()
        self._task = asyncio.create_task(self._loop(), name="signoff-timers")
        return added

    async def stop(self) -> None:
        """Stop the loop and the scheduler (jobs stay in the job store)."""
        self._stopping = True  # ends the loop even if a cancellation were lost
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            # not ``suppress(CancelledError)`` around ``await self._task``: that would also
            # swallow the cancellation of whoever is stopping us
            await asyncio.wait({self._task})
        if self._stop_feed is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop_feed(), 5.0)
            self._stop_feed = None
        self.scheduler.shutdown(wait=False)
        _ACTIVE.pop(self.scope, None)

    @property
    def running(self) -> bool:
        """True while the scheduler and the planning loop run (readiness)."""
        task = self._task
        return self.scheduler.state == STATE_RUNNING and task is not None and not task.done()

    def changed(self, run_id: str) -> None:
        """Engine observer: the run's checkpoints may have opened or moved; plan them soon."""
        self._dirty.add(run_id)
        self._wake.set()

    def _notified(self, run_id: str | None) -> None:
        """Another process committed a change to ``run_id`` (None: anything may have changed,
        after the ``LISTEN`` connection was lost)."""
        if run_id is None:
            self._resync = True
            self._wake.set()
        else:
            self.changed(run_id)

    async def _tail(self) -> None:
        """SQLite: the runs whose checkpoints other processes opened since the last look."""
        if self._seq is None:
            return
        head = (await self.store.audit_head())[0]
        if head <= self._seq:
            return
        if head - self._seq > _BACKLOG:
            self._seq, self._resync = head, True
            return
        for event in await self.store.audit_events(after_seq=self._seq):
            self._seq = max(self._seq, event.seq)
            if event.kind == _OPENED and event.run_id is not None:
                self._dirty.add(event.run_id)

    async def _loop(self) -> None:
        reconciled = polled = time.monotonic()
        while not self._stopping:
            # not ``asyncio.wait_for``: on Python 3.11 it swallows a cancellation that arrives as
            # the event is set (CPython gh-86296), and ``stop()`` then waited for this loop forever
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(0.2, self.poll_s)):
                    await self._wake.wait()
            if self._stopping:
                return
            self._wake.clear()
            now = time.monotonic()
            try:
                if now - polled >= self.poll_s:
                    polled = now
                    await self._tail()
                if now - reconciled >= self.reconcile_s or self._resync:
                    reconciled, self._resync = now, False
                    await self.reconcile()
                dirty, self._dirty = self._dirty, set()
                for run_id in dirty:
                    for cp in await self.store.list_checkpoints(run_id=run_id, open_only=True):
                        await self._plan(cp)
            except Exception:  # the loop must survive a bad row or a database hiccup
                log.exception("timer planning failed")

    async def reconcile(self) -> int:
        """Make the job store match the open checkpoints; returns how many jobs were added."""
        open_cps = await self.store.list_checkpoints(open_only=True, limit=1_000_000)
        existing = {job.id for job in self.scheduler.get_jobs()}
        self._known = set(existing)
        wanted: set[str] = set()
        # paused, adding a job does not wake the scheduler up to query the job store each time
        running = self.scheduler.state == STATE_RUNNING
        if running:
            self.scheduler.pause()
        self.jobstore.batch = []
        try:
            for cp in open_cps:
                wanted |= await self._plan(cp)
        finally:
            batch, self.jobstore.batch = self.jobstore.batch, None
            await asyncio.to_thread(self.jobstore.flush, batch)
            if running:
                self.scheduler.resume()
        for job_id in existing - wanted:
            with contextlib.suppress(JobLookupError):
                self.scheduler.remove_job(job_id)
        self._known = wanted
        return len(wanted - existing)

    async def _plan(self, cp: Checkpoint) -> set[str]:
        if cp.due_at is None:
            return set()  # reminders need a timeout (checked at load time)
        config = await self.timeouts.config_of(cp)
        plan = timer_plan(cp, config)
        now = self.clock.now()
        ids: set[str] = set()
        if plan.deadline is not None:
            job_id = f"deadline:{cp.id}:{plan.level}"
            ids.add(job_id)
            self._add(job_id, fire_deadline_job, max(plan.deadline, now), [self.scope, cp.id, plan.level])
        for index, at in plan.reminders:
            if at <= now and plan.deadline is not None and plan.deadline <= now:
                continue  # the deadline itself is due: a reminder now would only be noise
            job_id = f"reminder:{cp.id}:{index}"
            ids.add(job_id)
            self._add(job_id, reminder_job, max(at, now), [self.scope, cp.id, index])
        return ids

    def _add(self, job_id: str, func: object, when: datetime, args: list[object]) -> None:
        if job_id in self._known:
            return
        self.scheduler.add_job(func, "date", run_date=when, args=args, id=job_id, replace_existing=True)
        self._known.add(job_id)
