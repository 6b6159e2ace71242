"""Backup jobs and their schedule (seed: "configure and schedule a backup job for each virtual
machine or a group of virtual machines. At the scheduled time, the backup software starts the
backup job on the VCB proxy").

A ``Job`` names one VM or a group (selectors), a type (``fullvm`` image backups, or ``file``
backups of kind full/differential/incremental) and a ``Schedule`` in virtual time. A
``JobScheduler`` starts each job at its scheduled time on one proxy with a concurrency limit:
runs are stepped in turn (``BackupRun.steps()``), so up to ``concurrency`` VMs are in snapshot
mode at once, and two runs of the same VM never overlap (spec R60). Every run lands in the job
history (``job_runs`` in the catalog): scheduled, started and finished times, status, the failed
step and why.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from vcbsim.simulator import InvalidInputError, NotFoundError

from ._catalog import Catalog
from ._client import parse_selector
from ._run import BackupRun
from ._workflow import BackupProxy, RunOutcome

__all__ = ["Job", "JobRun", "JobScheduler", "Schedule"]


@dataclass(frozen=True, slots=True)
class Schedule:
    """First run at ``at`` (virtual seconds since the epoch), then every ``every`` seconds
    (``None``: once), at most ``count`` times (``None``: no limit)."""

    at: float
    every: float | None = None
    count: int | None = None

    def __post_init__(self) -> None:
        if self.every is not None and self.every <= 0:
            msg = "schedule interval"
            raise InvalidInputError(msg, expected="seconds > 0 or None", got=self.every)
        if self.count is not None and self.count < 1:
            msg = "schedule count"
            raise InvalidInputError(msg, expected="a count >= 1 or None", got=self.count)

    def times(self, until: float) -> list[float]:
        """Every scheduled time up to and including ``until``."""
        out: list[float] = []
        t = self.at
        while t <= until and (self.count is None or len(out) < self.count):
            out.append(t)
            if self.every is None:
                break
            t += self.every
        return out


@dataclass(frozen=True, slots=True)
class Job:
    """A backup job. ``kind``: ``image`` (a full image backup; ``full`` is the same),
    ``differential`` or ``incremental`` (changed block tracking) for ``fullvm``; ``full``,
    ``differential`` or ``incremental`` for ``file``."""

    name: str
    selectors: tuple[str, ...]
    type: str
    schedule: Schedule
    kind: str = "image"

    def __post_init__(self) -> None:
        if not self.name:
            msg = "job name"
            raise InvalidInputError(msg, expected="a non-empty name", got=self.name)
        if not self.selectors:
            msg = f"job {self.name!r} selectors"
            raise InvalidInputError(
                msg, expected="at least one VM selector", got=self.selectors
            )
        for s in self.selectors:
            parse_selector(s)
        if self.type == "fullvm" and self.kind not in ("image", "full", "differential", "incremental"):
            msg = f"job {self.name!r} kind"
            raise InvalidInputError(
                msg,
                expected="'image' (full), 'differential' or 'incremental' for a fullvm job",
                got=self.kind,
            )
        if self.type == "file" and self.kind not in ("full", "differential", "incremental"):
            msg = f"job {self.name!r} kind"
            raise InvalidInputError(
                msg,
                expected="full, differential or incremental for a file job",
                got=self.kind,
            )
        if self.type not in ("fullvm", "file"):
            msg = f"job {self.name!r} type"
            raise InvalidInputError(msg, expected="'fullvm' or 'file'", got=self.type)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["selectors"] = list(self.selectors)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Job:
        return cls(
            name=d["name"],
            selectors=tuple(d["selectors"]),
            type=d["type"],
            kind=d.get("kind", "image"),
            schedule=Schedule(**d["schedule"]),
        )


@dataclass(slots=True)
class JobRun:
    """One VM's run of one job at one scheduled time."""

    job: str
    selector: str
    scheduled: float
    result: RunOutcome | None = None
    started: float | None = None
    finished: float | None = None
    history_id: int | None = None
    error: str = ""
    _run: BackupRun | None = field(default=None, repr=False)


