"""Listener and Client: connections between processes that did not make
them together, as ``multiprocessing.connection`` offers them.

A Listener is a listening socket (``AF_UNIX`` by default, or ``AF_INET``);
``accept()`` and ``Client(address)`` return :class:`actors.mp.channels.
Connection` objects over the accepted or connected socket, which speak the
standard library's framing (so either side may be the standard library's).
With an ``authkey`` both sides prove they know it before anything else
travels: the standard library's HMAC challenge (``deliver_challenge`` /
``answer_challenge``), so a wrong key raises ``AuthenticationError`` on
both sides. What travels is pickled: give an authkey to any listener
another user or host could reach.
"""

from __future__ import annotations

import atexit
import hmac
import itertools
import os
import shutil
import socket
import sys
import tempfile
import threading
from typing import Any

from actors.mp import context
from actors.mp.channels import Connection

__all__ = ["Client", "Listener", "address_type", "answer_challenge", "arbitrary_address",
           "deliver_challenge", "families"]

AuthenticationError = __import__("multiprocessing").AuthenticationError

families = ["AF_INET"] + (["AF_UNIX"] if hasattr(socket, "AF_UNIX") else [])
default_family = "AF_UNIX" if "AF_UNIX" in families else "AF_INET"

MESSAGE_LENGTH = 20
CHALLENGE = b"#CHALLENGE#"
WELCOME = b"#WELCOME#"
FAILURE = b"#FAILURE#"
DIGEST = "md5"  # the standard library 3.11's, so that either side may be it

_tmp_lock = threading.Lock()
_tmp_dir: list[str] = []
_numbers = itertools.count(1)


def _temp_dir() -> str:
    with _tmp_lock:
        if not _tmp_dir:
            path = tempfile.mkdtemp(prefix="actors-mp-listeners-")
            _tmp_dir.append(path)
            # removed at exit (atexit), and when a Process's target ends
            # (its exit hooks: a forked host ends with os._exit)
            atexit.register(shutil.rmtree, path, True)
            context.EXIT_HOOKS.append(lambda: shutil.rmtree(path, True))
        return _tmp_dir[0]


def arbitrary_address(family: str) -> Any:
    """A free address for ``family``."""
    if family == "AF_INET":
        return ("localhost", 0)
    if family == "AF_UNIX":
        return os.path.join(_temp_dir(), f"listener-{os.getpid()}-{next(_numbers)}")
    raise ValueError("unrecognized family")


def _is_abstract(address: Any) -> bool:
    return sys.platform == "linux" and isinstance(address, (str, bytes)) and \
        address[:1] in ("\0", b"\0")


def address_type(address: Any) -> str:
    """'AF_INET' for a (host, port) tuple, 'AF_UNIX' for a path."""
    if type(address) is tuple:
        return "AF_INET"
    if type(address) is str and address.startswith("\\\\"):
        return "AF_PIPE"
    if type(address) is str or _is_abstract(address):
        return "AF_UNIX"
    raise ValueError(f"address type of {address!r} unrecognized")


def _check_family(family: str) -> None:
    if family not in families:
        raise ValueError(f"Family {family} is not recognized.")


def _check_authkey(authkey: Any) -> None:
    if authkey is not None and not isinstance(authkey, bytes):
        raise TypeError("authkey should be a byte string")


class Listener:
    """A bound, listening socket that returns Connections."""

    def __init__(self, address: Any = None, family: str | None = None, backlog: int = 1,
                 authkey: bytes | None = None) -> None:
        family = family or (address and address_type(address)) or default_family
        address = address or arbitrary_address(family)
        _check_family(family)
        _check_authkey(authkey)
        sock = socket.socket(getattr(socket, family))
        try:
            if os.name == "posix":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setblocking(True)
            sock.bind(address)
            sock.listen(backlog)
            self._address = sock.getsockname()
        except OSError:
            sock.close()
            raise
        self._socket: socket.socket | None = sock
        self._family = family
        self._unlink = address if family == "AF_UNIX" and not _is_abstract(address) else None
        self._authkey = authkey
        self._last_accepted: Any = None

    def accept(self) -> Connection:
        """Wait for a client; its Connection (after the challenge, with an authkey)."""
        if self._socket is None:
            raise OSError("listener is closed")
        s, self._last_accepted = self._socket.accept()
        s.setblocking(True)
        conn = Connection(s.detach())
        if self._authkey:
            deliver_challenge(conn, self._authkey)
            answer_challenge(conn, self._authkey)
        return conn

    def close(self) -> None:
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()
            unlink, self._unlink = self._unlink, None
            if unlink is not None:
                try:
                    os.unlink(unlink)
                except OSError:
                    pass

    @property
    def address(self) -> Any:
        return self._address

    @property
    def last_accepted(self) -> Any:
        return self._last_accepted

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<actors.mp.connection.Listener {self._family} {self._address!r}>"


def Client(address: Any, family: str | None = None,  # noqa: N802 (the stdlib's name)
           authkey: bytes | None = None) -> Connection:
    """A Connection to the Listener at ``address``."""
    family = family or address_type(address)
    _check_family(family)
    _check_authkey(authkey)
    with socket.socket(getattr(socket, family)) as sock:
        sock.setblocking(True)
        sock.connect(address)
        conn = Connection(sock.detach())
    if authkey is not None:
        answer_challenge(conn, authkey)
        deliver_challenge(conn, authkey)
    return conn


def deliver_challenge(connection: Connection, authkey: bytes) -> None:
    """Send a random challenge; the peer must answer with its HMAC under
    ``authkey`` (AuthenticationError if it does not)."""
    if not isinstance(authkey, bytes):
        raise ValueError(f"Authkey must be bytes, not {type(authkey)!s}")
    message = os.urandom(MESSAGE_LENGTH)
    connection.send_bytes(CHALLENGE + message)
    digest = hmac.new(authkey, message, DIGEST).digest()
    response = connection.recv_bytes(256)  # a larger answer is refused
    if hmac.compare_digest(response, digest):
        connection.send_bytes(WELCOME)
    else:
        connection.send_bytes(FAILURE)
        raise AuthenticationError("digest received was wrong")


def answer_challenge(connection: Connection, authkey: bytes) -> None:
    """Answer the peer's challenge with its HMAC under ``authkey``
    (AuthenticationError if the peer rejects it)."""
    if not isinstance(authkey, bytes):
        raise ValueError(f"Authkey must be bytes, not {type(authkey)!s}")
    message = connection.recv_bytes(256)
    if message[:len(CHALLENGE)] != CHALLENGE:
        raise AuthenticationError(f"expected a challenge, got {message[:40]!r}")
    digest = hmac.new(authkey, message[len(CHALLENGE):], DIGEST).digest()
    connection.send_bytes(digest)
    response = connection.recv_bytes(256)
    if response != WELCOME:
        raise AuthenticationError("digest sent was rejected")
