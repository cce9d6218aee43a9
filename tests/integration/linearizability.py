"""A linearizability checker for single-key register histories, after
Wing & Gong with Lowe's memoisation (the algorithm Porcupine implements).

A history is a list of Op: a client invoked `kind` on `key` at `invoke`
and saw the answer at `complete`. Kinds and what the register model allows:

- put(value)            -> always fine; the register holds value
- get()                 -> output must be the value held (None: no such key)
- cas(expected, value)  -> output True: the register held `expected`, now
                           holds `value`; output False: it held something else

Outcomes:
- ok: the answer is known (output set).
- fail: the operation certainly had no effect (e.g. refused before it
  reached the leader); it is dropped from the history.
- unknown: a timeout or an answer that leaves the effect open (503
  leader_unreachable, outcome_unknown): it may have taken effect at any
  moment after `invoke`, or never. Its complete time is infinite and any
  output is accepted; an unknown get says nothing and is dropped.

The history is linearizable if every key's sub-history is (registers are
independent: P-compositionality). `check()` returns a Result; when a key
fails, `Result.explain` names the operations the search could not place.
"""
from dataclasses import dataclass, field
import math

OK, FAIL, UNKNOWN = "ok", "fail", "unknown"


@dataclass
class Op:
    client: int
    kind: str  # put | get | cas
    key: str
    invoke: float
    complete: float = math.inf
    status: str = UNKNOWN
    value: object = None  # put/cas: the value written
    expected: object = None  # cas: the value compared
    output: object = None  # get: the value read; cas: True/False


@dataclass
class Result:
    ok: bool
    keys: int = 0
    ops: int = 0
    explain: str = ""
    bad_key: object = None
    placed: list = field(default_factory=list)


def step(state, op):
    """The register model: (legal, new state) for op applied to state."""
    if op.kind == "put":
        return True, op.value
    if op.kind == "get":
        return op.output == state, state
    if op.kind == "cas":
        matches = state == op.expected
        if op.status == UNKNOWN:  # it took effect (if it ever did) either way
            return True, op.value if matches else state
        if op.output:
            return matches, op.value
        return not matches, state
    raise ValueError(f"unknown operation kind {op.kind!r}")


def prepare(ops):
    """Drop what carries no information; give unknown outcomes an open end."""
    out = []
    for op in ops:
        if op.status == FAIL:
            continue
        if op.status == UNKNOWN:
            if op.kind == "get":
                continue
            op.complete = math.inf
        elif op.complete < op.invoke:
            raise ValueError(f"operation completes before it starts: {op}")
        out.append(op)
    return out


class _Entry:
    __slots__ = ("op", "index", "is_call", "match", "prev", "next")

    def __init__(self, op, index, is_call):
        self.op, self.index, self.is_call = op, index, is_call
        self.match = self.prev = self.next = None


def _entries(ops):
    """A doubly linked list of call/return events by time (calls first on
    ties: an operation that returns at t does not precede one called at t)."""
    events = []
    for i, op in enumerate(ops):
        call, ret = _Entry(op, i, True), _Entry(op, i, False)
        call.match = ret
        events.append((op.invoke, 0, i, call))
        events.append((op.complete, 1, i, ret))
    events.sort(key=lambda e: e[:3])
    head = _Entry(None, -1, False)
    prev = head
    for *_, e in events:
        prev.next, e.prev = e, prev
        prev = e
    return head


def _lift(e):
    e.prev.next = e.next
    if e.next:
        e.next.prev = e.prev
    m = e.match
    m.prev.next = m.next
    if m.next:
        m.next.prev = m.prev


def _unlift(e):
    m = e.match
    m.prev.next = m
    if m.next:
        m.next.prev = m
    e.prev.next = e
    if e.next:
        e.next.prev = e


def check_register(ops, initial=None, max_steps=5_000_000):
    """(ok, linearization or the longest partial one) for one key's ops."""
    ops = prepare(list(ops))
    head = _entries(ops)
    state = initial
    linearized = 0  # bitmask of placed ops
    cache = set()
    stack = []  # (call entry, state before it)
    best = []
    entry = head.next
    steps = 0
    while head.next is not None:
        steps += 1
        if steps > max_steps:
            raise RuntimeError(f"search gave up after {max_steps} steps ({len(ops)} operations)")
        if entry.is_call:
            legal, new_state = step(state, entry.op)
            if legal:
                key = (linearized | (1 << entry.index), new_state)
                if key not in cache:
                    cache.add(key)
                    stack.append((entry, state))
                    state, linearized = new_state, key[0]
                    _lift(entry)
                    if len(stack) > len(best):
                        best = [e.op for e, _ in stack]
                    entry = head.next
                    continue
            entry = entry.next
        else:
            # A return reached before its call was placed: undo the last choice.
            if not stack:
                return False, best
            top, state = stack.pop()
            linearized &= ~(1 << top.index)
            _unlift(top)
            entry = top.next
    return True, [e.op for e, _ in stack]


def unobserved_unknowns(ops):
    """Unknown writes whose value no successful get or CAS ever saw. If one
    took effect, the register held a value nobody read until it was
    overwritten, which matters only to a CAS that answered false."""
    seen = {op.output for op in ops if op.kind == "get" and op.status == OK}
    seen |= {op.expected for op in ops if op.kind == "cas" and op.status == OK and op.output}
    return [op for op in ops if op.status == UNKNOWN and op.kind != "get" and op.value not in seen]


def check_key(ops, initial=None):
    """check_register, first without the unknown writes nobody observed:
    a linearization without them is one of the whole history (they may
    never have happened), and leaving them out keeps the search from trying
    each of them at every point. Only if that fails, the full search."""
    ops = [op for op in ops if op.status != FAIL]
    drop = {id(op) for op in unobserved_unknowns(ops)}
    if drop:
        ok, placed = check_register([op for op in ops if id(op) not in drop], initial)
        if ok:
            return ok, placed
    return check_register(ops, initial)


def check(ops, initial=None):
    """Check a whole history, key by key."""
    by_key = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
    total = 0
    for key, key_ops in by_key.items():
        ok, placed = check_key(key_ops, initial)
        total += len(key_ops)
        if not ok:
            return Result(False, len(by_key), total, explain=_explain(key, key_ops, placed), bad_key=key,
                          placed=placed)
    return Result(True, len(by_key), total)


def _explain(key, ops, placed):
    placed_ids = {id(op) for op in placed}
    left = sorted((op for op in prepare(list(ops)) if id(op) not in placed_ids), key=lambda o: o.invoke)
    state = None
    for op in placed:
        state = step(state, op)[1]
    lines = [f"key {key!r}: no linearization; the longest places {len(placed)} operations, "
             f"leaving the register at {state!r}; the earliest of the rest:"]
    lines += [f"  {describe(op)}" for op in left[:8]]
    return "\n".join(lines)


def describe(op):
    args = {"put": f"({op.value!r})", "get": "()", "cas": f"({op.expected!r} -> {op.value!r})"}[op.kind]
    end = "?" if op.complete == math.inf else f"{op.complete:.3f}"
    out = f" = {op.output!r}" if op.status == OK and op.kind != "put" else ""
    return f"client {op.client} {op.kind}{args}{out} [{op.invoke:.3f}, {end}] {op.status}"
