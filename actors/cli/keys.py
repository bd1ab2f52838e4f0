"""``actors keys new DIR [--node NAME]``: key material for tcp:// links.

The folder (mode 0700) holds the cluster's CurveZMQ key pair and an
``allowed/`` folder of the public keys admitted; nodes started with the
same folder (``ActorSystem(keys=DIR)``) trust each other, and nothing else
gets a frame through. ``--node NAME`` adds a key pair of node NAME's own
(admitted too), so that one node can later be revoked by deleting
``allowed/NAME.key``. See docs/cluster.md.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from transport.keys import KeyMaterialError, create

__all__ = ["add_parser", "cmd_keys"]


def add_parser(commands: Any) -> None:
    text = "make key material for tcp:// links between nodes (CurveZMQ)"
    sub = commands.add_parser("keys", help=text, description=text)
    actions = sub.add_subparsers(dest="action", metavar="ACTION", required=True)
    new = actions.add_parser(
        "new", help="make a keys folder (or add a node's own key pair to one)",
        description="Make DIR (mode 0700) with the cluster's key pair (secret files "
                    "0600) and allowed/, the public keys admitted. Give every node the "
                    "same folder. --node NAME adds a pair of NAME's own, admitted too.")
    new.add_argument("folder", metavar="DIR")
    new.add_argument("--node", metavar="NAME", default=None,
                     help="add the own key pair of the node named NAME "
                          "(ActorSystem(node=NAME)) to DIR")


def cmd_keys(args: argparse.Namespace) -> int:
    """Run ``actors keys ACTION``: 0 done, 1 refused (the message says why)."""
    try:
        written = create(args.folder, args.node)
    except (KeyMaterialError, OSError) as e:
        print(f"actors keys new: {e}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0
