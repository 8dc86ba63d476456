"""Timers: APScheduler (AsyncIOScheduler, SQLAlchemy job store on the same database) turns
checkpoint deadlines and reminders into engine calls.

The checkpoint's ``due_at`` stays the source of truth. Jobs are a schedule of *when to look*:
firing is idempotent, so a job that runs twice (two replicas), late (after a restart) or after a
person decided changes nothing.

Only the timers of the next ``horizon_s`` seconds are jobs, so the job store holds the next
minute's deadlines, not one job per open checkpoint. Every ``min(reconcile_s, horizon_s / 2)``
(and on start-up) each process moves the window on, reading pages of 500 through two indexes:
the deadlines due before the new horizon (``(status, due_at, id)``; overdue ones fire now) and,
for each reminder offset, the level-0 checkpoints whose reminder falls into the window
(``(status, created_at, id)``). On start-up the window opens at the epoch, so deadlines and
reminders that passed while no process ran fire at once; the reminder offsets come from the
distinct workflow nodes of open checkpoints (one ``DISTINCT`` query), then from every checkpoint
planned. Jobs in the store whose checkpoint closed or moved on are removed; the store holds only
the window, so that reads a few rows, not every open checkpoint.

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
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.util import datetime_to_utc_timestamp

from engine.clients import ChangeFeed
from engine.model import Checkpoint, HumanConfig, parse_duration
from engine.ports import CheckpointTimes, TimerQuery
from engine.timeouts import Timeouts, TimerPlan, timer_plan

__all__ = ["Timers"]

log = logging.getLogger("signoff.timers")
_ACTIVE: dict[str, Timeouts] = {}
_FIRING: set[str] = set()  # deadline jobs running in this process
JOB_TABLE = "signoff_timer_jobs"
_OPENED = "checkpoint.opened"
_BACKLOG = 1000  # more new audit events than this at once: reconcile instead of reading them
_PAGE = 500  # open checkpoints read (and jobs inserted) per transaction
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def fire_deadline_job(scope: str, checkpoint_id: str, level: int) -> None:
    """APScheduler entry point: a checkpoint's deadline may have passed."""
    timeouts = _ACTIVE.get(scope)
    if timeouts is not None:
        job_id = f"deadline:{checkpoint_id}:{level}"
        _FIRING.add(job_id)  # out of the job store while it runs: the window must not add it again
        try:
            outcome = await timeouts.fire_deadline(checkpoint_id, level)
        finally:
            _FIRING.discard(job_id)
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

    def job_ids(self) -> list[str]:
        """The ids of the jobs in the store (without loading the jobs)."""
        with self.engine.begin() as connection:
            return [
                row[0] for row in connection.execute(self.jobs_t.select().with_only_columns(self.jobs_t.c.id))
            ]


def _engine_options(url: str) -> dict[str, object]:
    # our own store holds SQLite's write lock for short transactions: wait instead of failing
    return {"connect_args": {"timeout": 30}} if url.startswith("sqlite") else {"pool_pre_ping": True}


