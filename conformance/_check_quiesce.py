"""The guest side of the trace checker: VMware Tools' quiesce operations.

One operation per VM at a time (spec R3): freeze scripts -> engage -> the host's snapshot ->
disengage -> thaw scripts, or a failure path (freezeFail, abort), fed by ``quiesce.*``,
``script.run`` and the host's ``snapshot.create`` / ``.fail`` / ``.rollback``. It judges the
SCRIPT, QUIESCE and TMO-GUEST-ABORT rules and WF-1a, 1d, 1e; it knows nothing of jobs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vcbsim.simulator import Event, get_profile

from ._check_base import (
    _EPS,
    _LEGACY_POST,
    TICK,
    Context,
    Model,
    _failed,
    _fold,
    _is_legacy,
    _legacy_kind,
    _path,
)

__all__ = ["QuiesceModel"]


@dataclass(slots=True)
class _Quiesce:
    start: Event
    timeout: float | None
    freeze: list[Event] = field(default_factory=list)
    failed_freeze: Event | None = None
    engage: Event | None = None
    engage_failed: Event | None = None
    disengage: Event | None = None
    disengage_failed: Event | None = None
    abort: Event | None = None
    snapshot: Event | None = None
    snapshot_failed: Event | None = None
    thaw: list[Event] = field(default_factory=list)
    thaw_failed: Event | None = None
    freezefail: list[Event] = field(default_factory=list)
    last_script: Event | None = None
    timer_reported: bool = False
    reported: set[str] = field(default_factory=set)
    #: seconds the scripts themselves ran (their ``duration``): the scripts' time, not the agent's
    script_time: float = 0.0



def _agent_time(q: _Quiesce, end: Event) -> float:
    """The operation's time spent by the guest agent itself: all of it, less what the scripts
    ran (the customer's, or the kit's own slow scripts) and the host's snapshot creation
    (from the engage to the snapshot, or to its failure)."""
    total = end.time - q.start.time - q.script_time
    snap = q.snapshot or q.snapshot_failed
    if q.engage is not None and snap is not None and snap.time >= q.engage.time:
        total -= snap.time - q.engage.time
    return total


class QuiesceModel(Model):
    """Quiesce operations per VM; ``running(vm)`` tells the job model whether one is open."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.quiesce: dict[str | None, _Quiesce] = {}

    def running(self, vm: str | None) -> _Quiesce | None:
        """The VM's open quiesce operation (steps 1a-1e still running), if any."""
        return self.quiesce.get(vm)

    # ------------------------------------------------------------------ host events
    def on_snapshot_create(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        name = str(ev.details.get("name", ""))
        q = self.quiesce.get(vm)
        quiesced = bool(ev.details.get("quiesced", False))
        if q is None:
            if quiesced and self.guest_events:
                self.add("WF-1b", f"event #{ev.seq}: snapshot '{name}' of {self.show(vm)} claims to be quiesced but no quiesce "
                         "operation of VMware Tools was running", ev, vm=vm)
            return
        q.snapshot = ev
        self._check_snapshot_in_operation(q, ev, vm, name, quiesced)

    def _check_snapshot_in_operation(self, q: _Quiesce, ev: Event, vm: str | None, name: str, quiesced: bool) -> None:
        if q.abort is not None:
            self.add("TMO-GUEST-ABORT", f"event #{ev.seq}: snapshot '{name}' of {self.show(vm)} was created after the guest "
                     f"aborted the quiesce operation (#{q.abort.seq}); an aborted guest is no longer frozen", q.abort, ev, vm=vm)
        elif q.failed_freeze is not None:
            self.add("SCR-FREEZEFAIL-NO-SNAPSHOT", f"event #{ev.seq}: snapshot '{name}' of {self.show(vm)} was created although "
                     f"pre-freeze script {_path(q.failed_freeze)} exited {q.failed_freeze.details.get('exit_code')} "
                     f"(#{q.failed_freeze.seq}); the seed says a failing pre-freeze script fails the snapshot", q.failed_freeze, ev, vm=vm)
        elif q.engage_failed is not None:
            self.add("QSC-ENGAGE-FAIL", f"event #{ev.seq}: snapshot '{name}' of {self.show(vm)} was created although engaging "
                     f"{q.engage_failed.details.get('provider', 'the quiescing provider')} failed (#{q.engage_failed.seq}); "
                     "the seed proceeds to step 5 (post-thaw) without a snapshot", q.engage_failed, ev, vm=vm)
        elif quiesced and q.engage is None:
            self.add("WF-1b", f"event #{ev.seq}: quiesced snapshot '{name}' of {self.show(vm)} was created but the guest was "
                     f"never quiesced in this operation (#{q.start.seq}); step 1b comes before 1c", q.start, ev, vm=vm)
        elif quiesced and q.engage is not None and q.disengage is not None:
            self.add("WF-1b", f"event #{ev.seq}: quiesced snapshot '{name}' of {self.show(vm)} was created after the guest "
                     f"was already unquiesced (#{q.disengage.seq}); it must be taken while the guest is quiesced (1b, 1c, then 1d)",
                     q.disengage, ev, vm=vm)

    def on_snapshot_create_fail(self, ev: Event) -> None:
        q = self.quiesce.get(self.vm_of(ev))
        if q is not None and q.snapshot_failed is None:
            q.snapshot_failed = ev

    on_snapshot_rollback = on_snapshot_create_fail

    # ------------------------------------------------------------------ guest events
    def on_quiesce_start(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        if vm in self.quiesce:
            old = self.quiesce[vm]
            self.unplaced_event(ev, f"the quiesce operation begun at #{old.start.seq} has not ended "
                                "(only one operation runs at a time, spec R3)")
            self.add("QSC-END", f"a quiesce operation of {self.show(vm)} began (#{ev.seq}) while the one begun at "
                     f"#{old.start.seq} never ended (a guest refuses a second one: spec R3)", old.start, ev, vm=vm)
            return
        t = ev.details.get("timeout")
        self.quiesce[vm] = _Quiesce(ev, float(t) if t else None)

    def _check_timer(self, q: _Quiesce, ev: Event, vm: str | None) -> None:
        if q.timeout is None or q.abort is not None or q.timer_reported:
            return
        if self._failure_cause(q) is not None:
            return  # SCRIPT_ERROR / SYNC_ERROR: the abort timer no longer applies (spec T16, T18)
        deadline = q.start.time + q.timeout
        if ev.time > deadline + TICK + _EPS:
            q.timer_reported = True
            self.add("TMO-GUEST-ABORT", f"event #{ev.seq} ({ev.kind}) of {self.show(vm)} happened {ev.time - q.start.time:.1f} s "
                     f"into a quiesce operation whose abort timer is {q.timeout:g} s (#{q.start.seq}), and the guest never "
                     "aborted; the timer must abort the operation within one poll tick", q.start, ev, vm=vm)

    def on_script_run(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        q = self.quiesce.get(vm)
        if q is None:
            self.unplaced_event(ev, f"script {_path(ev)} ran outside any quiesce operation of {self.show(vm)}")
            return
        self._check_timer(q, ev, vm)
        q.script_time += float(ev.details.get("duration") or 0.0)
        arg = ev.details.get("arg")
        path = _path(ev)
        legacy = _is_legacy(ev)
        # one at a time: the event is stamped when the script ends
        if q.last_script is not None:
            start = ev.time - float(ev.details.get("duration") or 0.0)
            if start + _EPS < q.last_script.time:
                self.add("SCR-ONE-AT-A-TIME", f"script {path} (#{ev.seq}) started at +{start - q.start.time:.1f} s, before "
                         f"{_path(q.last_script)} (#{q.last_script.seq}) exited at +{q.last_script.time - q.start.time:.1f} s",
                         q.last_script, ev, vm=vm)
        # the host profile's script layout (seed Table 2-3)
        if self.profile == "esx-3.5u1" and not legacy:
            self.add("SCR-LAYOUT-LEGACY", f"script {path} (#{ev.seq}) ran on an ESX 3.5 U1 host, which runs only the legacy "
                     "pre-freeze-script / post-thaw-script files", ev, vm=vm)
        windows = self.os.get(vm or "", "windows").lower().startswith("win") or "\\" in path
        if self.profile != "esx-3.5u1" and not legacy and "backupscripts.d" not in path.lower():
            self.add("SCR-LAYOUT-DIR", f"script {path} (#{ev.seq}) is not in the Tools backupScripts.d directory", ev, vm=vm)
        elif self.profile == "esx-3.5u2" and not legacy and not windows:
            self.add("SCR-LAYOUT-DIR", f"script {path} (#{ev.seq}) ran in the Linux guest {self.show(vm)} on an ESX 3.5 U2 host; "
                     "the seed's Table 2-3 gives \"Other\" guests only /usr/sbin/pre-freeze-script and "
                     "/usr/sbin/post-thaw-script (the directory came to Linux with the Tools of 2010)", ev, vm=vm)
        q.last_script = ev
        if arg is None and legacy and self.profile == "esx-3.5u1":
            # spec Q3: what arguments the legacy scripts got on 3.5 U1 is unknown; infer the phase
            arg = "freeze" if _legacy_kind(ev) == "pre" else ("freezeFail" if self._failure_cause(q) else "thaw")
        elif arg not in ("freeze", "thaw", "freezeFail"):
            hint = " (the spelling is camel case: freezeFail)" if str(arg).lower() == "freezefail" else ""
            self.add("SCR-ARG-EXACT", f"script {path} (#{ev.seq}) got first argument {arg!r}; expected 'freeze', 'thaw' or "
                     f"'freezeFail'{hint}", ev, vm=vm)
            if str(arg).lower() == "freezefail":
                arg = "freezeFail"
            else:
                return
        if legacy:
            kind = _legacy_kind(ev)
            if (kind == "pre") != (arg == "freeze"):
                self.add("SCR-LEGACY-PLACEMENT", f"legacy script {path} (#{ev.seq}) got {arg!r}; the legacy pre-freeze script "
                         "gets only 'freeze', the legacy post-thaw script only 'thaw' or 'freezeFail'", ev, vm=vm)
        if arg == "freeze":
            self._freeze_script(q, ev, vm, path, legacy)
        elif arg == "thaw":
            self._thaw_script(q, ev, vm, path, legacy)
        else:
            self._freezefail_script(q, ev, vm, path, legacy)

    def _freeze_script(self, q: _Quiesce, ev: Event, vm: str | None, path: str, legacy: bool) -> None:
        if q.failed_freeze is not None:
            self.add("SCR-FREEZE-STOP", f"freeze script {path} (#{ev.seq}) ran after {_path(q.failed_freeze)} failed with exit "
                     f"code {q.failed_freeze.details.get('exit_code')} (#{q.failed_freeze.seq}); the freeze phase stops at the "
                     "first failure", q.failed_freeze, ev, vm=vm)
        elif q.engage is not None or q.engage_failed is not None or q.thaw or q.freezefail:
            first = q.engage or q.engage_failed or (q.thaw or q.freezefail)[0]
            self.add("WF-1a", f"freeze script {path} (#{ev.seq}) ran after the quiesce had moved on (#{first.seq}, {first.kind}); "
                     "pre-freeze scripts run before the guest is quiesced (step 1a before 1b)", first, ev, vm=vm)
        if q.freeze:
            prev = q.freeze[-1]
            if legacy and not _is_legacy(prev):
                self.add("SCR-LEGACY-PLACEMENT", f"legacy pre-freeze script {path} (#{ev.seq}) ran after {_path(prev)} "
                         f"(#{prev.seq}); it runs first", prev, ev, vm=vm)
            elif not legacy and not _is_legacy(prev) and path.encode() < _path(prev).encode():
                self.add("SCR-ORDER-FREEZE", f"freeze script {path} (#{ev.seq}) ran after {_path(prev)} (#{prev.seq}); freeze "
                         "scripts run in ascending alphabetical (byte-wise) order", prev, ev, vm=vm)
        q.freeze.append(ev)
        if _failed(ev) and q.failed_freeze is None:
            q.failed_freeze = ev

    def _phase_order(self, q: _Quiesce, ev: Event, vm: str | None, path: str, legacy: bool,
                     done: list[Event], rule: str, word: str) -> None:
        if done:
            prev = done[-1]
            if _is_legacy(prev) and not legacy:
                self.add("SCR-LEGACY-PLACEMENT", f"{word} script {path} (#{ev.seq}) ran after the legacy post-thaw script "
                         f"{_path(prev)} (#{prev.seq}); the legacy script runs last", prev, ev, vm=vm)
            elif not legacy and not _is_legacy(prev) and path.encode() > _path(prev).encode():
                self.add(rule, f"{word} script {path} (#{ev.seq}) ran after {_path(prev)} (#{prev.seq}); {word} scripts run in "
                         "descending alphabetical (byte-wise) order", prev, ev, vm=vm)
        done.append(ev)

    def _failure_cause(self, q: _Quiesce) -> tuple[str, Event] | None:
        if q.failed_freeze is not None:
            return "SCR-FREEZEFAIL-REVERSE", q.failed_freeze
        if q.engage_failed is not None:
            return "QSC-ENGAGE-FAIL", q.engage_failed
        if q.abort is not None:
            timer = q.abort.details.get("reason", "timer") == "timer"
            return ("TMO-GUEST-ABORT" if timer else "QSC-SNAPSHOT-FAIL-FREEZEFAIL"), q.abort
        if q.snapshot_failed is not None:
            return "QSC-SNAPSHOT-FAIL-FREEZEFAIL", q.snapshot_failed
        if q.disengage_failed is not None:
            return "QSC-SNAPSHOT-FAIL-FREEZEFAIL", q.disengage_failed
        return None

    def _thaw_script(self, q: _Quiesce, ev: Event, vm: str | None, path: str, legacy: bool) -> None:
        cause = self._failure_cause(q)
        if cause is not None:
            rule, why = cause
            self.add(rule, f"script {path} (#{ev.seq}) got 'thaw' after the quiesce failed (#{why.seq}, {why.kind}); on a failure "
                     "path the scripts get 'freezeFail'", why, ev, vm=vm)
        elif q.engage is not None and q.disengage is None:
            self.add("WF-1e", f"post-thaw script {path} (#{ev.seq}) ran while the guest was still quiesced (engaged at "
                     f"#{q.engage.seq}); step 1e follows 1d (unquiesce)", q.engage, ev, vm=vm)
        elif q.snapshot is None:
            self.add("WF-1e", f"post-thaw script {path} (#{ev.seq}) ran before any snapshot of {self.show(vm)} existed; step 1e "
                     "follows 1c", q.start, ev, vm=vm)
        self._phase_order(q, ev, vm, path, legacy, q.thaw, "SCR-ORDER-THAW", "thaw")
        if _failed(ev) and q.thaw_failed is None:
            q.thaw_failed = ev

    def _freezefail_script(self, q: _Quiesce, ev: Event, vm: str | None, path: str, legacy: bool) -> None:
        if q.failed_freeze is not None and not legacy and path == _path(q.failed_freeze):
            self.add("SCR-FREEZEFAIL-NOT-FAILED", f"script {path} got 'freezeFail' (#{ev.seq}) although it is the freeze script "
                     f"that failed (#{q.failed_freeze.seq}); only the scripts before it get freezeFail", q.failed_freeze, ev, vm=vm)
        elif self._failure_cause(q) is None and q.snapshot is not None:
            self.add("SCR-THAW-ALL", f"script {path} got 'freezeFail' (#{ev.seq}) although the snapshot succeeded "
                     f"(#{q.snapshot.seq}) and nothing failed; it should get 'thaw'", q.snapshot, ev, vm=vm)
        self._phase_order(q, ev, vm, path, legacy, q.freezefail, "SCR-ORDER-FREEZEFAIL", "freezeFail")

    def on_quiesce_engage(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        q = self.quiesce.get(vm)
        if q is None:
            self.unplaced_event(ev, f"{self.show(vm)} was quiesced outside any quiesce operation")
            return
        self._check_timer(q, ev, vm)
        if q.failed_freeze is not None:
            self.add("SCR-FREEZEFAIL-NO-SNAPSHOT", f"the guest {self.show(vm)} was quiesced (#{ev.seq}) although pre-freeze script "
                     f"{_path(q.failed_freeze)} failed (#{q.failed_freeze.seq})", q.failed_freeze, ev, vm=vm)
        if q.abort is not None and ev.details.get("ok", True):
            self.add("TMO-GUEST-ABORT", f"the guest {self.show(vm)} was quiesced (#{ev.seq}) after the operation was aborted "
                     f"(#{q.abort.seq})", q.abort, ev, vm=vm)
        if ev.details.get("ok", True):
            q.engage = ev
        else:
            q.engage_failed = ev

    def on_quiesce_disengage(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        q = self.quiesce.get(vm)
        if q is None:
            self.unplaced_event(ev, f"{self.show(vm)} was unquiesced outside any quiesce operation")
            return
        if q.engage is None:
            self.unplaced_event(ev, f"{self.show(vm)} was unquiesced but never quiesced in this operation (#{q.start.seq})")
            return
        if q.abort is None:
            self._check_timer(q, ev, vm)
        if q.snapshot is None and q.snapshot_failed is None and q.abort is None:
            self.add("WF-1d", f"the guest {self.show(vm)} was unquiesced (#{ev.seq}) before any snapshot was taken or failed; "
                     "step 1d follows 1c", q.engage, ev, vm=vm)
        q.disengage = ev
        if not ev.details.get("ok", True):
            q.disengage_failed = ev

    def on_quiesce_abort(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        q = self.quiesce.get(vm)
        if q is None:
            self.unplaced_event(ev, f"abort for {self.show(vm)} outside any quiesce operation")
            return
        if q.timeout is not None and q.abort is None and not q.timer_reported:
            deadline = q.start.time + q.timeout
            if ev.time > deadline + TICK + _EPS:
                q.timer_reported = True
                self.add("TMO-GUEST-ABORT", f"the guest {self.show(vm)} aborted at +{ev.time - q.start.time:.1f} s (#{ev.seq}) but its "
                         f"abort timer is {q.timeout:g} s (#{q.start.seq}); it must fire within one poll tick", q.start, ev, vm=vm)
        q.abort = q.abort or ev

    def on_quiesce_end(self, ev: Event) -> None:
        vm = self.vm_of(ev)
        q = self.quiesce.pop(vm, None)
        if q is None:
            self.unplaced_event(ev, f"{self.show(vm)} ended a quiesce operation that never started")
            return
        self._check_timer(q, ev, vm)
        self._check_end_state(q, ev, vm)
        deleted = {_fold(_path(e)) for e in self.guest_changes.get(vm, []) if e.kind == "guest.delete" and e.seq > q.start.seq}
        # the legacy slot (spec R21, R22): when the legacy pre-freeze script ran, the legacy
        # post-thaw script (known to exist) runs last with thaw or freezeFail
        post = self._legacy_post(vm, q)
        tail = [post] if post is not None else []
        expected = self._expected_freezefail(q, tail)
        if expected is not None:
            self._check_freezefail(q, ev, vm, expected, tail, deleted, post)
        elif q.snapshot is not None and q.abort is None:
            expected_thaw = [_path(e) for e in q.freeze if not _is_legacy(e)] + tail
            thawed = {_fold(_path(e)) for e in q.thaw}
            missing = [p for p in expected_thaw if _fold(p) not in thawed and _fold(p) not in deleted]
            if missing:
                self.add("SCR-THAW-ALL", f"after the snapshot of {self.show(vm)} (#{q.snapshot.seq}) these scripts ran with "
                         f"'freeze' but never with 'thaw': {', '.join(missing)}", q.thaw_failed or q.snapshot, ev, vm=vm)

    def _check_end_state(self, q: _Quiesce, ev: Event, vm: str | None) -> None:
        """How the operation ended: unquiesced (QSC-UNQUIESCE), reported honestly
        (QSC-REPORT-FAILURE), clear of its timer (TMO-NEAR-LIMIT)."""
        if q.engage is not None and q.disengage is None and q.abort is None:
            after = " after the snapshot failed" if q.snapshot_failed is not None else ""
            self.add("QSC-UNQUIESCE", f"the quiesce operation of {self.show(vm)} ended (#{ev.seq}){after} without unquiescing the "
                     f"guest engaged at #{q.engage.seq}; the guest stays frozen", q.engage, q.snapshot_failed, ev, vm=vm)
        failed = q.failed_freeze or q.engage_failed or q.abort or q.thaw_failed or q.disengage_failed
        if failed is not None and ev.details.get("outcome") == "done":
            self.add("QSC-REPORT-FAILURE", f"the quiesce operation of {self.show(vm)} ended 'done' (#{ev.seq}) although "
                     f"#{failed.seq} ({failed.kind}) failed; a failed quiesce ends with 'error' or 'aborted'", failed, ev, vm=vm)
        own = _agent_time(q, ev)
        if q.timeout and own > 0.8 * q.timeout and q.abort is None and not q.timer_reported:
            self.add("TMO-NEAR-LIMIT", f"the quiesce operation of {self.show(vm)} took {ev.time - q.start.time:.1f} s of its "
                     f"{q.timeout:g} s abort timer, {own:.1f} s of it the agent's own (besides {q.script_time:.1f} s "
                     "of scripts and the host's snapshot)", q.start, ev, vm=vm)

    def _expected_freezefail(self, q: _Quiesce, tail: list[str]) -> list[str] | None:
        """The scripts that must get freezeFail, in order; ``None`` on the success path."""
        if q.failed_freeze is not None:
            k = q.freeze.index(q.failed_freeze)
            # index 0 failing runs no freezeFail at all (open-vm-tools scriptOps.c:293-296)
            return [_path(e) for e in reversed(q.freeze[:k]) if not _is_legacy(e)] + (tail if k > 0 else [])
        if (q.abort is not None and q.abort.details.get("state") == "SCRIPT_FREEZE" and q.freeze
                and q.freeze[-1].seq < q.abort.seq and not q.thaw):
            # the timer fired while freeze script k ran (killed, or its exit not yet noticed):
            # k-1 ... 0 get freezeFail, k does not (spec F9; open-vm-tools stateMachine.c)
            k = len(q.freeze) - 1
            return [_path(e) for e in reversed(q.freeze[:k]) if not _is_legacy(e)] + (tail if k > 0 else [])
        if self._failure_cause(q) is not None and not (q.abort is not None and q.thaw):
            return [_path(e) for e in reversed(q.freeze) if not _is_legacy(e)] + tail
        return None

    def _check_freezefail(self, q: _Quiesce, ev: Event, vm: str | None, expected: list[str], tail: list[str],
                          deleted: set[str], post: str | None) -> None:
        cause = self._failure_cause(q)
        got = [_path(e) for e in q.freezefail if not _is_legacy(e) or post is not None]
        got_f, expected_f = {_fold(p) for p in got}, {_fold(p) for p in expected}
        missing = [p for p in expected if _fold(p) not in got_f and _fold(p) not in deleted]
        extra = [p for p in got if _fold(p) not in expected_f and (q.failed_freeze is None or p != _path(q.failed_freeze))]
        if not missing and not extra:
            return
        rule = cause[0] if cause and cause[0] != "SCR-FREEZEFAIL-REVERSE" else "SCR-FREEZEFAIL-REVERSE"
        if missing == tail and not extra and rule != "SCR-FREEZEFAIL-REVERSE":
            rule = "SCR-ORDER-FREEZEFAIL"  # only the legacy post-thaw, which runs last, is missing
        parts = []
        if missing:
            parts.append("never got freezeFail: " + ", ".join(missing))
        if extra:
            parts.append("got freezeFail but never ran freeze before the failure: " + ", ".join(extra))
        w = next((e for e in q.freezefail if _path(e) in extra), None)
        self.add(rule, f"after the quiesce of {self.show(vm)} failed (#{cause[1].seq if cause else ev.seq}), "
                 + "; ".join(parts), cause[1] if cause else None, w, ev, vm=vm)

    def _legacy_post(self, vm: str | None, q: _Quiesce) -> str | None:
        """The legacy post-thaw script's path when this operation used the legacy slot (its
        pre-freeze script ran) and the trace shows the post-thaw file written (and not deleted)
        before the operation began; ``None`` when the checker cannot tell."""
        if not any(_is_legacy(e) for e in q.freeze):
            return None
        found: str | None = None
        for ch in self.guest_changes.get(vm, []):
            if ch.seq > q.start.seq:
                break
            p = _path(ch)
            if _fold(p) in _LEGACY_POST:
                found = p if ch.kind == "guest.write" else None
        return found

    def finish(self) -> None:
        last_crash = self.last_crash
        for vm, q in self.quiesce.items():
            if self.open_ended and last_crash is not None and last_crash.seq > q.start.seq:
                continue  # a crash left it; the host aborts it before the next operation
            if self.open_ended and not get_profile(self.profile).guest_abort_timer:
                # before open-vm-tools 7c7a38862 (2010) the guest has no abort timer: a host that
                # stopped waiting leaves the guest's operation running until its scripts end; it
                # must have ended by the time the trace closes
                continue
            self.add("QSC-END", f"the quiesce operation of {self.show(vm)} begun at #{q.start.seq} never ended; the guest may be "
                     "left frozen", q.start, q.engage, vm=vm)
