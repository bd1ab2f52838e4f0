"""The actors behind ``actors.mp``'s primitives.

Each primitive (a lock, a queue, a pipe...) is one of these actors, and they
all share one host process (see ``actors.mp.context``). None of them ever
blocks: a request that must wait (an ``acquire`` of a held lock, a ``get``
from an empty queue) is *parked* with :meth:`Actor.defer_reply` and answered
when its turn comes. A parked request has a token chosen by its asker; the
asker whose timeout passes sends ``("cancel", token)``: if the request is
still parked it is answered with :data:`CANCELLED` (its asker then returns
False or raises ``Empty``), else the cancel comes too late and the asker
takes the answer already sent. Either way nothing is lost: an item or a lock
handed out is always received.

Owners that die. Every request names its asker (pid, thread, and the ref of
the actor whose process it is); primitives watch those refs, so a lock held
by a process that dies is released (and the next acquisition says so), a
pipe end held only by a dead process counts as closed, and a dead waiter's
parked requests are dropped.
"""

from __future__ import annotations

import collections
import logging
import pickle
import threading
import time
from collections.abc import ItemsView, KeysView, ValuesView
from typing import Any

from actors.actor import Actor
from actors.host import running_host
from actors.mp.values import pack, unpack
from actors.notices import Terminated
from actors.protocol import Ext
from actors.ref import ActorRef, Reply

log = logging.getLogger("actors.mp")

CANCELLED = "\x00actors.mp:cancelled"
EMPTY = "\x00actors.mp:empty"


class Primitive(Actor):
    """Base: ``("op", *args)`` messages call ``do_op(*args)``; parked
    requests by token; watched owners."""

    label = "primitive"

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.parked: dict[int, tuple[Reply, Any]] = {}  # token -> (reply, info), FIFO
        self.watched: dict[int, ActorRef] = {}
        self.holds: dict[Any, Any] = {}  # member -> its wait record (begin_hold)

    def receive(self, message: Any) -> Any:
        if isinstance(message, Terminated):
            self.watched.pop(message.ref.uid, None)
            self.owner_gone(message.ref)
            return None
        return getattr(self, "do_" + message[0])(*message[1:])

    def park(self, token: int, info: Any = None, bound: bool = False) -> None:
        """Answer the request being handled later. ``bound``: only what a
        holder does answers it (the deadlock detector may follow it, see
        :meth:`begin_hold`)."""
        reply = self.defer_reply()
        reply.bound = bound
        self.parked[token] = (reply, info)

    def withdraw(self, reply: Reply) -> bool:
        """The deadlock detector withdraws a parked request (its asker gets
        DeadlockError instead of an answer)."""
        for token, (parked, info) in list(self.parked.items()):
            if parked is reply:
                del self.parked[token]
                self.cancelled(token, info)
                return True
        return False

    def begin_hold(self, member: Any, what: str) -> Any:
        """Report that this primitive's parked requests wait for ``member``
        (an actor uid, or a thread of the main program)."""
        tracker = running_host().runtime.waits
        return tracker.begin_hold(self.ref.uid, member, what) if tracker.enabled else None

    @staticmethod
    def end_hold(record: Any) -> None:
        if record is not None:
            running_host().runtime.waits.end(record)

    def answer(self, token: int, value: Any) -> Any:
        """Send the reply of a parked request; its info."""
        reply, info = self.parked.pop(token)
        reply.send(value)
        return info

    def fail(self, token: int, error: BaseException) -> None:
        reply, _ = self.parked.pop(token)
        reply.fail(error)

    def do_sync(self) -> bool:
        """Answered after everything the asker sent before (its process
        calls it before exiting, so its last told releases arrive before
        the news of its death)."""
        return True

    def do_cancel(self, token: int) -> bool:
        entry = self.parked.pop(token, None)
        if entry is None:
            return False  # answered already: the asker takes that answer
        entry[0].send(CANCELLED)
        self.cancelled(token, entry[1])
        return True

    def cancelled(self, token: int, info: Any) -> None:
        """A parked request was withdrawn by its asker."""

    def watch_owner(self, ref: ActorRef | None) -> None:
        if ref is not None and ref.uid not in self.watched:
            self.watched[ref.uid] = ref
            self.watch(ref)

    def owner_gone(self, ref: ActorRef) -> None:
        """The process of ``ref`` ended; drop what it was waiting for."""
        for token, (reply, info) in list(self.parked.items()):
            if isinstance(info, dict) and info.get("ref") == ref:
                del self.parked[token]
                reply.take()  # nobody is left to answer

    def describe(self) -> str:
        return self.ref.name or f"{self.label} #{self.ref.uid}"