class Timers:
    """Schedules the deadline and reminder jobs of the next ``horizon_s`` seconds.

    Args:
        timeouts: fires deadlines and reminders through the engine.
        job_store_url: the database of the job store.
        scope: names this instance's ``Timeouts`` for the job functions.
        reconcile_s: how often, at most, the window moves on and the job store is checked.
        horizon_s: how far ahead timers become jobs; the window moves every ``horizon_s / 2``
            at least, so a timer is a job at least that long before it is due.
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
        horizon_s: float = 60.0,
        feed: ChangeFeed | None = None,
        poll_s: float = 0.25,
    ) -> None:
        self.timeouts = timeouts
        self.feed = feed
        self.poll_s = poll_s
        self._stop_feed: Callable[[], Awaitable[None]] | None = None
        self._seq: int | None = None  # the audit tail read so far (None: not following it)
        self._resync = False  # read every open checkpoint again at the next turn of the loop
        self.store = timeouts.store
        self.clock = timeouts.engine.clock
        self.scope = scope
        self.horizon = timedelta(seconds=horizon_s)
        self.reconcile_s = min(reconcile_s, horizon_s / 2)
        self.jobstore = _BatchingJobStore(
            url=job_store_url, tablename=JOB_TABLE, engine_options=_engine_options(job_store_url)
        )
        self.scheduler = AsyncIOScheduler(
            jobstores={"default": self.jobstore},
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
            timezone="UTC",
        )
        self._known: set[str] = set()
        self._until: datetime | None = None  # timers due up to here are jobs (None: none read yet)
        self._offsets: set[timedelta] = set()  # reminder offsets (from opening) seen so far
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Start the scheduler after reading every open checkpoint; returns how many jobs were added."""
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
                if self._resync:
                    reconciled, self._resync, self._until = now, False, None
                    await self.reconcile()
                elif now - reconciled >= self.reconcile_s:
                    reconciled = now
                    await self.reconcile()
                dirty, self._dirty = self._dirty, set()
                for run_id in dirty:
                    until = self.clock.now() + self.horizon
                    for cp in await self.store.list_checkpoints(run_id=run_id, open_only=True):
                        await self._plan(cp, until)
            except Exception:  # the loop must survive a bad row or a database hiccup
                log.exception("timer planning failed")

    async def reconcile(self) -> int:
        """Make the timers due before the new horizon jobs and remove the jobs of closed
        checkpoints; the first time, read every open checkpoint. Returns how many jobs were added."""
        existing = set(await asyncio.to_thread(self.jobstore.job_ids))
        self._known = set(existing)
        until = self.clock.now() + self.horizon
        since, self._until = self._until, until
        if since is None:  # first time: every reminder offset of open checkpoints, all past reminders
            since = _EPOCH
            for workflow_hash, node_id in await self.store.timer_nodes():
                config = await self.timeouts.config_in(workflow_hash, node_id)
                self._offsets.update(parse_duration(r) for r in config.reminders)
        await self._read(TimerQuery(due_before=until, limit=_PAGE), until)
        for offset in sorted(self._offsets):
            window = TimerQuery(opened_between=(since - offset, until - offset), limit=_PAGE)
            await self._read(window, until)
        await self._remove_stale(existing)
        return len(self._known - existing)

    async def _read(self, query: TimerQuery, until: datetime) -> None:
        """Plan every page of ``query``, inserting each page's new jobs in one transaction."""
        while True:
            page = await self.store.checkpoint_times(query)
            # paused for one page: a running scheduler would otherwise look at every due job in
            # the store once per job added; resuming looks once, with this page's jobs inserted
            running = self.scheduler.state == STATE_RUNNING
            if running:
                self.scheduler.pause()
            self.jobstore.batch = []
            try:
                for times in page:
                    await self._plan(times, until)
            finally:
                batch, self.jobstore.batch = self.jobstore.batch, None
                try:
                    await asyncio.to_thread(self.jobstore.flush, batch)
                finally:
                    if running:
                        self.scheduler.resume()
            if len(page) < query.limit:
                return
            last = page[-1]
            key = last.created_at if query.opened_between is not None else last.due_at
            query = query.model_copy(update={"after": (key, last.checkpoint_id)})

    async def _remove_stale(self, job_ids: set[str]) -> None:
        """Remove the jobs whose checkpoint closed, or whose deadline or reminder is no longer planned."""
        by_checkpoint: dict[str, list[str]] = {}
        for job_id in job_ids:
            parts = job_id.split(":")
            if len(parts) == 3:
                by_checkpoint.setdefault(parts[1], []).append(job_id)
        ids = sorted(by_checkpoint)
        planned: set[str] = set()
        for at in range(0, len(ids), _PAGE):
            query = TimerQuery(ids=ids[at : at + _PAGE], limit=_PAGE)
            for times in await self.store.checkpoint_times(query):
                planned |= self._ids(timer_plan(times, await self._config(times)))
        for job_id in job_ids - planned:
            with contextlib.suppress(JobLookupError):
                self.scheduler.remove_job(job_id)
            self._known.discard(job_id)

    async def _config(self, cp: Checkpoint | CheckpointTimes) -> HumanConfig:
        if isinstance(cp, Checkpoint):
            return await self.timeouts.config_of(cp)
        return await self.timeouts.config_in(cp.workflow_hash, cp.node_id)

    def _ids(self, plan: TimerPlan) -> set[str]:
        """The jobs ``plan`` wants, whenever they are due."""
        now = self.clock.now()
        checkpoint_id = plan.checkpoint_id
        ids = set()
        if plan.deadline is not None:
            ids.add(f"deadline:{checkpoint_id}:{plan.level}")
        for index, at in plan.reminders:
            if at <= now and plan.deadline is not None and plan.deadline <= now:
                continue
            ids.add(f"reminder:{checkpoint_id}:{index}")
        return ids

    async def _plan(self, cp: Checkpoint | CheckpointTimes, until: datetime) -> None:
        """Add the jobs of ``cp``'s deadline and reminders due up to ``until``."""
        if cp.due_at is None:
            return  # reminders need a timeout (checked at load time)
        plan = timer_plan(cp, await self._config(cp))
        now = self.clock.now()
        checkpoint_id = plan.checkpoint_id
        if plan.deadline is not None and plan.deadline <= until:
            job_id = f"deadline:{checkpoint_id}:{plan.level}"
            self._add(
                job_id, fire_deadline_job, max(plan.deadline, now), [self.scope, checkpoint_id, plan.level]
            )
        for index, at in plan.reminders:
            self._offsets.add(at - cp.created_at)
            if at > until or (at <= now and plan.deadline is not None and plan.deadline <= now):
                continue  # later: the window brings it; or the deadline itself is due: noise
            job_id = f"reminder:{checkpoint_id}:{index}"
            self._add(job_id, reminder_job, max(at, now), [self.scope, checkpoint_id, index])

    def _add(self, job_id: str, func: object, when: datetime, args: list[object]) -> None:
        if job_id in self._known or job_id in _FIRING:
            return
        self.scheduler.add_job(func, "date", run_date=when, args=args, id=job_id, replace_existing=True)
        self._known.add(job_id)
