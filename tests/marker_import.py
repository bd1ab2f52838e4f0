"""A module whose import leaves a mark: it must never be imported because a
frame named it (tests/test_hardening.py)."""

import os

_path = os.environ.get("ACTORS_TEST_IMPORT_MARKER")
if _path:
    with open(_path, "a") as _f:
        _f.write(f"imported in pid {os.getpid()}\n")


class Boom(Exception):
    pass
