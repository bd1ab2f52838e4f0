"""The actor that serves a Lock, RLock, Semaphore or BoundedSemaphore
(``actors.mp.locks`` has the handles programs hold).

It keeps who holds what (``holders``), queues the acquires that must wait,
and lends a Lock or RLock to the process that takes it when that process
can be recalled (the lease half is ``actors.mp.lending``); a holder that
dies has its hold released, and the next acquirer is told (``owner_died``).
"""

from __future__ import annotations

from typing import Any

from actors.mp.lending import Lending
from actors.mp.primitive import Primitive, log
from actors.ref import ActorRef

__all__ = ["LockServer"]


class LockServer(Lending, Primitive):
    """Lock, RLock, Semaphore and BoundedSemaphore.

    ``holders`` maps (pid, thread) to [count, ref, member]. A Lock may be
    released by anyone (as ``multiprocessing.Lock``); an RLock only by its
    owner. A Lock or RLock acquired by a process that can take a lease is
    *lent* (``loan``; see ``actors.mp.leases``): it stays with that process
    until another asks for it.
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
        self.init_lending()

    def do_acquire(self, token: int, who: list[Any], count: int, lease: list[Any] | None,
                   block: bool) -> list[Any]:
        key = (who[0], who[1])
        if self.kind == "rlock" and key in self.holders:
            self.holders[key][0] += count
            return [True, False, 0, None]
        if self.value > 0 and not self.parked:
            return self.grant(key, who, count, lease)
        if not block and (self.loan is None or self.loan.held is not None):
            return [False, False, 0, None]
        self.watch_owner(who[2])
        # Bound (the deadlock detector follows it to the holder) for locks:
        # semaphores are often released by others, as signals.
        self.park(token, {"key": key, "ref": who[2], "who": who, "count": count,
                          "lease": lease, "nowait": not block},
                  bound=block and self.kind in ("lock", "rlock"))
        if self.loan is not None:
            self.recall()
        self.sync_holds()
        return None  # answered later

    def grant(self, key: tuple[int, int], who: list[Any], count: int,
              lease: list[Any] | None) -> list[Any]:
        self.value -= 1
        died, self.owner_died = self.owner_died, False
        self.watch_owner(who[2])
        if lease is not None and self.kind in ("lock", "rlock"):
            return self.lend(who, lease, died)
        entry = self.holders.get(key)
        if entry is None:
            self.holders[key] = [count if self.kind == "rlock" else 1, who[2], who[3]]
        else:
            entry[0] += 1
        return [True, died, 0, None]

    def do_release(self, who: list[Any], told: bool = False) -> int | None:
        key, pid = (who[0], who[1]), who[0]
        error: Exception | None = None
        if self.loan is not None and self.kind == "lock":
            self.release_lent(told)
            return None
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

    def do_release_all(self, who: list[Any]) -> int | None:
        """Condition.wait: release an RLock completely; the count it had."""
        key = (who[0], who[1])
        entry = self.holders.get(key)
        if self.kind != "rlock":
            return None if self.do_release(who) is None else 1
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
            self.answer(token, self.grant(info["key"], info["who"], info["count"],
                                          info["lease"]))
        self.settle()
        self.sync_holds()

    def cancelled(self, token: int, info: Any) -> None:
        self.sync_holds()

    def sync_holds(self) -> None:
        """Tell the deadlock detector who the parked acquirers wait for: the
        holder, when there is exactly one (with several, any of them may
        release, and the graph has no OR edges). A lease holder counts
        once it said it holds the lock past its grace."""
        members = {entry[2]: key[0] for key, entry in self.holders.items()}
        loan = self.loan
        if loan is not None and loan.held is not None:
            members[loan.held[1]] = loan.pid
        wanted = None
        if self.parked and len(members) == 1:
            wanted = next(iter(members))
        for member in [m for m in self.holds if m != wanted]:
            self.end_hold(self.holds.pop(member))
        if wanted is not None and wanted not in self.holds:
            self.holds[wanted] = self.begin_hold(wanted, f"held by pid {members[wanted]}")

    def owner_gone(self, ref: ActorRef) -> None:
        super().owner_gone(ref)
        freed = [key for key, (_, owner, _) in self.holders.items() if owner == ref]
        for key in freed:
            count = self.holders.pop(key)[0]
            self.value += 1 if self.kind == "rlock" else count
            self.owner_died = True
            log.warning("%s was held by pid %d, which died: released (the next acquirer "
                        "sees owner_died=True)", self.describe(), key[0])
        if self.loan_gone(ref) or freed:
            self.wake()

    def do_state(self) -> list[Any] | None:
        """[free permits, holders as [pid, tid, count], initial permits]."""
        if self.unclear("state"):
            return None
        loan = self.loan
        holders = [[k[0], k[1], v[0]] for k, v in self.holders.items()]
        if loan is not None and loan.held is not None:
            holders.append([loan.pid, loan.held[0], loan.held[2]])
        return [self.value, holders, self.maximum]

    def do_get_value(self) -> int | None:
        return None if self.unclear("get_value") else self.value
