"""The ``actors`` command. For now: version and help; running a supervised
tree from a file, ``status`` and ``top`` come with supervision."""

from __future__ import annotations

import argparse
import sys

import actors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="actors",
        description="actors: an actor runtime for Python (actors in spawned processes, "
                    "msgpack over ZeroMQ or Pipes).")
    parser.add_argument("--version", action="version", version=f"actors {actors.__version__}")
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
