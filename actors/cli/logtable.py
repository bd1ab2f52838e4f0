"""The ``[logging]`` table of a service file: where records go and from
which level, checked with the rest of the file (every error at once)."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

__all__ = ["DEFAULT_FORMAT", "LEVELS", "LoggingConfig", "check_logging"]

LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")
DEFAULT_FORMAT = "%(asctime)s %(levelname)s %(actor)s[%(process)d] %(name)s: %(message)s"


@dataclasses.dataclass(frozen=True)
class LoggingConfig:
    """``[logging]``: where records go and from which level.

    Attributes:
        level: lowest level logged, by every process (default ``"INFO"``).
        file: a log file (relative to the service file's folder), rotated
            at ``max_bytes`` keeping ``backups`` old files; None (default):
            standard error, as journald and ``docker logs`` expect.
        max_bytes: size at which the file is rotated (default 10 MiB).
        backups: rotated files kept (default 5).
        format: a ``logging`` format; ``%(actor)s`` is the actor's name
            (``node`` for the service process itself), ``%(process)d`` its pid.
    """

    level: str = "INFO"
    file: str | None = None
    max_bytes: int = 10 * 1024 * 1024
    backups: int = 5
    format: str = DEFAULT_FORMAT



def check_logging(table: dict[str, Any], folder: str, errors: list[str]) -> LoggingConfig:
    fields = {f.name for f in dataclasses.fields(LoggingConfig)}
    good: dict[str, Any] = {}
    for key, value in table.items():
        if key not in fields:
            errors.append(f"logging.{key}: unknown key (known: {', '.join(sorted(fields))})")
        elif key == "level":
            if isinstance(value, str) and value.upper() in LEVELS:
                good[key] = value.upper()
            else:
                errors.append(f"logging.level: must be one of {', '.join(LEVELS)}, got {value!r}")
        elif key == "file":
            if not isinstance(value, str) or not value:
                errors.append(f"logging.file: must be a file name, got {value!r}")
                continue
            target = os.path.join(folder, os.path.expanduser(value))
            parent = os.path.dirname(target) or "."
            if not os.path.isdir(parent):
                errors.append(f"logging.file: its folder {parent!r} does not exist, got {value!r}")
            elif not os.access(parent, os.W_OK) or (os.path.exists(target)
                                                    and not os.access(target, os.W_OK)):
                errors.append(f"logging.file: cannot write {target!r}")
            else:
                good[key] = target
        elif key in ("max_bytes", "backups"):
            if isinstance(value, int) and not isinstance(value, bool) and (
                    value > 0 or (key == "backups" and value == 0)):
                good[key] = value
            else:
                errors.append(f"logging.{key}: must be an integer "
                              f"{'>= 0' if key == 'backups' else '> 0'}, got {value!r}")
        elif key == "format":
            if not isinstance(value, str) or "%(message)s" not in value:
                errors.append(f"logging.format: must be a logging format with %(message)s, "
                              f"got {value!r}")
            else:
                good[key] = value
    return LoggingConfig(**good)
