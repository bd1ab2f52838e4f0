"""Mailbox counters that outlive their process.

A host counts, in a file-backed page, the messages put into its mailboxes
and the messages taken out. The node reads the file after the process
died: the difference is what was lost in its mailboxes, even after
SIGKILL, and it is counted as dead letters.

The file's blocks are allocated when it is made (``posix_fallocate``): a
sparse file on a full disk would kill the process with SIGBUS at its first
message. When they cannot be had, the counts live in memory only
(``degraded`` says why) and what a killed process had in its mailboxes is
not counted.
"""

from __future__ import annotations

import mmap
import os
import struct

__all__ = ["MailboxCounters"]


class MailboxCounters:
    """``counts[0]``: messages put; ``counts[1]``: messages taken (see
    module doc). Without a path the counts live in memory only."""

    def __init__(self, path: str | None) -> None:
        self._map: mmap.mmap | None = None
        self.degraded: str | None = None
        if path is not None:
            try:
                with open(path, "w+b") as f:
                    f.write(bytes(16))
                    f.flush()
                    os.posix_fallocate(f.fileno(), 0, 16)  # real blocks, or ENOSPC now
                    self._map = mmap.mmap(f.fileno(), 16)
            except OSError as e:
                self.degraded = f"{path}: {e.strerror or e}"
                try:
                    os.unlink(path)
                except OSError:
                    pass
        if self._map is not None:
            self.counts = memoryview(self._map).cast("Q")
        else:
            self.counts = memoryview(bytearray(16)).cast("Q")

    @staticmethod
    def lost(path: str) -> int:
        """Messages put and never taken, as the file at ``path`` says."""
        try:
            with open(path, "rb") as f:
                put, taken = struct.unpack("QQ", f.read(16))
        except (OSError, struct.error):
            return 0
        return max(0, put - taken)

    def close(self) -> None:
        self.counts.release()
        if self._map is not None:
            self._map.close()
