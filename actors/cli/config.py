"""The service file: reading, checking and the checked result.

``load(path)`` reads a TOML file (stdlib ``tomllib``) and checks all of it
before anything starts, the way OTP's ``supervisor:check_childspecs``
does: every error names its key and the bad value, and every error is
reported at once (:class:`ConfigError` carries the list). Actor classes
are imported from the file's folder, so a class that cannot be found or a
constructor whose arguments do not fit is an error of the file too.

The result is frozen data: a :class:`ServiceConfig` whose children are the
core's own :class:`actors.ChildSpec` objects, in the file's order (the
start order). Reloads compare these specs.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import logging
import math
import os
import re
import sys
import tomllib
from typing import Any

from actors import Actor, ActorSystem, ChildSpec, Supervisor
from actors.cli.clustertable import ClusterConfig, check_cluster
from actors.cli.logtable import LoggingConfig, check_logging

__all__ = ["ClusterConfig", "ConfigError", "LoggingConfig", "ServiceConfig", "SupervisorConfig",
           "check_name", "load", "read_name"]

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
TOP_KEYS = ("name", "system", "cluster", "logging", "supervisor", "child")
CHILD_KEYS = ("name", "actor", "args", "kwargs", "restart", "shutdown", "hang_timeout")
STRATEGIES = ("one_for_one", "one_for_all", "rest_for_one")
RESTARTS = ("permanent", "transient", "temporary")


class ConfigError(Exception):
    """The file cannot be used: ``errors`` lists every problem, each naming
    its key and value; ``path`` is the file."""

    def __init__(self, path: str, errors: list[str]) -> None:
        self.path = path
        self.errors = list(errors)
        super().__init__(f"{path}: {len(errors)} error{'s' if len(errors) != 1 else ''}:\n"
                         + "\n".join(f"  {e}" for e in errors))


@dataclasses.dataclass(frozen=True)
class SupervisorConfig:
    """``[supervisor]``: the root supervisor's OTP flags (defaults as
    :class:`actors.Supervisor`'s: one_for_one, 3 restarts in 5 s)."""

    strategy: str = "one_for_one"
    max_restarts: int = 3
    max_seconds: float = 5.0


@dataclasses.dataclass(frozen=True)
class ServiceConfig:
    """A checked service file.

    Attributes:
        path: the file, absolute.
        folder: its folder (actor classes are imported from there).
        name: the service's name, also its root supervisor's name.
        system: keyword arguments for :class:`actors.ActorSystem`.
        logging: the ``[logging]`` table.
        supervisor: the ``[supervisor]`` table.
        children: the ``[[child]]`` tables as child specs, in start order.
        cluster: the ``[cluster]`` table, None without one.
    """

    path: str
    folder: str
    name: str
    system: dict[str, Any]
    logging: LoggingConfig
    supervisor: SupervisorConfig
    children: tuple[ChildSpec, ...]
    cluster: ClusterConfig | None = None

    def system_kwargs(self) -> dict[str, Any]:
        """Every keyword argument of the service's :class:`actors.ActorSystem`."""
        return {**self.system, **(self.cluster.system_kwargs() if self.cluster else {}),
                "log_level": self.log_level()}

    def log_level(self) -> int:
        """``[logging] level`` as a number."""
        return logging.getLevelName(self.logging.level)


