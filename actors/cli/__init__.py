"""The ``actors`` command and the service runner behind ``actors run``.

Layering: this package uses the runtime's public API (``actors``); the
runtime never imports it. Modules, one concept each:

    commands   the command line: parsing, the verbs, exit codes
    config     the service file: reading and checking it
    service    ``actors run``: the running service and its events
    reload     what a reload changes, and in which order
    control    the control endpoint (server and client protocol)
    rundir     the run folder: lock, pid file, control socket
    notify     systemd's notify protocol and watchdog
    logsetup   logging of a service
    views      text for ``status``, ``tree`` and ``nodes``
    top        ``actors top``
"""

from actors.cli.commands import main

__all__ = ["main"]
