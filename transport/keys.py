"""CurveZMQ key material for tcp:// links, on pyzmq's ``zmq.auth``.

A *keys folder* (mode 0700) holds what the nodes of one cluster share:

- ``cluster.key`` / ``cluster.key_secret``: the cluster's key pair. Every
  node's tcp sockets are CURVE servers with it (so a connecting peer knows
  the server key it must expect: this one), and a node without a pair of
  its own is a CURVE client with it too.
- ``NAME.key`` / ``NAME.key_secret`` (optional): the own client pair of the
  node named NAME (``ActorSystem(node=NAME)``), made by ``--node NAME``.
- ``allowed/``: the public keys a server admits as clients (``*.key``).
  The ZAP handler (``zmq.auth.ThreadAuthenticator``) reads it when a
  process starts; a connection with any other key is refused during the
  handshake, before a byte reaches the application.

Secret files are mode 0600. Nothing here knows about actors.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
from typing import Any

import zmq
import zmq.auth

__all__ = ["Curve", "KeyMaterialError", "CLUSTER", "create", "load", "require_curve"]

CLUSTER = "cluster"
ALLOWED = "allowed"
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")


class KeyMaterialError(ValueError):
    """Key material missing, malformed or unsafe (the message says which)."""


def require_curve() -> None:
    """Raise unless the installed libzmq has CURVE (libsodium)."""
    if not zmq.has("curve"):
        raise KeyMaterialError(
            f"the installed libzmq ({zmq.zmq_version()}) was built without CURVE "
            "security, which tcp:// links need: install a pyzmq wheel from PyPI "
            "(pip install --force-reinstall pyzmq; its bundled libzmq has CURVE) or "
            "a libzmq built with libsodium")


@dataclasses.dataclass(frozen=True)
class Curve:
    """The keys one process uses on its tcp sockets."""

    server_public: bytes    # the cluster's public key (servers present it)
    server_secret: bytes
    public: bytes           # this node's client pair
    secret: bytes
    allowed: str            # folder of admitted client public keys

    def server(self, socket: Any) -> None:
        """Make a bound socket a CURVE server."""
        socket.curve_secretkey = self.server_secret
        socket.curve_publickey = self.server_public
        socket.curve_server = True

    def client(self, socket: Any) -> None:
        """Make a connecting socket a CURVE client of a cluster server."""
        socket.curve_secretkey = self.secret
        socket.curve_publickey = self.public
        socket.curve_serverkey = self.server_public


def _private_dir(path: str) -> None:
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)


def _pair(folder: str, name: str) -> str:
    public, secret = zmq.auth.create_certificates(folder, name)
    os.chmod(secret, 0o600)
    os.chmod(public, 0o644)
    return public


def create(folder: str, node: str | None = None) -> list[str]:
    """Make (or add to) a keys folder; return the files written.

    Without ``node``: a new folder with the cluster pair, admitted as a
    client (refuses to overwrite one). With ``node``: add that node's own
    client pair and admit its public key (the cluster pair is made first
    if the folder has none).
    """
    require_curve()
    folder = os.path.abspath(folder)
    cluster_secret = os.path.join(folder, f"{CLUSTER}.key_secret")
    allowed = os.path.join(folder, ALLOWED)
    written = []
    if node is not None and not _NAME.match(node) or node == CLUSTER:
        raise KeyMaterialError(f"a node name for keys is letters, digits, '_', '.' or '-' "
                        f"(and not {CLUSTER!r}), got {node!r}")
    if node is None and os.path.exists(cluster_secret):
        raise KeyMaterialError(f"{folder} already holds keys ({cluster_secret}); "
                        f"remove it first or choose another folder")
    _private_dir(folder)
    _private_dir(allowed)
    if not os.path.exists(cluster_secret):
        public = _pair(folder, CLUSTER)
        shutil.copy(public, os.path.join(allowed, f"{CLUSTER}.key"))
        written += [public, cluster_secret]
    if node is not None:
        if os.path.exists(os.path.join(folder, f"{node}.key_secret")):
            raise KeyMaterialError(f"{folder} already holds keys for node {node!r}")
        public = _pair(folder, node)
        shutil.copy(public, os.path.join(allowed, f"{node}.key"))
        written += [public, os.path.join(folder, f"{node}.key_secret")]
    return written


def _secret(path: str) -> tuple[bytes, bytes]:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise KeyMaterialError(f"no key file {path} (make keys with: actors keys new FOLDER)") from None
    if mode & 0o077:
        raise KeyMaterialError(f"{path} is readable by others (mode {mode & 0o777:o}); "
                        f"chmod 600 it, or make new keys")
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as e:
        raise KeyMaterialError(f"cannot read key file {path}: {e}") from None
    if secret is None:
        raise KeyMaterialError(f"{path} holds no secret key")
    return public, secret


def load(folder: str, node: str | None = None) -> Curve:
    """The keys of a process of node ``node`` (its own client pair when the
    folder has one, else the cluster pair)."""
    require_curve()
    folder = os.path.abspath(folder)
    if not os.path.isdir(folder):
        raise KeyMaterialError(f"keys folder {folder} does not exist "
                        f"(make it with: actors keys new {folder})")
    if os.stat(folder).st_mode & 0o077:
        raise KeyMaterialError(f"keys folder {folder} is open to others; chmod 700 it")
    server_public, server_secret = _secret(os.path.join(folder, f"{CLUSTER}.key_secret"))
    public, secret = server_public, server_secret
    if node is not None and _NAME.match(node) \
            and os.path.exists(os.path.join(folder, f"{node}.key_secret")):
        public, secret = _secret(os.path.join(folder, f"{node}.key_secret"))
    allowed = os.path.join(folder, ALLOWED)
    if not os.path.isdir(allowed):
        raise KeyMaterialError(f"keys folder {folder} has no {ALLOWED}/ folder of admitted keys")
    return Curve(server_public, server_secret, public, secret, allowed)
