"""What the cluster asks of etcd: a lease, transactions, reads, and a
watch of a prefix that resumes where it left off.

etcd3gw (OpenStack's client of etcd's JSON gateway: plain HTTP through
``requests``, no gRPC stack to build) makes the calls. This module adds
what a node needs around it:

- several endpoints (``etcd://h1:2379,h2:2379/prefix``), tried in turn:
  the first that answers is kept until it fails;
- a timeout on every call, so a lost etcd never blocks a thread for long
  (:class:`EtcdUnavailable`);
- :class:`Watch`: a thread reading the gateway's watch stream for a
  prefix, which reconnects after a drop (etcd restarted, a connection
  reset) from the revision after the last one it saw, so no event is
  missed or repeated; when that revision was compacted away it says so
  (``on_reset``) and the caller reads the whole prefix again.

Values are JSON objects (readable with ``etcdctl get --prefix``); what
comes back from etcd is checked by the caller like any other input.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import socket
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

import requests
from etcd3gw.client import Etcd3Client
from etcd3gw.exceptions import ConnectionFailedError, ConnectionTimeoutError, Etcd3Exception

from actors.errors import ClusterError

__all__ = ["Etcd", "EtcdRefused", "EtcdUnavailable", "KeyValue", "Watch", "parse_url"]

log = logging.getLogger("actors")

_URL = re.compile(r"(?P<scheme>etcds?)://(?P<hosts>[^/]+)/"
                  r"(?P<prefix>[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*)/?\Z")
_ENDPOINT = re.compile(r"(?P<host>[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})\Z")


class EtcdUnavailable(ClusterError):
    """No etcd endpoint answered within the timeout."""


class EtcdRefused(ClusterError):
    """etcd answered a call with an error."""


class KeyValue(NamedTuple):
    key: str
    value: dict[str, Any] | None    # None: not a JSON object (ignored by callers)
    create_revision: int
    mod_revision: int
    lease: int


def parse_url(url: str) -> tuple[list[tuple[str, int]], str]:
    """``etcd://HOST:PORT[,HOST:PORT...]/PREFIX`` (``etcds://``: over TLS)
    -> endpoints and the key prefix (``/PREFIX/``)."""
    match = _URL.match(url) if isinstance(url, str) else None
    endpoints = []
    for part in (match["hosts"].split(",") if match is not None else ()):
        found = _ENDPOINT.match(part)
        if found is None or not 0 < int(found["port"]) < 65536:
            match = None
            break
        endpoints.append((found["host"].strip("[]"), int(found["port"])))
    if match is None:
        raise ValueError(f"cluster must be 'etcd://HOST:PORT[,HOST:PORT...]/PREFIX' (or "
                         f"etcds:// for TLS; PREFIX: letters, digits, '_', '-', '.', '/'), "
                         f"got {url!r}")
    return endpoints, f"/{match['prefix'].strip('/')}/"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _text(b64: str) -> str:
    return base64.b64decode(b64).decode("utf-8", "replace")


def prefix_end(prefix: str) -> str:
    """The end of the key range of ``prefix`` (its last byte plus one)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def key_value(raw: dict[str, Any]) -> KeyValue:
    """A key-value of the gateway's JSON (int64 fields come as strings)."""
    value: Any = None
    if "value" in raw:
        try:
            value = json.loads(_text(raw["value"]))
        except ValueError:
            value = None
    return KeyValue(_text(raw.get("key", "")), value if isinstance(value, dict) else None,
                    int(raw.get("create_revision", 0)), int(raw.get("mod_revision", 0)),
                    int(raw.get("lease", 0)))


class Tls(NamedTuple):
    """Files for ``etcds://``: the CA that signed etcd's certificate, and
    this node's client certificate and key (None: etcd asks for none)."""
    ca: str
    cert: str | None
    key: str | None


def tls_files(keys: str) -> Tls:
    """``KEYS/etcd/ca.crt`` and, if there, ``client.crt`` and
    ``client.key`` (mode 0600); ClusterError naming what is wrong."""
    folder = os.path.join(keys, "etcd")
    ca, cert, key = (os.path.join(folder, n) for n in ("ca.crt", "client.crt", "client.key"))
    if not os.path.isfile(ca):
        raise ClusterError(f"etcds:// needs {ca}: the CA certificate etcd's server "
                           f"certificate is signed with (docs/cluster.md)")
    if os.path.exists(cert) != os.path.exists(key):
        raise ClusterError(f"{folder}: client.crt and client.key go together")
    if not os.path.exists(cert):
        return Tls(ca, None, None)
    if os.stat(key).st_mode & 0o077:
        raise ClusterError(f"{key} can be read by others: chmod 600 it")
    return Tls(ca, cert, key)


