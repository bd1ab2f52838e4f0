"""Text for people: the lines ``actors status``, ``tree`` and ``nodes`` print."""

from __future__ import annotations

from typing import Any

__all__ = ["cluster_line", "duration", "nodes_lines", "status_lines", "tree_lines"]


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


def cluster_line(reply: dict[str, Any]) -> list[str]:
    """``node a in cluster etcd://...: members a b c`` for a service in a
    cluster; nothing for one that is not."""
    cluster = reply.get("cluster")
    if not cluster:
        return []
    return [f"node {cluster['node']} in cluster {cluster['etcd']}: members "
            f"{' '.join(cluster['members']) or '-'}"]


def status_lines(reply: dict[str, Any]) -> list[str]:
    """In a cluster, the node and the members; the service, then one line
    per actor: name, state, pid, restarts, class, and the last exit if any."""
    entries = reply["actors"]
    width = max([len(e["name"]) for e in entries] + [4])
    lines = [*cluster_line(reply), header(reply, len(entries))]
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
    pid, state, restarts and last exit (in a cluster, after the node and
    the members, and with the node of an actor that runs on another)."""
    lines = cluster_line(reply)
    lines.append(f"{reply['name']}: {reply['state']}, pid {reply['pid']}, "
                 f"up {duration(reply['uptime'])}")
    here = (reply.get("cluster") or {}).get("node")

    def draw(entries: list[dict[str, Any]], prefix: str) -> None:
        for i, e in enumerate(entries):
            last = i == len(entries) - 1
            pid = "-" if e["pid"] is None else e["pid"]
            text = (f"{e['name'].rpartition('/')[2]} [{e['class']}] pid {pid} {e['state']} "
                    f"restarts {e['restarts']}")
            if e["last_exit"]:
                text += f" last exit: {e['last_exit']}"
            if e.get("node", here) != here:
                text += f" on node {e['node']}"
            lines.append(f"{prefix}{'└── ' if last else '├── '}{text}")
            draw(e["children"], prefix + ("    " if last else "│   "))
    draw(reply["tree"], "")
    return lines


def nodes_lines(reply: dict[str, Any]) -> list[str]:
    """The cluster, then one line per live member: ``*`` marks the
    service's own node; name, node id (name and incarnation), address,
    seconds left on its etcd lease (``?``: etcd did not answer), host, pid."""
    members, cluster = reply["members"], reply.get("cluster")
    if not cluster:
        return [f"{reply['name']}: not in a cluster (no [cluster] table in {reply['config']})"]
    rows = [("", "NODE", "NODE ID", "ADDRESS", "LEASE LEFT", "HOST", "PID")]
    for m in members:
        left = m["lease_left"]
        rows.append(("*" if m["self"] else "", m["name"], m["node_id"], m["address"],
                     "?" if left is None else "expired" if left < 0 else f"{left:g}s",
                     m["host"] or "-", "-" if m["pid"] is None else str(m["pid"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    count = len(members)
    return [f"{reply['name']}: node {cluster['node']} in cluster {cluster['etcd']}, "
            f"{count} live member{'s' if count != 1 else ''}"] + [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
        for row in rows]
