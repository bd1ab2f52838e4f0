"""The run folder of a service: where its control socket and pid file live.

``$ACTORS_RUN_DIR/NAME/`` (default ``$XDG_RUNTIME_DIR/actors``, else
``/tmp/actors-<uid>``), every folder of mode 0700 and owned by this user:
only the same user reaches the control socket. Inside:

    lock      held (flock) by the running service for its whole life:
              a second ``actors run`` of NAME cannot take it and is refused;
              the kernel drops it when the process dies, however it dies
    pid       the service's pid (written once the lock is held)
    control   the ZeroMQ ipc socket of ``actors.cli.control``
"""

from __future__ import annotations

import fcntl
import os
import stat
import tempfile

__all__ = ["AlreadyRunning", "RunDir", "RunDirError", "base_dir"]

MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes; ZeroMQ needs a little room


class RunDirError(Exception):
    """The run folder cannot be used (wrong owner, cannot be made ...)."""


class AlreadyRunning(RunDirError):
    """Another process runs this service (``pid``; None if unknown)."""

    def __init__(self, name: str, pid: int | None) -> None:
        self.name = name
        self.pid = pid
        running = f" (pid {pid})" if pid else ""
        super().__init__(f"service {name!r} is already running{running}; "
                         f"stop it first (actors stop {name})")


def base_dir() -> str:
    """The folder holding every service's run folder (see module doc)."""
    explicit = os.environ.get("ACTORS_RUN_DIR")
    if explicit:
        return os.path.abspath(explicit)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return os.path.join(runtime, "actors")
    return os.path.join(tempfile.gettempdir(), f"actors-{os.getuid()}")


def _private_dir(path: str) -> None:
    """Make ``path`` (its parent must exist) a folder of mode 0700 owned by
    this user, or check that it is one (fixing a wider mode of our own)."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as e:
        raise RunDirError(f"cannot make the run folder {path}: {e.strerror or e}") from None
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise RunDirError(f"{path} is not a folder (a run folder must be a real folder)")
    if info.st_uid != os.getuid():
        raise RunDirError(f"the run folder {path} belongs to uid {info.st_uid}, not to this "
                          f"user ({os.getuid()}); set ACTORS_RUN_DIR to a folder of yours")
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(path, 0o700)


class RunDir:
    """The run folder of service ``name`` (see module doc)."""

    def __init__(self, name: str, base: str | None = None) -> None:
        self.name = name
        self.base = base if base is not None else base_dir()
        self.path = os.path.join(self.base, name)
        self.pid_file = os.path.join(self.path, "pid")
        self.socket = os.path.join(self.path, "control")
        self.endpoint = f"ipc://{self.socket}"
        self._lock_fd: int | None = None

    def read_pid(self) -> int | None:
        """The pid in the pid file, or None (no file, or not a pid)."""
        try:
            with open(self.pid_file) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        return pid if pid > 0 else None

    def claim(self) -> None:
        """Make the folders, take the lock and write the pid file.

        Raises:
            AlreadyRunning: another process holds the lock.
            RunDirError: the folders cannot be made or are not ours, or the
                socket path is too long for a Unix socket.
        """
        if len(self.socket) > MAX_SOCKET_PATH:
            raise RunDirError(f"the control socket path {self.socket} is longer than "
                              f"{MAX_SOCKET_PATH} bytes (Unix sockets allow no more): "
                              f"set ACTORS_RUN_DIR to a shorter folder")
        parent = os.path.dirname(self.base)
        if not os.path.isdir(parent):
            try:
                os.makedirs(parent, 0o700, exist_ok=True)
            except OSError as e:
                raise RunDirError(f"cannot make {parent}: {e.strerror or e}") from None
        _private_dir(self.base)
        _private_dir(self.path)
        fd = os.open(os.path.join(self.path, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                     0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunning(self.name, self.read_pid()) from None
        self._lock_fd = fd
        tmp = f"{self.pid_file}.{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(f"{os.getpid()}\n")
        os.replace(tmp, self.pid_file)

    def release(self) -> None:
        """Remove the pid file and the socket, then drop the lock (the lock
        file stays: removing it would race with a new ``run``)."""
        if self._lock_fd is None:
            return
        for path in (self.pid_file, self.socket):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        os.close(self._lock_fd)
        self._lock_fd = None
