"""CPython 3.11's own multiprocessing tests, run against ``actors.mp``.

Importing this module imports ``test._test_multiprocessing`` (the file
CPython's ``test_multiprocessing_spawn`` runs) as ``import actors.mp as
multiprocessing`` would: while that module is imported, the name
``multiprocessing`` and its submodules resolve to ``actors.mp`` and its
submodules (the standard library's ``util``, ``dummy``, ``heap``,
``resource_tracker`` and ``spawn``, which ``actors.mp`` does not replace,
stay the standard library's). So its mixins' ``Process``, ``Queue``,
``Lock``... and every ``multiprocessing.X`` it names are ``actors.mp``'s.

Then it installs the ``WithProcesses*`` and ``WithManager*`` test classes
(not the ``threads`` ones, which test ``multiprocessing.dummy``) in its own
namespace, as ``test_multiprocessing_spawn`` does. Spawned children import
this module by name to find their targets, and so see the same classes.

``CPYTHON_MP_TARGET=stdlib`` in the environment runs the same selection
against the standard library (a reference: what passes on this machine).

Run it with ``python -m tools.run_cpython_mp`` (which counts the results).
"""

from __future__ import annotations

import importlib
import os
import sys

TARGET = os.environ.get("CPYTHON_MP_TARGET", "actors")

# the standard library modules actors.mp does not replace: imported first,
# so that they bind to the standard library's package
KEEP = ["multiprocessing", "multiprocessing.util", "multiprocessing.dummy",
        "multiprocessing.dummy.connection", "multiprocessing.heap",
        "multiprocessing.resource_tracker", "multiprocessing.spawn",
        "multiprocessing.popen_spawn_posix", "multiprocessing.synchronize",
        "multiprocessing.shared_memory"]
# actors.mp's modules standing for the standard library's
# names the test module imports by name at its top level (a missing one
# would fail the whole import): filled from the standard library if
# actors.mp lacks them, and listed in MISSING
IMPORTED_NAMES = [("multiprocessing.managers", "RemoteError"),
                  ("multiprocessing.managers", "BaseManager"),
                  ("multiprocessing.managers", "BaseProxy"),
                  ("multiprocessing.connection", "wait")]
MISSING: list[str] = []
REPLACE = ["connection", "context", "managers", "pool", "process", "queues", "reduction",
           "sharedctypes", "synchronize"]


STDLIB: dict[str, object] = {}


def _import_tests_as_actors_mp() -> object:
    for name in KEEP + [f"multiprocessing.{sub}" for sub in REPLACE if sub != "reduction"] + [
            "multiprocessing.reduction"]:
        STDLIB[name] = importlib.import_module(name)
    import test.support
    # The platform check the module makes at import (an OS semaphore can be
    # made): made here, on the standard library, before the names change.
    test.support.skip_if_broken_multiprocessing_synchronize()
    check, test.support.skip_if_broken_multiprocessing_synchronize = (
        test.support.skip_if_broken_multiprocessing_synchronize, lambda: None)
    saved = {name: mod for name, mod in sys.modules.items()
             if name == "multiprocessing" or name.startswith("multiprocessing.")}
    amp = importlib.import_module("actors.mp")
    try:
        sys.modules["multiprocessing"] = amp
        for sub in REPLACE:
            stdlib_name = f"multiprocessing.{sub}"
            try:
                mod = importlib.import_module(f"actors.mp.{sub}")
            except ModuleNotFoundError:  # not in actors.mp: an ImportError there
                sys.modules[stdlib_name] = None  # type: ignore[assignment]
                continue
            sys.modules[stdlib_name] = mod
        for name in ("util", "dummy", "heap", "resource_tracker", "spawn"):
            if not hasattr(amp, name):
                setattr(amp, name, saved[f"multiprocessing.{name}"])
        # shared_memory and the rest: absent from actors.mp (ImportError, skipped tests)
        sys.modules["multiprocessing.shared_memory"] = None  # type: ignore[assignment]
        for module, name in IMPORTED_NAMES:  # so the module imports at all
            mod = sys.modules[module]
            if not hasattr(mod, name):
                MISSING.append(f"{module}.{name}")
                setattr(mod, name, getattr(STDLIB[module], name))
        sys.modules.pop("test._test_multiprocessing", None)
        return importlib.import_module("test._test_multiprocessing")
    finally:
        test.support.skip_if_broken_multiprocessing_synchronize = check
        for name in [n for n in sys.modules
                     if n == "multiprocessing" or n.startswith("multiprocessing.")]:
            del sys.modules[name]
        sys.modules.update(saved)


def _rehome(module: object) -> list[str]:
    """The test module's own classes built on actors.mp (a ``Process``
    subclass, a proxy type) pickle by reference: a spawned child would find
    them by importing ``test._test_multiprocessing`` itself, with the
    standard library's ``multiprocessing``, and get a class built on that.
    Named as this module's instead, they are found here, where the child
    imports the tests as the parent did (as a program whose imports say
    ``actors.mp`` defines its classes on actors.mp in every process)."""
    moved = []
    for name, obj in list(vars(module).items()):
        if isinstance(obj, type) and obj.__module__ == module.__name__ and any(
                (base.__module__ or "").startswith("actors.mp") for base in obj.__mro__[1:]):
            obj.__module__ = __name__
            globals()[name] = obj
            moved.append(name)
    return moved


if TARGET == "stdlib":
    import test._test_multiprocessing as _T
else:
    _T = _import_tests_as_actors_mp()
    REHOMED = _rehome(_T)
    if STDLIB["multiprocessing"].parent_process() is not None:
        # In a spawned child, the targets' own function-level imports
        # (``from multiprocessing.process import parent_process``) find
        # actors.mp's too, as in a program whose imports say actors.mp. Only
        # there: the pytest process keeps the standard library's names.
        sys.modules["multiprocessing.process"] = sys.modules["actors.mp.process"]

_T.install_tests_in_module_dict(globals(), "spawn", only_type="processes")
_T.install_tests_in_module_dict(globals(), "spawn", only_type="manager")


_setup, _teardown = setUpModule, tearDownModule  # noqa: F821 (installed above)


def setUpModule() -> None:  # noqa: N802 (unittest's name)
    process = _T.multiprocessing.process
    if not hasattr(process, "_dangling"):
        # actors.mp without the standard library's private registry of
        # Process objects: the module fixtures without that check
        process._cleanup = lambda: None
        process._dangling = set()
        MISSING.append("multiprocessing.process._cleanup/_dangling (module fixtures)")
    _setup()


def tearDownModule() -> None:  # noqa: N802
    if TARGET != "stdlib":
        # Stop actors.mp's implicit system first: its processes hold the
        # standard library's resource tracker open, which the fixture joins.
        from actors.mp import context
        system = context._system
        if system is not None and context._own_system:
            context._at_exit()
            system.shutdown()
            context.set_system(None)
    _teardown()