# -- locks and semaphores ---------------------------------------------------

class LockServer(Primitive):
    """Lock, RLock, Semaphore and BoundedSemaphore.

    ``holders`` maps (pid, thread) to [count, ref]. A Lock may be released
    by anyone (as ``multiprocessing.Lock``); an RLock only by its owner.
    """

    def __init__(self, kind: str, value: int = 1, name: str = "") -> None:
        super().__init__(name)
        self.kind = kind          # "lock", "rlock", "semaphore", "bounded"
        self.label = {"lock": "Lock", "rlock": "RLock", "semaphore": "Semaphore",
                      "bounded": "BoundedSemaphore"}[kind]
        self.value = value        # free permits
        self.maximum = value
        self.holders: dict[tuple[int, int], list[Any]] = {}
        self.owner_died = False   # the next acquisition takes over a dead holder's lock

    def do_acquire(self, token: int, who: list[Any], count: int, block: bool) -> list[Any]:
        key = (who[0], who[1])
        if self.kind == "rlock" and key in self.holders:
            self.holders[key][0] += count
            return [True, False]
        if self.value > 0 and not self.parked:
            return self.grant(key, who, count)
        if not block:
            return [False, False]
        self.watch_owner(who[2])
        # Bound (the deadlock detector follows it to the holder) for locks:
        # semaphores are often released by others, as signals.
        self.park(token, {"key": key, "ref": who[2], "who": who, "count": count},
                  bound=self.kind in ("lock", "rlock"))
        self.sync_holds()
        return None  # answered later

    def grant(self, key: tuple[int, int], who: list[Any], count: int) -> list[Any]:
        self.value -= 1
        entry = self.holders.get(key)
        if entry is None:
            self.holders[key] = [count if self.kind == "rlock" else 1, who[2], who[3]]
        else:
            entry[0] += 1
        self.watch_owner(who[2])
        died, self.owner_died = self.owner_died, False
        return [True, died]

    def do_release(self, who: list[Any], told: bool = False) -> int:
        key, pid = (who[0], who[1]), who[0]
        error: Exception | None = None
        if self.kind == "rlock":
            entry = self.holders.get(key)
            if entry is None:
                error = RuntimeError("cannot release un-acquired lock")
            else:
                entry[0] -= 1
                if entry[0] > 0:
                    return entry[0]
                del self.holders[key]
                self.value += 1
        elif self.value >= self.maximum and self.kind != "semaphore":
            error = ValueError("semaphore or lock released too many times")
        else:
            self.value += 1
            owner = key if key in self.holders else next(iter(self.holders), None)
            if owner is not None:
                entry = self.holders[owner]
                entry[0] -= 1
                if entry[0] <= 0:
                    del self.holders[owner]
        if error is not None:
            if told:  # nobody waits for the answer: say it here
                log.error("%s: release by pid %s: %s", self.describe(), pid, error)
                return 0
            raise error
        self.wake()
        return 0

    def do_release_all(self, who: list[Any]) -> int:
        """Condition.wait: release an RLock completely; the count it had."""
        key = (who[0], who[1])
        entry = self.holders.get(key)
        if self.kind != "rlock":
            self.do_release(who)
            return 1
        if entry is None:
            raise AssertionError("attempt to release recursive lock not owned by thread")
        del self.holders[key]
        self.value += 1
        self.wake()
        return entry[0]

    def wake(self) -> None:
        while self.value > 0 and self.parked:
            token = next(iter(self.parked))
            info = self.parked[token][1]
            self.answer(token, self.grant(info["key"], info["who"], info["count"]))
        self.sync_holds()

    def cancelled(self, token: int, info: Any) -> None:
        self.sync_holds()

    def sync_holds(self) -> None:
        """Tell the deadlock detector who the parked acquirers wait for: the
        holder, when there is exactly one (with several, any of them may
        release, and the graph has no OR edges)."""
        members = {entry[2] for entry in self.holders.values()}
        wanted = None
        if self.parked and len(members) == 1:
            wanted = next(iter(members))
        for member in [m for m in self.holds if m != wanted]:
            self.end_hold(self.holds.pop(member))
        if wanted is not None and wanted not in self.holds:
            pid = next(iter(self.holders))[0]
            self.holds[wanted] = self.begin_hold(wanted, f"held by pid {pid}")

    def owner_gone(self, ref: ActorRef) -> None:
        super().owner_gone(ref)
        freed = [key for key, (_, owner, _) in self.holders.items() if owner == ref]
        for key in freed:
            count = self.holders.pop(key)[0]
            self.value += 1 if self.kind == "rlock" else count
            self.owner_died = True
            log.warning("%s was held by pid %d, which died: released (the next acquirer "
                        "sees owner_died=True)", self.describe(), key[0])
        if freed:
            self.wake()

    def do_state(self) -> list[Any]:
        """[free permits, holders as [pid, tid, count]]."""
        return [self.value, [[k[0], k[1], v[0]] for k, v in self.holders.items()]]

    def do_get_value(self) -> int:
        return self.value


