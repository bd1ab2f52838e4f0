"""The ``actors`` command: one verb per subcommand, exit codes for scripts.

    run FILE                      run the service in the foreground
    check FILE                    check the file, import its classes; start nothing
    status NAME|FILE              one line per actor
    tree NAME|FILE [--json]       the supervision tree
    top NAME|FILE [--once]        live per-actor figures
    nodes NAME|FILE [--json]      the live members of the service's cluster
    reload NAME|FILE              as SIGHUP: apply the file's changes
    stop NAME|FILE [--timeout S]  orderly stop, wait for the exit
    keys new DIR [--node NAME]    key material for tcp:// links (actors.cli.keys)

Exit status: 0 success; 1 failure (invalid file, failed run or reload, a
stop that did not end in time, and for ``status``: dead but its pid file
remains); 2 usage error; 3 the service is not running; 4 it runs but does
not answer (status unknown). These are the LSB ``status`` codes.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import actors
from actors.cli.config import ConfigError, check_name, load, read_name
from actors.cli.control import NoAnswer, ProtocolError, Request, call
from actors.cli.keys import add_parser as add_keys_parser
from actors.cli.keys import cmd_keys
from actors.cli.rundir import RunDir

__all__ = ["main"]

OK, FAILED, USAGE, NOT_RUNNING, UNKNOWN = 0, 1, 2, 3, 4
ANSWER_TIMEOUT = 10.0   # seconds a query waits for the service


class Stop(Exception):
    """End the command with ``code``, after printing ``message`` to stderr."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="actors",
        description="actors: an actor runtime for Python (actors in spawned processes, "
                    "msgpack over ZeroMQ or Pipes). Run a supervision tree from a file as a "
                    "service, and look at it or control it from outside.",
        epilog="Exit status: 0 ok, 1 failure, 2 usage, 3 not running, 4 not answering. "
               "See docs/deployment.md.")
    parser.add_argument("--version", action="version", version=f"actors {actors.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, text: str, target: str = "NAME|FILE") -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("target", metavar=target,
                         help="the service file" if target == "FILE" else
                         "a service's name, or its file (its name is read from it)")
        return sub

    command("run", "run the service of FILE in the foreground (SIGTERM/SIGINT: stop in "
                   "order; SIGHUP: reload)", "FILE")
    command("check", "check FILE and import its actor classes; start nothing", "FILE")
    command("status", "one line per actor; exit 0 running, 3 not running")
    sub = command("tree", "the supervision tree: name, class, pid, state, restarts, last exit")
    sub.add_argument("--json", action="store_true", help="as JSON")
    sub = command("top", "live per-actor view: mailbox, messages/s, CPU, memory, restarts")
    sub.add_argument("--once", action="store_true", help="print one table and exit")
    sub.add_argument("--interval", type=_seconds, default=1.0, metavar="S",
                     help="seconds between refreshes (default 1)")
    sub = command("nodes", "the live members of the service's cluster: name, node id, "
                           "address, lease left; * marks the service's own node")
    sub.add_argument("--json", action="store_true", help="as JSON")
    command("reload", "as SIGHUP: start added children, stop removed ones, restart changed "
                      "ones; a bad file changes nothing")
    sub = command("stop", "stop in order and wait for the exit")
    sub.add_argument("--timeout", type=_seconds, default=60.0, metavar="S",
                     help="seconds to wait for the exit before killing it (default 60)")
    add_keys_parser(commands)
    return parser


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < 86400:
        raise argparse.ArgumentTypeError(f"must be between 0 and 86400 seconds, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    """Run the ``actors`` command with ``argv`` (default: ``sys.argv[1:]``);
    returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return OK
    try:
        return COMMANDS[args.command](args)
    except Stop as e:
        print(f"actors {args.command}: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        return 130


# -- finding a service -------------------------------------------------------------------
def _name(target: str) -> str:
    """The service NAME or FILE names."""
    if os.path.isfile(target) or target.endswith(".toml"):
        try:
            return read_name(target)
        except ConfigError as e:
            raise Stop(FAILED, str(e)) from None
    problem = check_name(target)
    if problem is not None:
        raise Stop(USAGE, f"not a service file nor a service name: {target!r} ({problem})")
    return target


def _running(target: str, stale: int = NOT_RUNNING) -> tuple[str, RunDir, int]:
    """Name, run folder and pid of a running service.

    Raises:
        Stop: NOT_RUNNING, or ``stale`` if it died leaving its pid file
            (``status`` says FAILED then, as LSB wants).
    """
    name = _name(target)
    rundir = RunDir(name)
    pid = rundir.read_pid()
    if pid is None:
        raise Stop(NOT_RUNNING, f"service {name!r} is not running (no pid file in "
                                f"{rundir.path})")
    if not _alive(pid):
        raise Stop(stale, f"service {name!r} is not running, but its pid file "
                           f"{rundir.pid_file} remains (pid {pid}: it died without stopping)")
    return name, rundir, pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True


def _ask(target: str, request: Request, timeout: float = ANSWER_TIMEOUT,
         stale: int = NOT_RUNNING) -> dict[str, Any]:
    """The reply of the running service ``target`` to ``request``."""
    name, rundir, pid = _running(target, stale)
    try:
        reply = call(rundir.endpoint, request, timeout, lambda: _alive(pid))
    except NoAnswer as e:
        raise Stop(UNKNOWN if _alive(pid) else NOT_RUNNING,
                   f"service {name!r} (pid {pid}): {e}") from None
    except ProtocolError as e:
        raise Stop(UNKNOWN, f"service {name!r} (pid {pid}) answered oddly: {e}") from None
    if not reply["ok"]:
        raise Stop(FAILED, reply.get("error", "failed"))
    return reply


# -- commands ------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from actors.cli.logsetup import configure
    from actors.cli.service import Service
    try:
        config = load(args.target)
    except ConfigError as e:
        print(f"actors run: {e}", file=sys.stderr)
        return FAILED
    configure(config.logging)
    return Service(config).run()


def cmd_check(args: argparse.Namespace) -> int:
    try:
        config = load(args.target)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return FAILED
    rundir = RunDir(config.name)
    print(f"{config.path}: ok: service {config.name!r}, {len(config.children)} "
          f"child{'ren' if len(config.children) != 1 else ''} "
          f"({', '.join(spec.name for spec in config.children) or 'none'}); "
          f"run folder {rundir.path}"
          + (f"; node {config.system['node']} of cluster {config.cluster.etcd}"
             if config.cluster is not None else ""))
    return OK


def cmd_status(args: argparse.Namespace) -> int:
    from actors.cli.views import status_lines
    reply = _ask(args.target, Request("status"), stale=FAILED)
    print("\n".join(status_lines(reply)))
    return OK


def _show(args: argparse.Namespace, op: str, key: str,
          lines: Callable[[dict[str, Any]], list[str]]) -> int:
    """Ask the service ``op``; print its ``key`` as JSON (``--json``), or as lines."""
    reply = _ask(args.target, Request(op))
    print(json.dumps(reply[key], indent=2) if args.json else "\n".join(lines(reply)))
    return OK


def cmd_tree(args: argparse.Namespace) -> int:
    from actors.cli.views import tree_lines
    return _show(args, "tree", "tree", tree_lines)


def cmd_nodes(args: argparse.Namespace) -> int:
    from actors.cli.views import nodes_lines
    return _show(args, "nodes", "members", nodes_lines)


def cmd_top(args: argparse.Namespace) -> int:
    from actors.cli import top
    _running(args.target)  # not running: say so before anything is drawn

    def fetch() -> dict[str, Any]:
        try:
            return _ask(args.target, Request("stats", timeout=min(1.0, args.interval)))
        except Stop as e:
            raise RuntimeError(str(e)) from None
    if not args.once and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise Stop(USAGE, "the live view needs a terminal; use --once for a table")
    if args.once:
        try:
            print("\n".join(top.once(fetch, args.interval)))
        except RuntimeError as e:
            raise Stop(NOT_RUNNING, str(e)) from None
        return OK
    why = top.live(fetch, args.interval)
    if why is not None:
        raise Stop(NOT_RUNNING, why)
    return OK


def cmd_reload(args: argparse.Namespace) -> int:
    name, rundir, pid = _running(args.target)
    try:
        reply = call(rundir.endpoint, Request("reload"), 600.0, lambda: _alive(pid))
    except (NoAnswer, ProtocolError) as e:
        raise Stop(UNKNOWN, f"service {name!r} (pid {pid}): {e}") from None
    report = reply.get("reload") or {}
    for warning in report.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    if not reply["ok"]:
        changed = report.get("added") or report.get("removed") or report.get("changed")
        print(f"actors reload: service {name!r}: "
              f"{'reload partly applied' if changed else 'reload refused, nothing changed'}:",
              file=sys.stderr)
        for error in report.get("errors") or [reply.get("error", "failed")]:
            print(f"  {error}", file=sys.stderr)
        return FAILED
    print(f"{name}: reloaded: " + "; ".join(
        f"{label} {', '.join(report.get(label) or []) or '-'}"
        for label in ("added", "removed", "changed", "unchanged")))
    return OK


def cmd_stop(args: argparse.Namespace) -> int:
    try:
        name, rundir, pid = _running(args.target)
    except Stop as e:
        if e.code == NOT_RUNNING:  # LSB: stopping a stopped service succeeds
            print(f"{e}; nothing to stop")
            return OK
        raise
    exited = _exit_watch(pid)  # taken before asking: the pid cannot be reused meanwhile
    try:
        call(rundir.endpoint, Request("stop"), min(ANSWER_TIMEOUT, args.timeout),
             lambda: _alive(pid))
    except (NoAnswer, ProtocolError) as e:
        if not _alive(pid):  # it ended anyway (it was stopping already)
            print(f"service {name!r} stopped")
            return OK
        raise Stop(UNKNOWN, f"service {name!r} (pid {pid}) did not take the stop: {e}; "
                            f"send it SIGTERM (kill {pid})") from None
    if not exited(args.timeout):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        raise Stop(FAILED, f"service {name!r} (pid {pid}) did not stop within "
                           f"{args.timeout:g} s: killed it (SIGKILL; its actors die with it)")
    print(f"service {name!r} stopped")
    return OK


def _exit_watch(pid: int) -> Callable[[float], bool]:
    """A wait for the exit of ``pid`` (not our child): ``wait(timeout)`` is
    True once it has exited (a zombie has). A pidfd where there is one
    (Linux 5.3+), else psutil."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return lambda timeout: True
    except (AttributeError, OSError):
        import psutil

        def poll(timeout: float) -> bool:
            try:
                proc = psutil.Process(pid)
                deadline = time.monotonic() + timeout
                while proc.status() != psutil.STATUS_ZOMBIE:
                    if time.monotonic() > deadline:
                        return False
                    time.sleep(0.05)  # psutil can only poll a process that is not ours
            except psutil.NoSuchProcess:
                pass
            return True
        return poll

    def wait(timeout: float) -> bool:
        try:
            return bool(select.select([fd], [], [], timeout)[0])
        finally:
            os.close(fd)
    return wait


COMMANDS = {"run": cmd_run, "check": cmd_check, "status": cmd_status, "tree": cmd_tree,
            "top": cmd_top, "nodes": cmd_nodes, "reload": cmd_reload, "stop": cmd_stop,
            "keys": cmd_keys}