def check_name(name: Any) -> str | None:
    """Why ``name`` cannot name a service, or None if it can."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        return (f"must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter "
                f"or digit; got {name!r}")
    return None


def read_name(path: str) -> str:
    """The ``name`` of a service file, checked only that far (for the
    commands that take NAME or FILE).

    Raises:
        ConfigError: the file cannot be read or has no valid name.
    """
    data = _parse(path)
    problem = check_name(data.get("name"))
    if problem is not None:
        raise ConfigError(path, [f"name: {problem}"])
    return data["name"]


def load(path: str) -> ServiceConfig:
    """Read and check the service file at ``path`` (see the module doc).

    Raises:
        ConfigError: listing every error found.
    """
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    data = _parse(path)
    errors: list[str] = []
    for key in data:
        if key not in TOP_KEYS:
            errors.append(f"{key}: unknown key (known: {', '.join(TOP_KEYS)})")
    name = data.get("name")
    problem = check_name(name) if "name" in data else "is required (the service's name)"
    if problem is not None:
        errors.append(f"name: {problem}")
    system = _system(_table(data, "system", errors), errors)
    cluster = (check_cluster(_table(data, "cluster", errors), _table(data, "system", []), errors)
               if "cluster" in data else None)
    logs = check_logging(_table(data, "logging", errors), folder, errors)
    supervisor = _supervisor(_table(data, "supervisor", errors), errors)
    children = _children(data.get("child", []), folder, errors)
    if errors:
        raise ConfigError(path, errors)
    return ServiceConfig(path, folder, name, system, logs, supervisor, tuple(children),
                         cluster)


# -- parts ---------------------------------------------------------------------------
def _parse(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise ConfigError(path, [f"cannot read the file: {e.strerror or e}"]) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(path, [f"not valid TOML: {e}"]) from None


def _table(data: dict[str, Any], key: str, errors: list[str]) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        errors.append(f"{key}: must be a table ([{key}]), got {value!r}")
        return {}
    return value


def _number(value: Any, low: float = 0.0) -> bool:
    """A real number (not a bool) above ``low`` and finite."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and value > low and math.isfinite(value))


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# [system]: the checks ActorSystem makes, made here so that all are reported
# at once and before anything starts. (TOML has no null: false turns off.)
SYSTEM_CHECKS: dict[str, tuple[Any, str]] = {
    "transport": (lambda v: v in ("zmq", "pipe"), "'zmq' or 'pipe'"),
    "bind": (lambda v: isinstance(v, str) and (v == "ipc" or v.startswith("tcp://")),
             "'ipc' or 'tcp://HOST[:PORT]'"),
    "node": (lambda v: isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", v),
             "a name of letters, digits, '_' or '-'"),
    "keys": (lambda v: isinstance(v, str) and os.path.isabs(v), "an absolute path"),
    "link_timeout": (_number, "a positive number of seconds"),
    "busy_wait": (lambda v: _number(v, -1) and 0 <= v <= 0.01, "a number of seconds in [0, 0.01]"),
    "stop_timeout": (_number, "a positive number of seconds"),
    "spawn_timeout": (_number, "a positive number of seconds"),
    "spares": (_count, "an integer >= 0"),
    "max_spares": (_count, "an integer >= 0 (and >= spares)"),
    "spares_idle": (_number, "a positive number of seconds"),
    "template": (lambda v: isinstance(v, bool), "true or false"),
    "restart_buffer": (_count, "an integer >= 0"),
    "deadlock_detection": (lambda v: v is False or (_number(v) and v < 3600),
                           "a number of seconds in (0, 3600), or false (off)"),
    "quiescence": (lambda v: v is False or (_number(v) and v < 3600),
                   "a number of seconds in (0, 3600), or false (off; the default)"),
}


# ActorSystem's arguments that other tables set
ELSEWHERE = {"log_level": "[logging] level", "cluster": "[cluster] etcd",
             "lease_ttl": "[cluster] lease_ttl"}


