"""Layering and import-time side effects, each checked in a fresh interpreter."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run_python(code: str) -> dict:
    """Run ``code`` in a fresh interpreter rooted at the repo; return the JSON it prints last."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


ACTORS_MODULES = """
    import json, sys
    print(json.dumps(sorted(m for m in sys.modules if m == "actors" or m.startswith("actors."))))
"""


def test_transport_does_not_import_actors():
    """Importing transport and all its modules loads no module of the actors package."""
    loaded = run_python("import transport, transport.codec, transport.zmq, transport.pipe\n"
                        + textwrap.dedent(ACTORS_MODULES))
    assert loaded == []


def test_actors_import_is_detected():
    """The subprocess check above really sees actors modules when they are imported."""
    loaded = run_python("import actors\n" + textwrap.dedent(ACTORS_MODULES))
    assert "actors" in loaded and "actors.runtime" in loaded


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
@pytest.mark.parametrize("modules", [
    "actors",
    "actors, actors.cli, actors.host, actors.logs, actors.network, actors.node, "
    "actors.process, actors.protocol, actors.runtime, actors.system",
])
def test_importing_actors_has_no_side_effects(modules):
    """Importing actors starts no thread, opens no file descriptor or socket and spawns no process."""
    result = run_python(f"""
        import json, os, sys, threading

        def fds():
            return {{fd: os.readlink(f"/proc/self/fd/{{fd}}")
                    for fd in os.listdir("/proc/self/fd")
                    if os.path.exists(f"/proc/self/fd/{{fd}}")}}

        threads_before = threading.active_count()
        fds_before = len(os.listdir("/proc/self/fd"))
        fd_map_before = fds()

        import {modules}

        threads_after = threading.active_count()
        fds_after = len(os.listdir("/proc/self/fd"))
        fd_map_after = fds()
        import multiprocessing
        print(json.dumps({{
            "threads": [threads_before, threads_after],
            "thread_names": [t.name for t in threading.enumerate()],
            "fds": [fds_before, fds_after],
            "new_fds": {{k: v for k, v in fd_map_after.items() if fd_map_before.get(k) != v}},
            "children": [p.pid for p in multiprocessing.active_children()],
        }}))
    """)
    assert result["threads"] == [1, 1], result["thread_names"]
    assert result["fds"][1] == result["fds"][0], result["new_fds"]
    assert result["new_fds"] == {}
    assert result["children"] == []
