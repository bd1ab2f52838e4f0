"""Text for people: the lines ``actors status`` and ``actors tree`` print."""

from __future__ import annotations

from typing import Any

__all__ = ["duration", "status_lines", "tree_lines"]


def duration(seconds: float) -> str:
    """``3s``, ``4m05s``, ``2h03m``, ``3d04h``."""
    s = int(max(0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def header(reply: dict[str, Any], count: int) -> str:
    return (f"{reply['name']}: {reply['state']}, pid {reply['pid']}, up "
            f"{duration(reply['uptime'])}, {count} actor{'s' if count != 1 else ''} "
            f"({reply['config']})")


def status_lines(reply: dict[str, Any]) -> list[str]:
    """The service, then one line per actor: name, state, pid, restarts,
    class, and the last exit if any."""
    entries = reply["actors"]
    width = max([len(e["name"]) for e in entries] + [4])
    lines = [header(reply, len(entries))]
    for e in entries:
        pid = "-" if e["pid"] is None else str(e["pid"])
        line = (f"{e['name']:<{width}}  {e['state']:<10}  pid {pid:<7}  "
                f"restarts {e['restarts']:<3}  {e['class']}")
        if e["last_exit"]:
            line += f"  (last exit: {e['last_exit']})"
        lines.append(line)
    return lines


def tree_lines(reply: dict[str, Any]) -> list[str]:
    """The tree drawn with its branches: each actor's short name, class,
    pid, state, restarts and last exit."""
    lines = [f"{reply['name']}: {reply['state']}, pid {reply['pid']}, "
             f"up {duration(reply['uptime'])}"]

    def draw(entries: list[dict[str, Any]], prefix: str) -> None:
        for i, e in enumerate(entries):
            last = i == len(entries) - 1
            pid = "-" if e["pid"] is None else e["pid"]
            text = (f"{e['name'].rpartition('/')[2]} [{e['class']}] pid {pid} {e['state']} "
                    f"restarts {e['restarts']}")
            if e["last_exit"]:
                text += f" last exit: {e['last_exit']}"
            lines.append(f"{prefix}{'└── ' if last else '├── '}{text}")
            draw(e["children"], prefix + ("    " if last else "│   "))
    draw(reply["tree"], "")
    return lines