def _system(table: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    known = [p for p in inspect.signature(ActorSystem).parameters if p not in ELSEWHERE]
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        if key in ELSEWHERE:
            errors.append(f"system.{key}: set {ELSEWHERE[key]} instead")
            continue
        if key not in known:
            errors.append(f"system.{key}: unknown key (ActorSystem takes: {', '.join(known)})")
            continue
        check = SYSTEM_CHECKS.get(key)
        if check is not None and not check[0](value):
            errors.append(f"system.{key}: must be {check[1]}, got {value!r}")
            continue
        kwargs[key] = None if value is False and key in ("deadlock_detection",
                                                         "quiescence") else value
    if table.get("transport") == "pipe" and table.get("bind", "ipc") != "ipc":
        errors.append(f"system.bind: applies to the zmq transport only, got "
                      f"{table['bind']!r} with transport 'pipe'")
    if str(table.get("bind", "ipc")).startswith("tcp://") and "keys" not in table:
        errors.append("system.bind: tcp needs system.keys (a folder made by 'actors keys new')")
    return kwargs


def _supervisor(table: dict[str, Any], errors: list[str]) -> SupervisorConfig:
    good: dict[str, Any] = {}
    for key, value in table.items():
        if key == "strategy":
            if value == "simple_one_for_one":
                errors.append("supervisor.strategy: simple_one_for_one cannot be the root's "
                              "(its children are the [[child]] tables); make it a child "
                              "Supervisor subclass")
            elif value not in STRATEGIES:
                errors.append(f"supervisor.strategy: must be one of {', '.join(STRATEGIES)}, "
                              f"got {value!r}")
            else:
                good[key] = value
        elif key == "max_restarts":
            if _count(value):
                good[key] = value
            else:
                errors.append(f"supervisor.max_restarts: must be an integer >= 0, got {value!r}")
        elif key == "max_seconds":
            if _number(value):
                good[key] = float(value)
            else:
                errors.append(f"supervisor.max_seconds: must be a positive number of seconds, "
                              f"got {value!r}")
        else:
            errors.append(f"supervisor.{key}: unknown key (known: strategy, max_restarts, "
                          "max_seconds)")
    return SupervisorConfig(**good)


def _children(tables: Any, folder: str, errors: list[str]) -> list[ChildSpec]:
    if not isinstance(tables, list):
        errors.append("child: must be an array of tables ([[child]]), got a "
                      f"{type(tables).__name__}")
        return []
    specs: list[ChildSpec] = []
    seen: dict[str, int] = {}
    for number, table in enumerate(tables, 1):
        if not isinstance(table, dict):
            errors.append(f"child[{number}]: must be a table, got {table!r}")
            continue
        name = table.get("name")
        where = f"child[{number}]" + (f" ({name})" if isinstance(name, str) else "")
        mistakes: list[str] = []
        spec = _child(table, where, folder, mistakes)
        if isinstance(name, str) and name in seen:
            mistakes.append(f"{where}.name: {name!r} is also the name of child[{seen[name]}]")
        elif isinstance(name, str):
            seen[name] = number
        errors.extend(mistakes)
        if spec is not None and not mistakes:
            specs.append(spec)
    return specs


def _child(table: dict[str, Any], where: str, folder: str,
           errors: list[str]) -> ChildSpec | None:
    for key in table:
        if key not in CHILD_KEYS:
            errors.append(f"{where}.{key}: unknown key (known: {', '.join(CHILD_KEYS)})")
    name = table.get("name")
    if "name" not in table:
        errors.append(f"{where}.name: is required")
    elif not isinstance(name, str) or not name or "/" in name:
        errors.append(f"{where}.name: must be a non-empty string without '/', got {name!r}")
    args = table.get("args", [])
    if not isinstance(args, list):
        errors.append(f"{where}.args: must be an array, got {args!r}")
        args = None
    kwargs = table.get("kwargs", {})
    if not isinstance(kwargs, dict):
        errors.append(f"{where}.kwargs: must be a table, got {kwargs!r}")
        kwargs = None
    restart = table.get("restart", "permanent")
    if restart not in RESTARTS:
        errors.append(f"{where}.restart: must be one of {', '.join(RESTARTS)}, got {restart!r}")
    shutdown = table.get("shutdown", 5.0)
    if shutdown != "brutal_kill" and not _number(shutdown):
        errors.append(f"{where}.shutdown: must be a positive number of seconds or "
                      f"'brutal_kill', got {shutdown!r}")
    hang = table.get("hang_timeout", False)
    if hang is not False and not _number(hang):
        errors.append(f"{where}.hang_timeout: must be a positive number of seconds, or "
                      f"false (no limit; the default), got {hang!r}")
    cls = None
    if "actor" not in table:
        errors.append(f"{where}.actor: is required ('module:Class')")
    else:
        cls = _actor_class(table["actor"], f"{where}.actor", folder, errors)
    if cls is not None and args is not None and kwargs is not None:
        try:
            signature = inspect.signature(cls)
        except (TypeError, ValueError):
            signature = None  # nothing to check against
        if signature is not None:
            try:
                signature.bind(*args, **kwargs)
            except TypeError as e:
                bare = signature.replace(
                    parameters=[p.replace(annotation=p.empty)
                                for p in signature.parameters.values()],
                    return_annotation=signature.empty)
                errors.append(f"{where}: args {args!r} and kwargs {kwargs!r} do not fit "
                              f"{cls.__name__}{bare}: {e}")
    if errors or cls is None:
        return None
    try:
        return ChildSpec(name, cls, args=tuple(args), kwargs=dict(kwargs), restart=restart,
                         shutdown=shutdown, hang_timeout=None if hang is False else hang)
    except (TypeError, ValueError) as e:  # a check the core makes and this module missed
        errors.append(f"{where}: {e}")
        return None


def _actor_class(value: Any, where: str, folder: str, errors: list[str]) -> type | None:
    if not isinstance(value, str) or value.count(":") != 1 or not all(value.split(":")):
        errors.append(f"{where}: must be 'module:Class', got {value!r}")
        return None
    module_name, qualname = value.split(":")
    if folder not in sys.path:
        sys.path.insert(0, folder)
        importlib.invalidate_caches()
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - any import error is the file's error
        errors.append(f"{where}: cannot import module {module_name!r} (from {folder}): "
                      f"{type(e).__name__}: {e}")
        return None
    obj: Any = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            errors.append(f"{where}: module {module_name!r} has no {qualname!r}, got {value!r}")
            return None
    if not (isinstance(obj, type) and issubclass(obj, Actor)):
        errors.append(f"{where}: {value!r} is not an actors.Actor subclass")
        return None
    if obj is Supervisor:
        errors.append(f"{where}: {value!r}: give a Supervisor subclass that sets its "
                      "children, not actors.Supervisor itself")
        return None
    return obj
