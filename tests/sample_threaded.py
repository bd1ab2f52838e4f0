"""An actor whose module starts a thread when imported (the template
process must refuse to fork once such a module is imported in it)."""

import os
import threading

import actors

_stop = threading.Event()
threading.Thread(target=_stop.wait, name="sample-threaded", daemon=True).start()


class Threaded(actors.Actor):
    def receive(self, message):
        return os.getpid()
