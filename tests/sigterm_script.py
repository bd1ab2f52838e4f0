"""A library program for the SIGTERM tests: two actors in a ``with
ActorSystem()`` block, waiting in ``join()``. ``own`` as second argument
installs the program's own SIGTERM handler first."""

import signal
import sys

import actors
from sample_service import Recorder


def own_handler(signum, frame):
    print("own handler", flush=True)
    sys.exit(7)


if __name__ == "__main__":
    if sys.argv[2:] == ["own"]:
        signal.signal(signal.SIGTERM, own_handler)
    with actors.ActorSystem(spares=0) as system:
        system.spawn(Recorder, sys.argv[1], "first", name="first")
        system.spawn(Recorder, sys.argv[1], "second", name="second")
        print("ready", " ".join(str(e["pid"]) for e in system.tree()), flush=True)
        system.join()
    print("left the with block", flush=True)