# -- events, conditions, barriers -------------------------------------------

class EventServer(Primitive):
    label = "Event"

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        self.flag = False

    def do_set(self) -> None:
        self.flag = True
        for token in list(self.parked):
            self.answer(token, True)

    def do_clear(self) -> None:
        self.flag = False

    def do_is_set(self) -> bool:
        return self.flag

    def do_wait(self, token: int, who: list[Any], block: bool) -> Any:
        if self.flag or not block:
            return self.flag
        self.watch_owner(who[2])
        self.park(token, {"ref": who[2]})
        return None


class ConditionServer(Primitive):
    """The sleepers of a Condition (its lock is a LockServer of its own)."""

    label = "Condition"

    def do_sleep(self, token: int, who: list[Any]) -> None:
        self.watch_owner(who[2])
        self.park(token, {"ref": who[2]})

    def do_notify(self, n: int) -> int:
        woken = 0
        for token in list(self.parked)[:max(0, n)]:
            self.answer(token, True)
            woken += 1
        return woken

    def do_notify_all(self) -> int:
        return self.do_notify(len(self.parked))


class BarrierServer(Primitive):
    """A Barrier: the last of ``parties`` arrivals releases the others (after
    running the action, in its own process, as ``threading.Barrier`` does)."""

    label = "Barrier"

    def __init__(self, parties: int, has_action: bool, name: str = "") -> None:
        super().__init__(name)
        self.parties = parties
        self.has_action = has_action
        self.broken = False
        self.arrived: list[int] = []   # tokens, in arrival order
        self.releasing = False         # the last arrival runs the action

    def do_wait(self, token: int, who: list[Any]) -> Any:
        from threading import BrokenBarrierError
        ref = who[2]
        if self.broken or self.releasing:
            raise BrokenBarrierError
        index = len(self.arrived)
        if index == self.parties - 1:
            if self.has_action:
                self.releasing = True
                return ["action", index]
            self.release_all()
            return ["go", index]
        self.arrived.append(token)
        self.watch_owner(ref)
        self.park(token, {"index": index, "ref": ref})
        return None

    def release_all(self) -> None:
        for token in self.arrived:
            if token in self.parked:
                self.answer(token, ["go", self.parked[token][1]["index"]])
        self.arrived = []
        self.releasing = False

    def do_action_done(self, ok: bool) -> None:
        if ok:
            self.release_all()
        else:
            self.do_abort()

    def do_abort(self) -> None:
        from threading import BrokenBarrierError
        self.broken = True
        self.releasing = False
        for token in self.arrived:
            if token in self.parked:
                self.fail(token, BrokenBarrierError())
        self.arrived = []

    def do_reset(self) -> None:
        if self.arrived:
            self.do_abort()
        self.broken = False

    def cancelled(self, token: int, info: Any) -> None:
        # a wait that timed out breaks the barrier for everyone
        if token in self.arrived:
            self.arrived.remove(token)
        self.do_abort()

    def owner_gone(self, ref: ActorRef) -> None:
        if any(info.get("ref") == ref for _, info in self.parked.values()):
            super().owner_gone(ref)
            self.do_abort()

    def do_state(self) -> list[Any]:
        return [len(self.arrived), self.broken]


