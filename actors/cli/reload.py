"""Reloading a running service's file: what changes, and in which order.

A reload reads and checks the whole file first; a file with any error
changes nothing. Then the children are compared with the specs running,
by name: a name only in the file is *added*, a name only running is
*removed*, a name in both whose spec differs in any field (class, args,
kwargs, restart, shutdown, hang_timeout) is *changed*, the rest are
*unchanged* and keep running untouched (same process, same ref).

Order. The file's order is the start order, on a reload too:

1. removed and changed children are stopped, the last started first (each
   gets its ``shutdown`` time, as in any orderly stop);
2. changed and added children are started in the file's order, each put in
   its place in the root supervisor's start order (before the next child
   of the file that runs: ``Supervisor.start_child(spec, before=...)``), so
   later stops, ``rest_for_one`` groups and ``actors tree`` follow the file.

A changed child gets a new ref (it is a new child). Unchanged children are
not restarted even if a child before them changed. A child whose start
fails is reported and left out (the service keeps running the rest); the
next reload tries it again. ``[system]``, ``[cluster]``, ``[logging]``
and ``[supervisor]`` apply at the next start only: a reload that finds them
changed says so.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from actors import ActorRef, ChildSpec
from actors.cli.config import ConfigError, ServiceConfig, load

__all__ = ["Plan", "ReloadReport", "Reloader", "plan"]

log = logging.getLogger("actors.service")


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a reload changes (names, each list in the file's order, but
    ``removed`` in the running order)."""

    added: list[str]
    removed: list[str]
    changed: list[str]
    unchanged: list[str]


def plan(running: list[ChildSpec], wanted: list[ChildSpec]) -> Plan:
    """Compare the running specs with the file's (see module doc)."""
    now = {spec.name: spec for spec in running}
    names = {spec.name for spec in wanted}
    return Plan(added=[s.name for s in wanted if s.name not in now],
                removed=[s.name for s in running if s.name not in names],
                changed=[s.name for s in wanted if s.name in now and now[s.name] != s],
                unchanged=[s.name for s in wanted if s.name in now and now[s.name] == s])


@dataclasses.dataclass
class ReloadReport:
    """The outcome of one reload: ``ok`` when the file was valid and every
    change was made; ``errors`` say why not, ``warnings`` what waits for a
    restart."""

    ok: bool = True
    errors: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)
    added: list[str] = dataclasses.field(default_factory=list)
    removed: list[str] = dataclasses.field(default_factory=list)
    changed: list[str] = dataclasses.field(default_factory=list)
    unchanged: list[str] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        """One line: what changed."""
        parts = [f"{label} {', '.join(names) if names else '-'}"
                 for label, names in (("added", self.added), ("removed", self.removed),
                                      ("changed", self.changed),
                                      ("unchanged", self.unchanged))]
        return "; ".join(parts)


class Reloader:
    """Applies reloads of ``config.path`` to the running root supervisor
    ``root`` (one reload at a time: the service serializes them)."""

    def __init__(self, config: ServiceConfig, root: ActorRef) -> None:
        self.started = config          # [system] and friends apply from here
        self.running = list(config.children)
        self.root = root

    def reload(self) -> ReloadReport:
        """Read, check and apply the file (see module doc)."""
        report = ReloadReport()
        try:
            new = load(self.started.path)
        except ConfigError as e:
            report.ok = False
            report.errors = e.errors
            return report
        if new.name != self.started.name:
            report.ok = False
            report.errors.append(f"name: a reload cannot rename the service "
                                 f"({self.started.name!r}), got {new.name!r}")
            return report
        for table in ("system", "cluster", "logging", "supervisor"):
            if getattr(new, table) != getattr(self.started, table):
                report.warnings.append(f"[{table}] changed: it applies at the next start, "
                                       f"not on reload")
        changes = plan(self.running, list(new.children))
        report.unchanged = changes.unchanged
        self._apply(changes, list(new.children), report)
        return report

    def _apply(self, changes: Plan, wanted: list[ChildSpec], report: ReloadReport) -> None:
        proxy = self.root.proxy()
        specs = {spec.name: spec for spec in self.running}
        going = set(changes.removed) | set(changes.changed)
        present = [info.name for info in proxy.which_children()]
        for name in reversed(present):  # 1. stop: the last started first
            if name not in going:
                continue
            try:
                proxy.terminate_child(name)
                proxy.delete_child(name)
            except KeyError:
                pass  # ended for good meanwhile (a temporary child)
            except Exception as e:  # noqa: BLE001 - reported, the reload goes on
                report.ok = False
                report.errors.append(f"child {name}: stopping it failed: {e}")
                continue
            present.remove(name)
        for name in changes.removed:
            if name not in present:
                specs.pop(name, None)
                report.removed.append(name)
        for index, spec in enumerate(wanted):  # 2. start, in the file's order
            if spec.name not in changes.added and spec.name not in changes.changed:
                continue
            if spec.name in present:  # its stop failed: leave it as it is
                continue
            before = next((later.name for later in wanted[index + 1:]
                           if later.name in present), None)
            try:
                proxy.start_child(spec, before=before)
            except Exception as e:  # noqa: BLE001 - reported, the reload goes on
                report.ok = False
                report.errors.append(f"child {spec.name}: starting it failed: "
                                     f"{type(e).__name__}: {e}")
                specs.pop(spec.name, None)
                continue
            present.append(spec.name)
            specs[spec.name] = spec
            (report.added if spec.name in changes.added else report.changed).append(spec.name)
        order = [spec.name for spec in wanted] + [n for n in specs if n not in
                                                  {s.name for s in wanted}]
        self.running = [specs[name] for name in order if name in specs]
