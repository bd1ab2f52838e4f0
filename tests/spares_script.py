"""Started by test_spares.py: a system with a supervised and an unsupervised
actor and a grown spare pool. Prints one line of JSON with the pids (main,
template, hosts, spares), then waits for stdin to close or a signal.
argv: transport."""

import json
import os
import sys

import actors
from sample_actors import Counter

if __name__ == "__main__":
    from conftest import wait_for  # (here: children that import this module skip pytest)

    with actors.ActorSystem(sys.argv[1], spares=1, max_spares=4) as system:
        system.spawn(actors.Supervisor, [actors.ChildSpec("w", Counter)], name="sup")
        refs = [system.spawn(Counter) for _ in range(6)]  # the pool grows
        launcher = system._node.launcher
        wait_for(lambda: not system.spare_pool()["starting"], 30, "the spares to start")
        print(json.dumps({"main": os.getpid(), "template": system.spare_pool()["template"],
                          "hosts": sorted(h.pid for h in launcher.live_hosts()),
                          "spares": sorted(h.pid for h in launcher.pool)}), flush=True)
        sys.stdin.read()