# -- queues -----------------------------------------------------------------

class QueueServer(Primitive):
    """Queue, JoinableQueue and SimpleQueue. Items stay as they came (the
    pickled ones are never unpickled here).

    Lending. A consumer of an unbounded queue whose process reads its inbox
    on a thread of its own (the main program, an ``actors.mp.Process``) may
    take up to ``want`` items in one answer; the ones it has not used yet are *lent* to it. As
    soon as anybody else needs an item (a get that finds the queue empty)
    or a size (qsize, empty, full), the lenders are told to give back what
    they have not used (an ``Ext("mp.recall")`` service tell to their process), and
    the request waits for those items; for half a second after that, the
    queue lends to nobody (two consumers share it one item at a time).
    Returned items go back to the front, in order.
    """

    label = "Queue"
    CONTENDED = 0.5  # seconds without lending after a recall

    def __init__(self, maxsize: int = 0, joinable: bool = False, name: str = "") -> None:
        super().__init__(name)
        self.maxsize = maxsize if maxsize > 0 else 0
        self.items: collections.deque[Any] = collections.deque()
        self.getters: dict[int, Any] = {}    # tokens of parked gets, FIFO
        self.putters: dict[int, Any] = {}    # tokens of parked puts -> item
        self.joinable = joinable
        self.unfinished = 0
        self.joiners: list[int] = []
        self.lent: dict[int, list[Any]] = {}  # handle -> [address, ref, recalled]
        self.queries: list[tuple[Reply, str]] = []  # sizes waiting for recalls
        self.no_lending_until = 0.0

    def do_put(self, item: Any) -> None:
        """A put that never waits (the queue is unbounded)."""
        self.unfinished += 1
        self.items.append(item)
        self.serve()

    def serve(self) -> None:
        """Parked gets take what there is; then sizes, once nothing is lent."""
        while self.getters and self.items:
            token = next(iter(self.getters))
            del self.getters[token]
            self.answer(token, [self.items.popleft()])
            self.admit()
        if not self.lent:
            for token, (_, info) in list(self.parked.items()):
                if info.get("nowait") and token in self.getters:
                    del self.getters[token]
                    self.answer(token, EMPTY)
            queries, self.queries = self.queries, []
            for reply, op in queries:
                reply.send(self.size_answer(op))

    def do_put_wait(self, token: int, item: Any, who: list[Any], block: bool) -> Any:
        if not self.maxsize or len(self.items) + self.lent_count() < self.maxsize:
            self.do_put(item)
            return True
        if not block:
            return False
        self.watch_owner(who[2])
        self.putters[token] = item
        self.park(token, {"ref": who[2], "put": True})
        return None

    def lent_count(self) -> int:
        return sum(entry[3] for entry in self.lent.values())

    def do_get(self, token: int, who: list[Any], want: int, handle: int, address: str | None,
               block: bool) -> Any:
        ref = who[2]
        self.lent.pop(handle, None)  # it asks: it has used what it had
        if self.items and not self.getters:
            count = 1
            if (want > 1 and address is not None and len(self.items) > 1 and not self.maxsize
                    and time.monotonic() >= self.no_lending_until):
                count = min(want, len(self.items))
            batch = [self.items.popleft() for _ in range(count)]
            if count > 1:
                self.lent[handle] = [address, ref, False, count - 1]
                self.watch_owner(ref)
            self.admit()
            return batch
        if self.lent:
            self.recall()
        elif not block:
            return EMPTY
        self.watch_owner(ref)
        self.getters[token] = True
        self.park(token, {"ref": ref, "nowait": not block})
        return None

    def recall(self) -> None:
        """Ask every lender for the items it has not used (see class doc)."""
        host = running_host().runtime
        self.no_lending_until = time.monotonic() + self.CONTENDED
        for handle, entry in self.lent.items():
            if not entry[2]:
                entry[2] = True
                host.tell_service(entry[0], Ext("mp.recall", [handle, self.ref]))

    def do_give_back(self, handle: int, items: list[Any]) -> None:
        """A lender's unused items (recalled, or its handle closed)."""
        self.lent.pop(handle, None)
        self.items.extendleft(reversed(items))
        self.serve()
        self.admit()

    def admit(self) -> None:
        """Room was made: parked puts go in."""
        while self.putters and len(self.items) + self.lent_count() < self.maxsize:
            token = next(iter(self.putters))
            item = self.putters.pop(token)
            self.answer(token, True)
            self.do_put(item)

    def cancelled(self, token: int, info: Any) -> None:
        self.getters.pop(token, None)
        self.putters.pop(token, None)

    def owner_gone(self, ref: ActorRef) -> None:
        for token, (_, info) in list(self.parked.items()):
            if info.get("ref") == ref:
                self.getters.pop(token, None)
                self.putters.pop(token, None)
        super().owner_gone(ref)
        for handle in [h for h, entry in self.lent.items() if entry[1] == ref]:
            count = self.lent.pop(handle)[3]
            log.warning("%s: %d items lent to pid of %r were lost with it", self.describe(),
                        count, ref)
        self.serve()

    def size_answer(self, op: str) -> Any:
        if op == "state":
            return [len(self.items), self.maxsize]
        return len(self.items)

    def ask_size(self, op: str) -> Any:
        if not self.lent:
            return self.size_answer(op)
        self.recall()
        self.queries.append((self.defer_reply(), op))
        return None

    def do_qsize(self) -> Any:
        return self.ask_size("qsize")

    def do_state(self) -> Any:
        """[items, maxsize]: empty() and full() in one answer."""
        return self.ask_size("state")

    def do_sync(self) -> bool:
        """Answered once every put this asker sent before has arrived."""
        return True

    def do_task_done(self) -> None:
        if self.unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self.unfinished -= 1
        if self.unfinished == 0:
            for token in self.joiners:
                if token in self.parked:
                    self.answer(token, True)
            self.joiners = []

    def do_join(self, token: int, who: list[Any]) -> Any:
        ref = who[2]
        if self.unfinished == 0:
            return True
        self.watch_owner(ref)
        self.joiners.append(token)
        self.park(token, {"ref": ref})
        return None