def _session(tls: Tls | None) -> requests.Session:
    """A session straight to etcd: no proxy and no CA bundle from the
    environment (``requests`` lets ``REQUESTS_CA_BUNDLE`` override a
    session's own CA), and with ``tls``, etcd's CA and our certificate."""
    session = requests.Session()
    session.trust_env = False
    if tls is not None:
        session.verify = tls.ca
        if tls.cert is not None:
            session.cert = (tls.cert, tls.key)
    return session


class Etcd:
    """The calls a node makes to etcd (see module doc)."""

    def __init__(self, endpoints: list[tuple[str, int]], timeout: float,
                 tls: Tls | None = None) -> None:
        self.timeout = timeout
        self._clients = [Etcd3Client(host=h, port=p, timeout=timeout, api_path="/v3/",
                                     protocol="http" if tls is None else "https",
                                     session=_session(tls))
                         for h, p in endpoints]
        self._current = 0
        self.failovers = 0  # times the endpoint in use changed
        self._lock = threading.Lock()
        self.where = ",".join(f"{h}:{p}" for h, p in endpoints)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            start = self._current
        for step in range(len(self._clients)):
            index = (start + step) % len(self._clients)
            client = self._clients[index]
            try:
                answer = client.post(client.get_url(path), json=body)
            except (ConnectionFailedError, ConnectionTimeoutError, requests.RequestException,
                    OSError) as e:
                last: Exception = e
                continue
            except Etcd3Exception as e:  # it answered: with an error
                raise EtcdRefused(f"etcd refused {path}: {e.detail_text or e!r:.300}") from None
            with self._lock:
                if index != self._current:  # another endpoint answers: a watch moves too
                    self._current = index
                    self.failovers += 1
            return answer if isinstance(answer, dict) else {}
        cause = last.__context__ or last  # (etcd3gw's own errors say nothing of why)
        raise EtcdUnavailable(f"etcd at {self.where} did not answer: {cause!s:.300}")

    # -- leases ------------------------------------------------------------------------
    def grant(self, ttl: int) -> int:
        return int(self._post("/lease/grant", {"TTL": ttl, "ID": 0})["ID"])

    def keepalive(self, lease: int) -> int:
        """Refresh ``lease``; the seconds it has now (<= 0: it is gone)."""
        answer = self._post("/lease/keepalive", {"ID": lease})
        return int(answer.get("result", {}).get("TTL", -1))

    def time_to_live(self, lease: int) -> int:
        return int(self._post("/kv/lease/timetolive", {"ID": lease}).get("TTL", -1))

    def revoke(self, lease: int) -> None:
        try:
            self._post("/kv/lease/revoke", {"ID": lease})
        except EtcdRefused:  # gone already
            pass

    # -- keys --------------------------------------------------------------------------
    def get(self, key: str) -> KeyValue | None:
        kvs = self._post("/kv/range", {"key": _b64(key)}).get("kvs", [])
        return key_value(kvs[0]) if kvs else None

    def get_prefix(self, prefix: str) -> tuple[int, list[KeyValue]]:
        """Every key under ``prefix`` and the revision they were read at."""
        answer = self._post("/kv/range", {"key": _b64(prefix),
                                          "range_end": _b64(prefix_end(prefix))})
        return (int(answer["header"]["revision"]),
                [key_value(kv) for kv in answer.get("kvs", [])])

    def txn(self, compare: list[dict[str, Any]], success: list[dict[str, Any]],
            failure: list[dict[str, Any]] | None = None) -> tuple[bool, dict[str, Any]]:
        answer = self._post("/kv/txn", {"compare": compare, "success": success,
                                        "failure": failure or []})
        return bool(answer.get("succeeded", False)), answer

    def delete(self, key: str) -> None:
        self._post("/kv/deleterange", {"key": _b64(key)})

    def watch(self, prefix: str, revision: int,
              on_events: Callable[[list[tuple[str, KeyValue]]], None],
              on_reset: Callable[[], int]) -> Watch:
        return Watch(self, prefix, revision, on_events, on_reset)

    def stream(self, prefix: str, revision: int) -> requests.Response:
        with self._lock:
            client = self._clients[self._current]
        body = {"create_request": {"key": _b64(prefix), "range_end": _b64(prefix_end(prefix)),
                                   "start_revision": revision}}
        return client.session.post(client.get_url("/watch"), json=body, stream=True,
                                   timeout=(self.timeout, None))


