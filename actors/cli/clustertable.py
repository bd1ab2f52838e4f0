"""The ``[cluster]`` table of a service file: the etcd cluster its node
joins (``ActorSystem(cluster=..., lease_ttl=...)``), checked with the rest
of the file so that every error is reported at once (the URL as
``actors.cluster`` reads it; the CLI reaches the core only through
``actors``, so the rule is written here too)."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

__all__ = ["ClusterConfig", "check_cluster"]

ETCD_URL = re.compile(r"etcds?://(?P<hosts>[^/]+)/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*/?")
ETCD_HOST = re.compile(r"(?P<host>[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})")


@dataclasses.dataclass(frozen=True)
class ClusterConfig:
    """``[cluster]``: the etcd cluster the service's node joins.

    Attributes:
        etcd: ``"etcd://HOST:PORT[,HOST:PORT...]/PREFIX"``: where the
            membership lives (``ActorSystem(cluster=...)``).
        lease_ttl: whole seconds of the node's etcd lease (default 5).
    """

    etcd: str
    lease_ttl: int = 5

    def system_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of :class:`actors.ActorSystem` it stands for."""
        return {"cluster": self.etcd, "lease_ttl": self.lease_ttl}



def check_cluster(table: dict[str, Any], system: dict[str, Any],
             errors: list[str]) -> ClusterConfig | None:
    """``[cluster]``, and what it needs of ``[system]`` (``system`` is that
    table as written): a node name, a tcp bind and keys."""
    before = len(errors)
    for key in table:
        if key not in ("etcd", "lease_ttl"):
            errors.append(f"cluster.{key}: unknown key (known: etcd, lease_ttl)")
    etcd = table.get("etcd")
    if "etcd" not in table:
        errors.append("cluster.etcd: is required ('etcd://HOST:PORT[,HOST:PORT...]/PREFIX')")
    elif not _etcd_url(etcd):
        errors.append(f"cluster.etcd: must be 'etcd://HOST:PORT[,HOST:PORT...]/PREFIX' "
                      f"(etcds:// for TLS; PREFIX: letters, digits, '_', '-', '.', '/'), "
                      f"got {etcd!r}")
    ttl = table.get("lease_ttl", 5)
    if not (isinstance(ttl, int) and not isinstance(ttl, bool) and 1 <= ttl <= 3600):
        errors.append(f"cluster.lease_ttl: must be a whole number of seconds in [1, 3600] "
                      f"(etcd leases count whole seconds), got {ttl!r}")
    # (a value given but wrong is reported by [system]'s own checks)
    if "node" not in system:
        errors.append("system.node: is required with [cluster] (this node's name among "
                      "the members)")
    if system.get("bind", "ipc") == "ipc":
        errors.append(f"system.bind: must be 'tcp://HOST[:PORT]' with [cluster] (the address "
                      f"the other members reach this node at), got "
                      f"{system.get('bind', 'ipc')!r}")
        if "keys" not in system:
            errors.append("system.keys: is required with [cluster] (a folder made by "
                          "'actors keys new', the same on every member)")
    return ClusterConfig(etcd, ttl) if len(errors) == before else None


def _etcd_url(value: Any) -> bool:
    match = ETCD_URL.fullmatch(value) if isinstance(value, str) else None
    return match is not None and all(
        (found := ETCD_HOST.fullmatch(part)) is not None and 0 < int(found["port"]) < 65536
        for part in match["hosts"].split(","))
