"""Started by test_spares.py: a script WITHOUT the ``if __name__ ==
"__main__":`` guard. Under spawn, every child re-imports it and so starts
an ActorSystem of its own while it is still bootstrapping; that must fail
at once in the child (the standard library's error), so the program ends
with SpawnError instead of waiting out its spawn timeouts."""

import actors
from sample_actors import Counter

with actors.ActorSystem() as system:
    system.spawn(Counter)
    print("unreachable: the child could not have started")
