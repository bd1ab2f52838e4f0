"""Started by test_processes.py: a system with a small tree of actors.

Prints one line of JSON with the pids (main, hosts), then waits for stdin to
close or a signal. argv: transport, on_stop log path.
"""

import faulthandler
import json
import os
import select
import signal
import sys

import actors
from sample_actors import Parent, StopLogger

def wait_for_stdin_end() -> None:
    """Block until stdin closes, yet raise KeyboardInterrupt for a SIGINT
    at any moment: a plain ``sys.stdin.read()`` misses one that arrives
    just before its read(2) starts (the handler has run, so nothing
    interrupts the call), so wait in select() on stdin and on the
    signal wakeup fd, which the handler writes to."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    while True:
        ready, _, _ = select.select([sys.stdin, wake_r], [], [])
        if sys.stdin in ready and not os.read(sys.stdin.fileno(), 65536):
            return
        if wake_r in ready:
            os.read(wake_r, 512)  # the signal's handler runs before the next line


if __name__ == "__main__":
    # a test that finds this program stuck asks for its threads' stacks
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    # Ctrl-C as in a terminal, even when started by a runner that ignores
    # SIGINT (a background job of a non-interactive shell does, and its
    # children inherit that: Python then never raises KeyboardInterrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    transport, path = sys.argv[1], sys.argv[2]
    with actors.ActorSystem(transport) as system:
        parent = system.spawn(Parent, path, name="parent")
        parent.ask(("spawn_logger", "child"), timeout=60)
        solo = system.spawn(StopLogger, path, "solo", name="solo")
        pids = [a["pid"] for a in system.actors()]
        try:
            # printed inside the try: the test signals us as soon as it reads this
            print(json.dumps({"main": os.getpid(), "hosts": pids,
                              "rundir": system._node.rundir}), flush=True)
            wait_for_stdin_end()  # until the test closes stdin or signals us
        except KeyboardInterrupt:
            print("interrupted", flush=True)
