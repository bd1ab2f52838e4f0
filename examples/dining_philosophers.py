"""Dining philosophers: the naive protocol deadlocks, the runtime names the
cycle, and resource ordering fixes it.

Five philosophers sit at a round table, each an actor in a process of its
own. Between each two neighbours lies a fork; to eat, a philosopher needs
both of its forks. Philosopher i's forks are i (its left) and i+1 (its
right; the last one's right fork is fork 0).

A fork is an actor that never waits: ``take`` answers at once, either None
(the fork is yours) or the ref of the philosopher holding it. A philosopher
who finds a fork taken asks its holder ``finished_with(fork)``, a blocking
call. A philosopher handles that call only between meals (an actor handles
one message at a time, and it puts its forks down before its meal ends), so
the call returns once the holder has put the fork down; then it takes the
fork again. So a philosopher waiting for a fork waits on the philosopher
who holds it, and that is an edge of the runtime's wait-for graph. (Forks
that made takers wait with ``defer_reply`` would hide the cycle: a fork
that answers later is idle, not blocked, so every chain of waits would end
at an idle fork, and no cycle would form for the detector to find.)

To make the dangerous moment certain rather than likely, every round starts
with a barrier: each philosopher reaches for its first fork, then waits at
the table (an actor that answers with ``defer_reply`` once all five are
there), and only then goes for its second fork.

Naive protocol: left fork first, then right. After the barrier every
philosopher holds its left fork and waits on its right neighbour, who holds
that fork and waits on *its* right neighbour: a cycle through all five
processes. Within a fraction of a second the runtime fails the youngest of
those waits with ``DeadlockError`` naming the whole cycle. That philosopher
puts its fork down and its dinner fails; the others go on and eat.

Fixed protocol: every philosopher takes its lower-numbered fork first (the
last one takes fork 0 before fork 4). Waits then always go from a lower
fork to a higher one, so no cycle can form: every philosopher eats, every
round, and the detector reports nothing.

The forks and the table share one process (``colocate_with``); they never
wait, so that is safe.

Run it:  python examples/dining_philosophers.py [zmq|pipe]
"""

import sys
import time

import actors

NAMES = ["Aristotle", "Kant", "Spinoza", "Marx", "Russell"]
ROUNDS = 20  # rounds of the fixed protocol; every philosopher eats once a round
TIMEOUT = 30.0  # no wait in this program should come anywhere near it


class Fork(actors.Actor):
    """A fork: free, or held by one philosopher. Never waits."""

    def __init__(self, number):
        self.number = number
        self.holder = None

    def take(self, who):
        """None if the fork is now ``who``'s, else the ref of its holder."""
        if self.holder is None:
            self.holder = who
            return None
        return self.holder

    def put(self, who):
        assert self.holder == who, f"fork {self.number} put down by {who.name}, not its holder"
        self.holder = None


class Table(actors.Actor):
    """A barrier: ``everyone_reached`` returns once all seats have called it."""

    def __init__(self, seats):
        self.seats = seats
        self.waiting = []

    def everyone_reached(self):
        self.waiting.append(self.defer_reply())  # answered below, later
        if len(self.waiting) == self.seats:
            for reply in self.waiting:
                reply.send(None)
            self.waiting = []


class Philosopher(actors.Actor):
    def __init__(self, name, left, right, table):
        self.name = name
        self.left = left  # (fork number, fork ref)
        self.right = right
        self.table = table
        self.meals = 0

    def dine(self, ordered):
        """One meal. ``ordered``: take the lower-numbered fork first (the
        fix); else the left fork first (the naive protocol)."""
        first, second = self.left, self.right
        if ordered and second[0] < first[0]:
            first, second = second, first
        held = []
        try:
            if first[1].proxy(timeout=TIMEOUT).take(self.ref) is None:
                held.append(first)
            self.table.proxy(timeout=TIMEOUT).everyone_reached()
            if not held:
                self._take(first)
                held.append(first)
            self._take(second)  # the naive protocol's cycle closes here
            held.append(second)
            self.meals += 1  # eating: both forks are ours
            return f"{self.name} ate with forks {first[0]} and {second[0]}"
        finally:
            for number, fork in held:  # confirmed puts: nothing is left in flight
                fork.proxy(timeout=TIMEOUT).put(self.ref)

    def _take(self, fork):
        number, ref = fork
        while (holder := ref.proxy(timeout=TIMEOUT).take(self.ref)) is not None:
            # Blocks until the holder has put the fork down (see finished_with).
            holder.proxy(timeout=TIMEOUT).finished_with(number)

    def finished_with(self, number):
        """Handled only between two meals of this philosopher, when it holds
        no fork: returning is the answer 'I have put fork ``number`` down'."""
        return number

    def count_meals(self):
        return self.meals


def seat(system):
    """Forks and table in one process; a process per philosopher."""
    table = system.spawn(Table, len(NAMES), name="table")
    forks = [system.spawn(Fork, i, name=f"fork {i}", colocate_with=table)
             for i in range(len(NAMES))]
    return [system.spawn(Philosopher, name, (i, forks[i]),
                         ((i + 1) % len(NAMES), forks[(i + 1) % len(NAMES)]), table, name=name)
            for i, name in enumerate(NAMES)]


def dinner(philosophers, ordered):
    """Every philosopher dines at once; the outcome of each, in seat order."""
    futures = [p.proxy().dine.future(ordered) for p in philosophers]
    outcomes = []
    for future in futures:
        try:
            outcomes.append(future.result(TIMEOUT))
        except actors.DeadlockError as e:
            outcomes.append(e)
    return outcomes


def main(transport):
    with actors.ActorSystem(transport) as system:
        philosophers = seat(system)

        print("naive protocol: everyone takes the left fork, then the right one")
        started = time.monotonic()
        outcomes = dinner(philosophers, ordered=False)
        seconds = time.monotonic() - started
        for name, outcome in zip(NAMES, outcomes):
            if isinstance(outcome, actors.DeadlockError):
                print(f"  {name}: DeadlockError: {outcome}")
            else:
                print(f"  {outcome}")
        failed = sum(isinstance(o, actors.DeadlockError) for o in outcomes)
        print(f"  {failed} dinner failed with DeadlockError, {len(NAMES) - failed} philosophers "
              f"ate, in {seconds:.2f} s")
        print("  the cycle, as system.deadlocks records it:")
        for step in system.deadlocks[-1]["cycle"]:
            print(f"    {step}")
        reports = len(system.deadlocks)
        before = [p.proxy(timeout=TIMEOUT).count_meals() for p in philosophers]

        print(f"fixed protocol: the lower-numbered fork first ({ROUNDS} rounds)")
        started = time.monotonic()
        failures = 0
        for _ in range(ROUNDS):
            failures += sum(isinstance(o, Exception) for o in dinner(philosophers, ordered=True))
        seconds = time.monotonic() - started
        meals = [p.proxy(timeout=TIMEOUT).count_meals() - b
                 for p, b in zip(philosophers, before)]
        print("  meals: " + ", ".join(f"{n} {m}" for n, m in zip(NAMES, meals)))
        print(f"  {sum(meals)} meals in {ROUNDS} rounds of "
              f"{len(NAMES)} philosophers, {failures} failed, "
              f"{len(system.deadlocks) - reports} deadlocks reported, in {seconds:.2f} s")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "zmq")
