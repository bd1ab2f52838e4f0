"""``actors top``: a live per-actor view of a running service.

Per actor: mailbox depth and messages handled per second (the runtime's own
counters, ``ActorSystem.statistics()``, read through the control endpoint),
CPU and resident memory of its process (psutil, read here: the service is
on this host), state and restarts. The header shows the service process
itself (the node).

Rendering: curses from the standard library. It needs nothing installed,
works in any terminal with a terminfo entry (ssh, tmux, screen), redraws
in place only what changed, and restores the terminal on exit, even on an
error. ``--once`` prints one table as plain text instead (scripts, logs,
tests); it samples twice, ``interval`` seconds apart, to get the rates.
"""

from __future__ import annotations

import curses
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import psutil

from actors.cli.views import duration

__all__ = ["Sampler", "Snapshot", "live", "once", "table"]

Fetch = Callable[[], dict[str, Any]]


@dataclasses.dataclass
class Row:
    name: str
    pid: int | None
    state: str
    mailbox: int | None
    rate: float | None       # messages handled per second
    cpu: float | None        # percent of one core
    rss: int | None          # bytes
    restarts: int
    cls: str


@dataclasses.dataclass
class Snapshot:
    reply: dict[str, Any]
    rows: list[Row]
    node_cpu: float | None
    node_rss: int | None


class Sampler:
    """Turns successive ``stats`` replies into rates and process figures."""

    def __init__(self, fetch: Fetch) -> None:
        self.fetch = fetch
        self.procs: dict[int, psutil.Process] = {}
        self.seen: dict[tuple[int, int], tuple[int, float]] = {}  # (uid, pid) -> handled, when

    def _process(self, pid: int | None) -> tuple[float | None, int | None]:
        if pid is None:
            return None, None
        proc = self.procs.get(pid)
        first = proc is None
        try:
            if proc is None:
                proc = self.procs[pid] = psutil.Process(pid)
            with proc.oneshot():
                cpu = proc.cpu_percent(None)
                rss = proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            self.procs.pop(pid, None)
            return None, None
        return (None if first else cpu), rss   # the first reading has nothing to compare

    def sample(self) -> Snapshot:
        reply = self.fetch()
        now = time.monotonic()
        rows = []
        seen: dict[tuple[int, int], tuple[int, float]] = {}
        for e in reply["actors"]:
            cpu, rss = self._process(e["pid"])
            rate = None
            if e["handled"] is not None and e["pid"] is not None:
                key = (e["uid"], e["pid"])
                before = self.seen.get(key)
                if before is not None and now > before[1]:
                    rate = max(0, e["handled"] - before[0]) / (now - before[1])
                seen[key] = (e["handled"], now)
            rows.append(Row(e["name"], e["pid"], e["state"], e["mailbox"], rate, cpu, rss,
                            e["restarts"], e["class"]))
        self.seen = seen
        live = {e["pid"] for e in reply["actors"]} | {reply["pid"]}
        for pid in list(self.procs):
            if pid not in live:
                del self.procs[pid]
        node_cpu, node_rss = self._process(reply["pid"])
        return Snapshot(reply, rows, node_cpu, node_rss)


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _mem(value: int | None) -> str:
    if value is None:
        return "-"
    return f"{value / 2**20:.1f}M" if value < 10 * 2**30 else f"{value / 2**30:.1f}G"


COLUMNS = ("PID", "STATE", "MBOX", "MSG/S", "CPU%", "RSS", "RESTARTS", "CLASS")


def table(snap: Snapshot) -> tuple[str, list[str]]:
    """The header line and the rows (column titles first) of a snapshot."""
    reply = snap.reply
    head = (f"{reply['name']}: {reply['state']}, pid {reply['pid']}, up "
            f"{duration(reply['uptime'])}, {len(snap.rows)} actors; node cpu "
            f"{_num(snap.node_cpu, '.1f')}% rss {_mem(snap.node_rss)}")
    width = max([len(r.name) for r in snap.rows] + [4])
    lines = [f"{'NAME':<{width}}  {'PID':>7}  {'STATE':<10}  {'MBOX':>6}  {'MSG/S':>8}  "
             f"{'CPU%':>6}  {'RSS':>8}  {'RESTARTS':>8}  CLASS"]
    for r in snap.rows:
        lines.append(f"{r.name:<{width}}  {_num(r.pid, 'd'):>7}  {r.state:<10}  "
                     f"{_num(r.mailbox, 'd'):>6}  {_num(r.rate, '.1f'):>8}  "
                     f"{_num(r.cpu, '.1f'):>6}  {_mem(r.rss):>8}  {r.restarts:>8}  {r.cls}")
    return head, lines


def once(fetch: Fetch, interval: float) -> list[str]:
    """Two samples ``interval`` seconds apart; the table as lines."""
    sampler = Sampler(fetch)
    sampler.sample()
    time.sleep(interval)  # the measuring window of the rates and CPU figures
    head, lines = table(sampler.sample())
    return [head, *lines]


def live(fetch: Fetch, interval: float) -> str | None:
    """Show the table in the terminal, refreshed every ``interval`` seconds,
    until ``q`` (returns None) or the service is gone (returns why)."""
    return curses.wrapper(_screen, Sampler(fetch), interval)


def _screen(screen: Any, sampler: Sampler, interval: float) -> str | None:
    try:
        curses.curs_set(0)
    except curses.error:
        pass  # a terminal without an invisible cursor
    screen.timeout(int(interval * 1000))
    while True:
        try:
            snap = sampler.sample()
        except Exception as e:  # noqa: BLE001 - the service is gone or mute: say why
            return str(e)
        head, lines = table(snap)
        height, width = screen.getmaxyx()
        screen.erase()
        _put(screen, 0, f"actors top - {head}", width, curses.A_BOLD)
        _put(screen, 1, f"refresh {interval:g}s, q: quit", width, curses.A_DIM)
        _put(screen, 3, lines[0], width, curses.A_REVERSE)
        room = height - 4
        body = lines[1:]
        if len(body) > room > 0:
            body = body[:room - 1] + [f"... {len(body) - room + 1} more"]
        for i, line in enumerate(body[:max(0, room)]):
            _put(screen, 4 + i, line, width, curses.A_NORMAL)
        screen.refresh()
        key = screen.getch()  # waits up to the interval
        if key in (ord("q"), ord("Q"), 27):
            return None


def _put(screen: Any, y: int, text: str, width: int, attr: int) -> None:
    height = screen.getmaxyx()[0]
    if 0 <= y < height and width > 1:
        try:
            screen.addnstr(y, 0, text.ljust(width - 1), width - 1, attr)
        except curses.error:
            pass  # the last cell of the screen, or a resize under way
