"""Linearizability checking of pinset client histories (test helper).

Two checkers:

* :func:`check_history`: per-CID linearizability of ``pin``/``unpin``/``status``
  operations with the Wing & Gong / Lowe search as porcupine implements it (walk
  the time-ordered list of call/return events, linearize a pending call whose
  effect matches the model, backtrack at a return that nothing explains, memoise
  ``(set of linearized ops, model state)``).  The history is split by CID first
  (P-compositionality: operations on different CIDs commute), so each search is
  small.  An operation that timed out has ``ret = math.inf``: it may take effect
  at any point after its call, or never (placing it after every other operation is
  the same as "never").  Operations that failed with an error that guarantees they
  had no effect must be left out of the history.

* :func:`check_prefix_reads`: whole-set reads (``pin ls``) cannot be split by CID;
  each must equal the pinset after some prefix ``k`` of the committed writes (in
  commit order), with ``k`` covering every write acknowledged before the read was
  called and no write called after the read returned.  Reads that do not overlap
  must also be monotonic (a read after another read sees at least its prefix); a
  greedy choice of the smallest valid ``k`` per read makes that check exact.

Model of one CID: a boolean "pinned" (initially ``False`` unless listed in
``initial``).  ``pin`` sets it, ``unpin`` clears it; their ``result`` is not
checked.  ``status`` returns whether the CID is pinned (``result`` is a bool).

Why hand-written: the only maintained implementations (porcupine, Knossos) are Go
and Clojure; the algorithm is ~100 lines.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Iterable, Sequence

import attrs

PIN, UNPIN, STATUS, LS = "pin", "unpin", "status", "ls"
TIMED_OUT = math.inf


@attrs.frozen
class Operation:
    """One client operation: called at ``call``, returned at ``ret`` (inf: timed out).

    ``result``: for ``status`` whether the CID was reported pinned; for ``ls`` the
    collection of CIDs reported; ignored for ``pin``/``unpin``.
    """

    client: Any
    kind: str
    cid: Any
    call: float
    ret: float
    result: Any = None

    def __attrs_post_init__(self):
        if self.kind not in (PIN, UNPIN, STATUS, LS):
            raise ValueError("unknown operation kind %r" % (self.kind,))
        if self.ret < self.call:
            raise ValueError("operation returns (%r) before it is called (%r)"
                             % (self.ret, self.call))


@attrs.frozen
class CheckResult:
    """Outcome: ``ok``; when not ok, the CID (or ``None`` for a whole-set read)
    whose history is not linearizable and a human explanation."""

    ok: bool
    failing_cid: Any = None
    explanation: str = ""


def _step(state: bool, op: Operation) -> tuple[bool, bool]:
    """Apply ``op`` to the one-CID model: return (consistent?, new state)."""
    if op.kind == PIN:
        return True, True
    if op.kind == UNPIN:
        return True, False
    return bool(op.result) == state, state


class _Event:
    __slots__ = ("op", "position", "is_call", "match", "prev", "next")

    def __init__(self, op, position, is_call):
        self.op, self.position, self.is_call = op, position, is_call
        self.match = self.prev = self.next = None


def _event_list(ops: Sequence[Operation]) -> _Event:
    """Doubly linked list of call/return events in time order behind a sentinel.

    At equal times calls come first, so touching intervals count as concurrent.
    """
    events = []
    for position, op in enumerate(ops):
        call, ret = _Event(op, position, True), _Event(op, position, False)
        call.match = ret
        events.append((op.call, 0, position, call))
        events.append((op.ret, 1, position, ret))
    events.sort(key=lambda item: item[:3])
    head = _Event(None, -1, False)
    previous = head
    for *_, event in events:
        previous.next, event.prev = event, previous
        previous = event
    return head


def _lift(call: _Event) -> None:
    for event in (call, call.match):
        event.prev.next = event.next
        if event.next is not None:
            event.next.prev = event.prev


def _unlift(call: _Event) -> None:
    for event in (call.match, call):
        event.prev.next = event
        if event.next is not None:
            event.next.prev = event


def _linearize(ops: Sequence[Operation], initial: bool) -> tuple[bool, list[Operation]]:
    """WGL search on one CID.  Returns (linearizable?, longest linearization found)."""
    head = _event_list(ops)
    state, linearized = initial, 0
    seen: set[tuple[int, bool]] = set()
    stack: list[tuple[_Event, bool]] = []
    best: list[Operation] = []
    event = head.next
    while head.next is not None:
        if event.is_call:
            consistent, new_state = _step(state, event.op)
            key = (linearized | (1 << event.position), new_state)
            if consistent and key not in seen:
                seen.add(key)
                stack.append((event, state))
                state, linearized = new_state, key[0]
                _lift(event)
                if len(stack) > len(best):
                    best = [e.op for e, _ in stack]
                event = head.next
            else:
                event = event.next
            continue
        # a return whose call could not be linearized before it: backtrack
        if not stack:
            return False, best
        call, state = stack.pop()
        linearized &= ~(1 << call.position)
        _unlift(call)
        event = call.next
    return True, best


def _describe(op: Operation) -> str:
    ret = "timed out" if op.ret == math.inf else "returned %g" % op.ret
    result = "" if op.kind in (PIN, UNPIN) else " -> %r" % (op.result,)
    return "%s by %r: called %g, %s%s" % (op.kind, op.client, op.call, ret, result)


def check_history(ops: Iterable[Operation], initial: Iterable[Any] = ()) -> CheckResult:
    """Check a pin/unpin/status history per CID; return a :class:`CheckResult`.

    ``initial``: CIDs pinned before the history starts.  ``status`` operations that
    timed out tell nothing and are ignored; ``ls`` operations are ignored here (see
    :func:`check_prefix_reads`).
    """
    pinned = set(initial)
    by_cid: dict[Any, list[Operation]] = defaultdict(list)
    for op in ops:
        if op.kind == LS or (op.kind == STATUS and op.ret == math.inf):
            continue
        by_cid[op.cid].append(op)
    for cid, cid_ops in by_cid.items():
        ok, best = _linearize(cid_ops, cid in pinned)
        if not ok:
            lines = ["no linearization of the %d operations on %r exists" % (len(cid_ops), cid),
                     "operations (by call time):"]
            lines += ["  " + _describe(op) for op in sorted(cid_ops, key=lambda o: o.call)]
            lines.append("longest valid linearization found (%d ops):" % len(best))
            lines += ["  " + _describe(op) for op in best]
            return CheckResult(False, cid, "\n".join(lines))
    return CheckResult(True)


def check_prefix_reads(writes: Sequence[Operation], reads: Iterable[Operation],
                       initial: Iterable[Any] = ()) -> CheckResult:
    """Check whole-set reads against the committed writes.

    ``writes``: the committed ``pin``/``unpin`` operations in commit order (a write
    that timed out but committed is included; one that never committed is not).
    ``reads``: ``ls`` operations whose ``result`` is the set of CIDs reported
    (reads that timed out are ignored).  Returns a :class:`CheckResult` whose
    explanation names the first read that matches no allowed prefix.
    """
    initial = frozenset(initial)
    reads = sorted((r for r in reads if r.ret != math.inf), key=lambda r: r.call)
    finished: list[tuple[float, int]] = []  # (ret, smallest valid k) of checked reads
    for read in reads:
        lower = max([p + 1 for p, w in enumerate(writes) if w.ret < read.call] or [0])
        lower = max([lower] + [k for ret, k in finished if ret < read.call])
        upper = next((p for p, w in enumerate(writes) if w.call > read.ret), len(writes))
        k = _smallest_matching_prefix(writes, initial, frozenset(read.result), lower, upper)
        if k is None:
            return CheckResult(False, None, (
                "%s matches no allowed prefix of the %d committed writes "
                "(allowed prefix lengths %d..%d); it reported %d CIDs"
                % (_describe(read), len(writes), lower, upper, len(read.result))))
        finished.append((read.ret, k))
    return CheckResult(True)


def _smallest_matching_prefix(writes, initial, target, lower, upper):
    """Smallest k in [lower, upper] whose pinset after ``writes[:k]`` is ``target``."""
    state = set(initial)
    mismatches = len(state ^ target)
    for k in range(0, upper + 1):
        if k >= lower and mismatches == 0:
            return k
        if k == len(writes):
            break
        write = writes[k]
        before = write.cid in state
        (state.add if write.kind == PIN else state.discard)(write.cid)
        after = write.cid in state
        if before != after:
            mismatches += -1 if (after == (write.cid in target)) else 1
    return None