class JobScheduler:
    """Starts jobs at their scheduled virtual times on one proxy.

    Job definitions and the history persist in the catalog, so the CLI can add jobs in one
    invocation and run them in another. A job's runs already in the history are not run again.
    """

    def __init__(self, proxy: BackupProxy, catalog: Catalog, *, concurrency: int = 2) -> None:
        if concurrency < 1:
            msg = "proxy concurrency"
            raise InvalidInputError(msg, expected="an integer >= 1", got=concurrency)
        self.proxy = proxy
        self.catalog = catalog
        self.concurrency = concurrency
        self.max_active = 0

    # -- job definitions -------------------------------------------------------------------

    def add(self, job: Job) -> Job:
        self.catalog.db.execute(
            "INSERT OR REPLACE INTO jobs (name, spec) VALUES (?, ?)", (job.name, json.dumps(job.to_dict()))
        )
        self.catalog.db.commit()
        return job

    def remove(self, name: str) -> None:
        self.job(name)
        self.catalog.db.execute("DELETE FROM jobs WHERE name = ?", (name,))
        self.catalog.db.commit()

    def jobs(self) -> list[Job]:
        rows = self.catalog.db.execute("SELECT spec FROM jobs ORDER BY name")
        return [Job.from_dict(json.loads(r[0])) for r in rows]

    def job(self, name: str) -> Job:
        for j in self.jobs():
            if j.name == name:
                return j
        msg = "job"
        raise NotFoundError(msg, name, known=[j.name for j in self.jobs()])

    def history(self, job: str | None = None) -> list[dict[str, Any]]:
        return self.catalog.job_runs(job)

    # -- running ---------------------------------------------------------------------------

    def pending(self, until: float) -> list[JobRun]:
        """Runs due up to ``until`` that the history does not hold yet, in time order."""
        done = {(r["job"], r["selector"], r["scheduled"]) for r in self.history()}
        out: list[JobRun] = []
        for job in self.jobs():
            for t in job.schedule.times(until):
                for sel in job.selectors:
                    if (job.name, sel, t) in done:
                        continue
                    out.append(JobRun(job.name, sel, t))
        out.sort(key=lambda r: (r.scheduled, r.job, r.selector))
        return out

    def run_until(self, until: float) -> list[JobRun]:
        """Advance the virtual clock through every scheduled time up to ``until`` and run the
        jobs due; returns the runs in the order they finished."""
        finished: list[JobRun] = []
        clock = self.proxy.client.clock
        while True:
            due = self.pending(until)
            if not due:
                break
            instant = due[0].scheduled
            batch = [r for r in due if r.scheduled == instant]
            clock.advance_to(instant)
            finished += self._run_batch(batch)
        clock.advance_to(until)
        return finished

    def run_now(self, job_name: str) -> list[JobRun]:
        """Run one job immediately (outside its schedule)."""
        job = self.job(job_name)
        now = self.proxy.client.clock.now
        return self._run_batch([JobRun(job.name, s, now) for s in job.selectors])

    def _start(self, jr: JobRun) -> None:
        job = self.job(jr.job)
        jr.started = self.proxy.client.clock.now
        jr._run = self.proxy.run(
            jr.selector, job.type, catalog=self.catalog, kind=job.kind, job=job.name
        )

    def _run_batch(self, batch: list[JobRun]) -> list[JobRun]:
        queue = list(batch)
        active: list[JobRun] = []
        done: list[JobRun] = []
        while queue or active:
            busy = {a._run.vm.moref for a in active if a._run is not None}
            for jr in list(queue):
                if len(active) >= self.concurrency:
                    break
                try:
                    vm = self.proxy.resolve(jr.selector)
                    if vm.moref in busy:
                        continue  # R60: one run per VM at a time; wait for the other
                    queue.remove(jr)
                    self._start(jr)
                except Exception as exc:  # bad selector, unsupported guest: recorded, not run
                    if jr in queue:
                        queue.remove(jr)
                    jr.error = f"{type(exc).__name__}: {exc}"
                    self._record(jr)
                    done.append(jr)
                    continue
                busy.add(vm.moref)
                active.append(jr)
            self.max_active = max(self.max_active, len(active))
            for jr in list(active):
                assert jr._run is not None
                try:
                    more = jr._run.advance()
                except Exception as exc:  # refused before any step (a held mount): recorded
                    jr.error = f"{type(exc).__name__}: {exc}"
                    jr.result = None
                    jr.finished = self.proxy.client.clock.now
                    active.remove(jr)
                    self._record(jr)
                    done.append(jr)
                    continue
                if not more:
                    active.remove(jr)
                    jr.result = jr._run.result
                    jr.finished = self.proxy.client.clock.now
                    self._record(jr)
                    done.append(jr)
        return done

    def _record(self, jr: JobRun) -> None:
        job = self.job(jr.job)
        r = jr.result
        jr.history_id = self.catalog.record_job_run(
            job=jr.job,
            selector=jr.selector,
            vm_name=r.vm if r else parse_selector(jr.selector)[1],
            type=(job.type if job.kind in ("image", "full") else f"fullvm/{job.kind}")
            if job.type == "fullvm"
            else f"file/{job.kind}",
            scheduled=jr.scheduled,
            started=jr.started,
            finished=jr.finished,
            status=r.status if r else "error",
            failed_step=(r.failed_step or "") if r else "",
            reason=(f"{r.fault}: {r.reason}" if r and r.failed_step else jr.error),
            backup_id=r.backup_id if r else None,
        )
