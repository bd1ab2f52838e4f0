"""``actors top`` in a real terminal: tmux runs it in a pane of fixed
size, the test reads the screen as a person would see it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import uuid

import pytest

from conftest import wait_for
from service_harness import services
from test_service_run import ACTORS, APP

pytestmark = [pytest.mark.timeout(90),
              pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")]


@pytest.fixture
def service(tmp_path):
    """A factory of services (APP by default), cleaned up after the test."""
    yield from services(tmp_path, APP)


def test_top_draws_a_live_table_in_a_terminal_and_quits_on_q(service):
    """In a 120x30 tmux pane, ``actors top`` shows the header and one row
    per actor with its pid and state, refreshes in place (the uptime
    moves), and exits 0 when q is pressed."""
    run = service().start()
    tree = run.tree()
    tmux = ["tmux", "-L", f"actors-top-{uuid.uuid4().hex[:10]}", "-f", "/dev/null"]

    def screen() -> list[str]:
        return subprocess.run([*tmux, "capture-pane", "-p", "-t", "top"], capture_output=True,
                              text=True, timeout=10).stdout.splitlines()

    status = os.path.join(run.folder, "top.status")
    command = f"{sys.executable} -m actors top shop --interval 0.3; echo $? > {status}"
    try:
        subprocess.run([*tmux, "new-session", "-d", "-s", "top", "-x", "120", "-y", "30",
                        command, ";", "set-option", "-t", "top", "remain-on-exit", "on"],
                       env=run.env, cwd=run.folder, check=True, timeout=10)

        def drawn() -> list[str] | None:
            lines = screen()
            rows = {line.split()[0]: line.split() for line in lines[4:] if line.strip()}
            ready = (lines and lines[0].startswith("actors top - shop: running")
                     and all(name in rows for name in ACTORS)
                     and all(rows[name][4] != "-" for name in ACTORS))  # rates known
            return lines if ready else None
        lines = wait_for(drawn, 30, "top to draw every actor with its rates")
        assert f"pid {run.pid}" in lines[0] and "6 actors" in lines[0]
        assert "q: quit" in lines[1]
        assert lines[3].split() == ["NAME", "PID", "STATE", "MBOX", "MSG/S", "CPU%", "RSS",
                                    "RESTARTS", "CLASS"]
        for line, name in zip(lines[4:10], ACTORS, strict=True):
            cells = line.split()
            assert cells[:3] == [name, str(tree[name]["pid"]), "running"], line
        assert len(screen()) <= 30

        uptime = re.search(r"up (\S+),", lines[0]).group(1)
        wait_for(lambda: (m := re.search(r"up (\S+),", screen()[0])) and m.group(1) != uptime,
                 10, "the header to be redrawn with a new uptime")

        subprocess.run([*tmux, "send-keys", "-t", "top", "q"], check=True, timeout=10)
        # (its exit status is written by the pane's shell: tmux itself may
        # not have reaped the process yet when its terminal closes)
        def exit_status() -> str:
            try:
                with open(status) as f:
                    return f.read().strip()
            except FileNotFoundError:
                return ""
        assert wait_for(exit_status, 15, "top to exit on q") == "0"
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, timeout=10)
    run.signal(signal.SIGTERM)
    assert run.wait_exit() == 0