# -- pipes ------------------------------------------------------------------

class PipeServer(Primitive):
    """Both ends of a Pipe. ``inbox[s]`` holds what end ``s`` will receive,
    as (raw, payload): raw bytes from ``send_bytes``, else a value. An end is
    closed when no process holds it any more (``holders[s]``)."""

    label = "Pipe"

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        self.inbox: tuple[collections.deque, collections.deque] = (
            collections.deque(), collections.deque())
        self.holders: tuple[dict[int, Any], dict[int, Any]] = ({}, {})
        self.ever_held = [False, False]
        self.readers: tuple[dict[int, bool], dict[int, bool]] = ({}, {})  # token -> consumes

    def closed(self, side: int) -> bool:
        return self.ever_held[side] and not self.holders[side]

    def do_attach(self, side: int, handle: int, who: list[Any]) -> bool:
        ref = who[2]
        self.holders[side][handle] = ref
        self.ever_held[side] = True
        self.watch_owner(ref)
        return True

    def do_detach(self, side: int, handle: int) -> None:
        if self.holders[side].pop(handle, 0) != 0 and self.closed(side):
            self.hang_up(1 - side)

    def hang_up(self, side: int) -> None:
        """End ``side``'s peer is closed: its waiting readers learn it."""
        if self.inbox[side]:
            return
        for token in list(self.readers[side]):
            del self.readers[side][token]
            if self.readers_consume(token):
                self.fail(token, EOFError())
            else:
                self.answer(token, True)

    def readers_consume(self, token: int) -> bool:
        return self.parked[token][1]["consume"]

    def do_send(self, side: int, raw: bool, payload: Any) -> None:
        to = 1 - side
        readers = self.readers[to]
        while readers:
            token = next(iter(readers))
            del readers[token]
            if self.parked[token][1]["consume"]:
                self.answer(token, [raw, payload])
                return
            self.answer(token, True)  # a poll: the message stays
        self.inbox[to].append((raw, payload))

    def do_recv(self, token: int, side: int, consume: bool, who: list[Any],
                block: bool) -> Any:
        ref = who[2]
        box = self.inbox[side]
        if box:
            if not consume:
                return True
            raw, payload = box.popleft()
            return [raw, payload]
        if self.closed(1 - side):
            if consume:
                raise EOFError
            return True  # poll() is true at end of file: recv() will not block
        if not block:
            return False if not consume else EMPTY
        self.watch_owner(ref)
        self.readers[side][token] = consume
        self.park(token, {"ref": ref, "consume": consume})
        return None

    def cancelled(self, token: int, info: Any) -> None:
        for readers in self.readers:
            readers.pop(token, None)

    def owner_gone(self, ref: ActorRef) -> None:
        for token, (_, info) in list(self.parked.items()):
            if info.get("ref") == ref:
                for readers in self.readers:
                    readers.pop(token, None)
        super().owner_gone(ref)
        for side in (0, 1):
            for handle, owner in list(self.holders[side].items()):
                if owner == ref:
                    self.do_detach(side, handle)


