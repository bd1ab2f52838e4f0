"""Processes never outlive the program: SIGKILL of the main program, Ctrl-C,
and interpreter exit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

import actors
from conftest import wait_for, wait_gone

HERE = os.path.dirname(os.path.abspath(__file__))


def start_script(transport: str, log_path: str) -> tuple[subprocess.Popen, dict]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, os.path.dirname(HERE)]))
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "orphan_script.py"),
                             transport, log_path], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        proc.wait(10)
        pytest.fail("the script did not start its actors")
    return proc, json.loads(line)


def wait_dumping_stacks(proc: subprocess.Popen, timeout: float) -> int:
    """``proc.wait(timeout)``; a program still running by then first writes
    its threads' stacks to stderr (shown with the failure)."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGUSR1)
        try:
            proc.wait(2)
        except subprocess.TimeoutExpired:
            pass
        raise


def cleanup(proc: subprocess.Popen, pids: list[int]) -> None:
    """Kill what is left by the pids we know (only if the test failed)."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    for pid in wait_gone(pids, 0):
        os.kill(pid, signal.SIGKILL)
    for stream in (proc.stdin, proc.stdout):
        stream.close()


@pytest.mark.parametrize("how", ["template", "spawn"])
def test_a_child_hanging_in_the_main_scripts_import_dies_with_the_program(how, tmp_path):
    """A child that hangs while it imports the user's main script (which
    multiprocessing does before any code of ours runs there: the template
    process, or a spawned host) still dies with the program's kill -9."""
    pids_file = tmp_path / "pids"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, os.path.dirname(HERE)]),
               ACTORS_TEST_PIDS=str(pids_file))
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "hang_import_script.py"), how],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    pids: list[int] = []
    try:
        def hanging() -> list[int]:
            text = pids_file.read_text() if pids_file.exists() else ""
            return [int(line) for line in text.split()]
        pids = wait_for(hanging, 60, "a child hanging in the script's import")
        assert proc.poll() is None
        proc.kill()
        proc.wait(10)
        pids = hanging()
        assert wait_gone(pids, 10) == [], f"children {pids} outlived the program"
    finally:
        cleanup(proc, pids)


@pytest.mark.parametrize("transport", ["zmq", "pipe"])
def test_sigkill_of_the_main_program_leaves_no_orphan(transport, tmp_path):
    """kill -9 of the program: every actor process exits within seconds."""
    proc, info = start_script(transport, str(tmp_path / "log"))
    try:
        assert len(info["hosts"]) == 3
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert wait_gone(info["hosts"], 5.0) == []
        # the killed program could not remove its run directory; the next
        # system started by this user does
        assert os.path.isdir(info["rundir"])
        actors.ActorSystem(transport).shutdown()
        assert not os.path.exists(info["rundir"])
    finally:
        cleanup(proc, info["hosts"])


@pytest.mark.parametrize("transport", ["zmq", "pipe"])
def test_ctrl_c_stops_everything_in_order(transport, tmp_path):
    """SIGINT (Ctrl-C) in the program stops actors in order, running on_stop,
    and no process is left."""
    path = tmp_path / "log"
    proc, info = start_script(transport, str(path))
    try:
        os.kill(proc.pid, signal.SIGINT)
        assert wait_dumping_stacks(proc, 30) == 0
        assert proc.stdout.read().strip() == "interrupted"
        assert wait_gone(info["hosts"], 5.0) == []
        assert path.read_text().split("\n")[:5] == [
            "start child", "start solo", "stop solo", "stop child", "stop parent"]
    finally:
        cleanup(proc, info["hosts"])


def test_interpreter_exit_without_shutdown_stops_everything(tmp_path):
    """A program that never calls shutdown still stops its actors at exit."""
    script = tmp_path / "forgetful.py"
    script.write_text(
        "import actors, json, os, sys\n"
        "from sample_actors import StopLogger\n"
        "if __name__ == '__main__':\n"
        "    system = actors.ActorSystem()\n"
        f"    a = system.spawn(StopLogger, {str(tmp_path / 'log')!r}, 'a')\n"
        "    print(json.dumps([a.ask('pid', timeout=30)]), flush=True)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, os.path.dirname(HERE)]))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert wait_gone(json.loads(out.stdout), 5.0) == []
    assert (tmp_path / "log").read_text() == "start a\nstop a\n"
