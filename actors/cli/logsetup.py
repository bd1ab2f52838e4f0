"""Logging of a service: one place for the records of every process.

Records of the actors' processes reach the service process already tagged
with the actor's name and pid (``record.actor``, ``record.process``; see
``actors.logs``); the service's own records are tagged ``node`` here. All go
to standard error (journald, ``docker logs``) or to a rotated file, written
by this one process, so rotation needs no coordination.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys

from actors.cli.logtable import DEFAULT_FORMAT, LoggingConfig

__all__ = ["ActorTag", "configure"]

JOURNAL_FORMAT = "%(levelname)s %(actor)s[%(process)d] %(name)s: %(message)s"


class ActorTag(logging.Filter):
    """Tags records of the service process itself as actor ``node``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "actor", None) is None:
            record.actor = "node"
        return True


def _stderr_is_journal() -> bool:
    """systemd connected standard error to the journal (which stamps the
    time itself): ``JOURNAL_STREAM`` names its device and inode."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    try:
        device, inode = (int(part) for part in stream.split(":"))
        info = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (info.st_dev, info.st_ino) == (device, inode)


def configure(config: LoggingConfig) -> logging.Handler:
    """Send every record at ``config.level`` or above to standard error or
    the rotated file; returns the handler (replacing the root logger's)."""
    handler: logging.Handler
    if config.file is not None:
        handler = logging.handlers.RotatingFileHandler(
            config.file, maxBytes=config.max_bytes, backupCount=config.backups,
            encoding="utf-8")
        fmt = config.format
    else:
        handler = logging.StreamHandler(sys.stderr)
        fmt = (JOURNAL_FORMAT if config.format == DEFAULT_FORMAT and _stderr_is_journal()
               else config.format)
    handler.addFilter(ActorTag())
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(config.level)
    logging.captureWarnings(True)
    return handler