# comparisons and requests of a transaction, in the gateway's JSON
def absent(key: str) -> dict[str, Any]:
    return {"key": _b64(key), "result": "EQUAL", "target": "CREATE", "create_revision": 0}


def created_at(key: str, revision: int) -> dict[str, Any]:
    return {"key": _b64(key), "result": "EQUAL", "target": "CREATE",
            "create_revision": revision}


def modified_at(key: str, revision: int) -> dict[str, Any]:
    return {"key": _b64(key), "result": "EQUAL", "target": "MOD", "mod_revision": revision}


def put(key: str, value: dict[str, Any], lease: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = {"key": _b64(key), "value": _b64(json.dumps(value))}
    if lease:
        body["lease"] = lease
    return {"request_put": body}


def delete(key: str) -> dict[str, Any]:
    return {"request_delete_range": {"key": _b64(key)}}


def read(key: str) -> dict[str, Any]:
    return {"request_range": {"key": _b64(key)}}


def read_response(answer: dict[str, Any], index: int = 0) -> KeyValue | None:
    """The key read by the ``index``-th request of a transaction's answer."""
    try:
        kvs = answer["responses"][index]["response_range"].get("kvs", [])
    except (KeyError, IndexError, TypeError):
        return None
    return key_value(kvs[0]) if kvs else None


class Watch:
    """A thread that follows every change under a prefix (module doc)."""

    def __init__(self, etcd: Etcd, prefix: str, revision: int,
                 on_events: Callable[[list[tuple[str, KeyValue]]], None],
                 on_reset: Callable[[], int]) -> None:
        self.etcd = etcd
        self.prefix = prefix
        self.next_revision = revision  # the first revision not seen yet
        self._on_events = on_events
        self._on_reset = on_reset
        self._stop = threading.Event()
        self._response: requests.Response | None = None
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="actors-etcd-watch",
                                       daemon=True)
        self.thread.start()

    def _run(self) -> None:
        backoff = 0.05
        while not self._stop.is_set():
            try:
                self._follow()
                backoff = 0.05
            except Exception as e:  # a dropped stream, etcd away: reconnect
                if not self._stop.is_set():
                    log.debug("etcd watch of %s broke: %r", self.prefix, e)
            if self._stop.wait(backoff):
                return
            backoff = min(backoff * 2, 1.0)

    def _follow(self) -> None:
        response = self.etcd.stream(self.prefix, self.next_revision)
        with self._lock:
            if self._stop.is_set():
                response.close()
                return
            self._response = response
        if response.status_code != 200:
            raise EtcdUnavailable(f"watch refused: HTTP {response.status_code}")
        for line in response.iter_lines():
            if self._stop.is_set():
                return
            if not line.strip():
                continue
            result = json.loads(line).get("result", {})
            if int(result.get("compact_revision", 0) or 0) > 0:
                # what we missed is gone from etcd's history: read it all again
                self.next_revision = self._on_reset()
                return
            if result.get("canceled"):
                raise EtcdUnavailable(f"watch canceled: {result.get('cancel_reason')}")
            events = [(event.get("type", "PUT"), key_value(event.get("kv", {})))
                      for event in result.get("events", [])]
            if events:
                self.next_revision = max(kv.mod_revision for _, kv in events) + 1
                self._on_events(events)

    def restart(self) -> None:
        """Drop the stream and reconnect (it may be stale after etcd was away)."""
        self._close_stream()

    def _close_stream(self) -> None:
        with self._lock:
            response, self._response = self._response, None
        if response is None:
            return
        try:  # wake the reader blocked in recv
            fd = response.raw._fp.fileno()
            sock = socket.socket(fileno=os.dup(fd))
            try:
                sock.shutdown(socket.SHUT_RDWR)
            finally:
                sock.close()
        except (AttributeError, OSError, ValueError):
            pass
        response.close()

    def stop(self) -> None:
        self._stop.set()
        self._close_stream()
        self.thread.join(2.0)