# -- shared values ------------------------------------------------------------

class ValueServer(LockServer):
    """Value and Array: the data, and the RLock ``get_lock()`` returns."""

    label = "Value"

    def __init__(self, data: Any, is_array: bool, name: str = "") -> None:
        super().__init__("rlock", 1, name)
        self.label = "Array" if is_array else "Value"
        self.data = data

    def do_get(self) -> Any:
        return self.data

    def do_set(self, value: Any) -> None:
        self.data = value

    def do_getitem(self, index: Any) -> Any:
        if isinstance(index, list):
            index = slice(*index)
        return self.data[index]

    def do_setitem(self, index: Any, value: Any) -> None:
        if isinstance(index, list):
            index = slice(*index)
            if len(range(*index.indices(len(self.data)))) != len(value):
                raise ValueError("Can only assign sequence of same size")
        self.data[index] = value

    def do_add(self, delta: Any) -> Any:
        """value += delta, atomically (not in the stdlib API; used by tests)."""
        self.data += delta
        return self.data


# -- managed objects --------------------------------------------------------

class ObjectServer(Primitive):
    """A Manager's shared object (dict, list, Namespace or a registered
    type): method calls with pickled arguments and results."""

    label = "object"

    def __init__(self, factory: Any, args: Any, kwargs: Any, name: str = "") -> None:
        super().__init__(name)
        self.obj = _unpack(factory)(*_unpack(args), **_unpack(kwargs))
        self.label = type(self.obj).__name__
        self.lock = threading.Lock()

    def do_call(self, method: str, args: Any) -> Any:
        args, kwargs = _unpack(args)
        if method == "__getattribute__" and args and args[0].startswith("__"):
            raise AttributeError(args[0])
        result = getattr(self.obj, method)(*args, **kwargs)
        if isinstance(result, (KeysView, ValuesView, ItemsView)):
            result = list(result)  # a view cannot travel; its contents can
        return pack(result)

    def do_getattr(self, name: str) -> Any:
        return pack(getattr(self.obj, name))

    def do_setattr(self, name: str, value: Any) -> None:
        setattr(self.obj, name, _unpack(value))

    def do_delattr(self, name: str) -> None:
        delattr(self.obj, name)

    def do_copy(self) -> Any:
        return pack(pickle.loads(pickle.dumps(self.obj)))


def _unpack(value: Any) -> Any:
    """A value sent to a primitive, back (primitives live in host processes)."""
    return unpack(value, running_host().runtime)  # type: ignore[union-attr]
