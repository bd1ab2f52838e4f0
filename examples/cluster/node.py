"""One node of the cluster example: ``python node.py NAME ETCD_URL KEYS``.
It joins the cluster and serves until its stdin closes or it is killed."""

import sys

import actors
import shop  # noqa: F401 - its classes must be imported here to run here


def main() -> None:
    name, url, keys = sys.argv[1:4]
    with actors.ActorSystem(node=name, bind="tcp://127.0.0.1", keys=keys, cluster=url,
                            lease_ttl=2) as system:
        print("joined", " ".join(system.nodes()), flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
