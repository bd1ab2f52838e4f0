"""Started by test_processes.py: a main script whose import hangs in the
children that import it (``__mp_main__``: the template process, a spawned
host), after each writes its pid to the file ACTORS_TEST_PIDS names.
argv: "template" or "spawn" (template=False)."""

import os
import sys
import threading

if __name__ == "__mp_main__":
    with open(os.environ["ACTORS_TEST_PIDS"], "a") as f:
        f.write(f"{os.getpid()}\n")
    threading.Event().wait()  # never set: the import hangs here

import actors  # noqa: E402
from sample_actors import Counter  # noqa: E402

if __name__ == "__main__":
    with actors.ActorSystem(template=sys.argv[1] == "template", spares=0,
                            spawn_timeout=600) as system:
        system.spawn(Counter, 0)  # waits for a child that never comes up
