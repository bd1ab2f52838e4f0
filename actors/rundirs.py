"""Run directories: each node's private folder (mode 0700) in the temporary
directory, ``actors-PID-XXXX``, holding its ipc sockets and counters files."""

from __future__ import annotations

import os
import shutil
import tempfile

__all__ = ["sweep_stale_rundirs"]


def sweep_stale_rundirs() -> None:
    """Remove run directories left by programs of this user that were killed
    (a killed node cannot clean up after itself; its children die with it)."""
    base = tempfile.gettempdir()
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        parts = name.split("-")
        if len(parts) != 3 or parts[0] != "actors" or not parts[1].isdigit():
            continue
        pid = int(parts[1])
        path = os.path.join(base, name)
        try:
            if pid == os.getpid() or os.stat(path).st_uid != os.getuid():
                continue
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue
