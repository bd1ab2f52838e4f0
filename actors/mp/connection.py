"""Pipe, Connection and wait, as in ``multiprocessing.connection``.

Both ends of a pipe are served by one PipeServer actor. An end counts as
closed once no process holds it: every process that receives a Connection
(as a Process argument, say) holds it until it calls ``close()`` or ends,
like a file descriptor inherited by a child.
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import os
import pickle
import threading
from collections.abc import Iterable
from typing import Any

from actors.mp import context
from actors.mp.primitive import EMPTY, Handle, Primitive, check_timeout, unpack
from actors.ref import ActorRef
from actors.ref import unpickling_into

__all__ = ["Connection", "Pipe", "wait"]


class PipeServer(Primitive):
    """Both ends of a Pipe. ``inbox[s]`` holds what end ``s`` will receive,
    as (raw, payload): raw bytes from ``send_bytes``, else a value. An end is
    closed when no process holds it any more (``holders[s]``)."""

    label = "Pipe"

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        self.inbox: tuple[collections.deque, collections.deque] = (
            collections.deque(), collections.deque())
        self.holders: tuple[dict[int, Any], dict[int, Any]] = ({}, {})
        self.ever_held = [False, False]
        self.readers: tuple[dict[int, bool], dict[int, bool]] = ({}, {})  # token -> consumes

    def closed(self, side: int) -> bool:
        return self.ever_held[side] and not self.holders[side]

    def do_attach(self, side: int, handle: int, who: list[Any]) -> bool:
        ref = who[2]
        self.holders[side][handle] = ref
        self.ever_held[side] = True
        self.watch_owner(ref)
        return True

    def do_detach(self, side: int, handle: int) -> None:
        if self.holders[side].pop(handle, 0) != 0 and self.closed(side):
            self.hang_up(1 - side)

    def hang_up(self, side: int) -> None:
        """End ``side``'s peer is closed: its waiting readers learn it."""
        if self.inbox[side]:
            return
        for token in list(self.readers[side]):
            del self.readers[side][token]
            if self.readers_consume(token):
                self.fail(token, EOFError())
            else:
                self.answer(token, True)

    def readers_consume(self, token: int) -> bool:
        return self.parked[token][1]["consume"]

    def do_send(self, side: int, raw: bool, payload: Any) -> None:
        to = 1 - side
        readers = self.readers[to]
        while readers:
            token = next(iter(readers))
            del readers[token]
            if self.parked[token][1]["consume"]:
                self.answer(token, [raw, payload])
                return
            self.answer(token, True)  # a poll: the message stays
        self.inbox[to].append((raw, payload))

    def do_recv(self, token: int, side: int, consume: bool, who: list[Any],
                block: bool) -> Any:
        ref = who[2]
        box = self.inbox[side]
        if box:
            if not consume:
                return True
            raw, payload = box.popleft()
            return [raw, payload]
        if self.closed(1 - side):
            if consume:
                raise EOFError
            return True  # poll() is true at end of file: recv() will not block
        if not block:
            return False if not consume else EMPTY
        self.watch_owner(ref)
        self.readers[side][token] = consume
        self.park(token, {"ref": ref, "consume": consume})
        return None

    def cancelled(self, token: int, info: Any) -> None:
        for readers in self.readers:
            readers.pop(token, None)

    def owner_gone(self, ref: ActorRef) -> None:
        for token, (_, info) in list(self.parked.items()):
            if info.get("ref") == ref:
                for readers in self.readers:
                    readers.pop(token, None)
        super().owner_gone(ref)
        for side in (0, 1):
            for handle, owner in list(self.holders[side].items()):
                if owner == ref:
                    self.do_detach(side, handle)

_handles = itertools.count(1)
_unattached: threading.local = threading.local()


class Connection(Handle):
    _local_fields = ("_handle", "_open")

    def __init__(self, ref: Any, side: int, readable: bool, writable: bool) -> None:
        self._side = side
        self._readable = readable
        self._writable = writable
        super().__init__(ref)

    def _init_local(self) -> None:
        # A handle number of this process's copy; attached on first use (or
        # at once in a child process's start, see actors.mp.process).
        self._handle = 0
        self._open = True

    def _attach(self) -> None:
        if not self._handle:
            self._handle = (os.getpid() << 32) | next(_handles)
            self._ask(("attach", self._side, self._handle, context.me()))

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        pending = getattr(_unattached, "items", None)
        if pending is not None:
            pending.append(self)

    def _check(self, reading: bool) -> None:
        if not self._open:
            raise OSError("handle is closed")
        if reading and not self._readable:
            raise OSError("connection is write-only")
        if not reading and not self._writable:
            raise OSError("connection is read-only")
        self._attach()

    @property
    def closed(self) -> bool:
        return not self._open

    @property
    def readable(self) -> bool:
        return self._readable

    @property
    def writable(self) -> bool:
        return self._writable

    def fileno(self) -> int:
        raise OSError("an actors.mp Connection has no file descriptor (use "
                      "actors.mp.connection.wait)")

    def send(self, obj: Any) -> None:
        self._check(False)
        self._tell(("send", self._side, False, context.pack(obj)))

    def send_bytes(self, buf: Any, offset: int = 0, size: int | None = None) -> None:
        self._check(False)
        view = memoryview(buf)
        if view.itemsize > 1:
            view = view.cast("B")
        n = len(view)
        if offset < 0:
            raise ValueError("offset is negative")
        if n < offset:
            raise ValueError("buffer length < offset")
        if size is None:
            size = n - offset
        elif size < 0:
            raise ValueError("size is negative")
        elif offset + size > n:
            raise ValueError("buffer length < offset + size")
        self._tell(("send", self._side, True, bytes(view[offset:offset + size])))

    def _receive(self) -> tuple[bool, Any]:
        self._check(True)
        answer = self._wait(("recv", context.token(), self._side, True, context.me(), True),
                            None)
        return answer[0], answer[1]

    def recv(self) -> Any:
        raw, payload = self._receive()
        if raw:
            with unpickling_into(context.runtime()):
                return pickle.loads(payload)
        return unpack(payload)

    def recv_bytes(self, maxlength: int | None = None) -> bytes:
        if maxlength is not None and maxlength < 0:
            raise ValueError("negative maxlength")
        raw, payload = self._receive()
        data = payload if raw else pickle.dumps(unpack(payload), pickle.HIGHEST_PROTOCOL)
        if maxlength is not None and len(data) > maxlength:
            self.close()
            raise OSError("bad message length")
        return data

    def recv_bytes_into(self, buf: Any, offset: int = 0) -> int:
        raw, payload = self._receive()
        data = payload if raw else pickle.dumps(unpack(payload), pickle.HIGHEST_PROTOCOL)
        view = memoryview(buf)
        if view.itemsize > 1:
            view = view.cast("B")
        if offset < 0 or offset > len(view):
            raise ValueError("offset out of bounds")
        if len(data) > len(view) - offset:
            from multiprocessing import BufferTooShort
            raise BufferTooShort(data)
        view[offset:offset + len(data)] = data
        return len(data)

    def poll(self, timeout: float | None = 0.0) -> bool:
        self._check(True)
        wait = check_timeout(True, timeout)
        answer = self._wait(("recv", context.token(), self._side, False, context.me(),
                             wait != 0), wait)
        return answer is True

    def _poll_future(self) -> tuple[Any, int]:
        self._check(True)
        token = context.token()
        ref = context.bind(self._ref)
        return ref.ask_async(("recv", token, self._side, False, context.me(), True)), token

    def close(self) -> None:
        if self._open:
            self._open = False
            if self._handle:
                try:
                    self._tell(("detach", self._side, self._handle))
                except Exception:
                    pass

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *args: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = ("r" if self._readable else "") + ("w" if self._writable else "")
        return f"<Connection #{self._ref.uid}/{self._side} {mode}>"


def Pipe(duplex: bool = True) -> tuple[Connection, Connection]:  # noqa: N802 (stdlib name)
    """Two connected ends: both ways, or (reader, writer) if not ``duplex``."""
    ref = context.spawn(PipeServer)
    if duplex:
        ends = Connection(ref, 0, True, True), Connection(ref, 1, True, True)
    else:
        ends = Connection(ref, 0, True, False), Connection(ref, 1, False, True)
    for end in ends:
        end._attach()
    return ends


def take_unattached() -> list[Connection]:
    """Start collecting Connections unpickled on this thread (a child
    process attaches them before its parent's start() returns)."""
    _unattached.items = []
    return _unattached.items


def stop_collecting() -> None:
    _unattached.items = None


def wait(object_list: Iterable[Any], timeout: float | None = None) -> list[Any]:
    """The objects of ``object_list`` that are ready: Connections with
    something to receive (or at end of file), Process sentinels of ended
    processes. Waits until one is ready or ``timeout`` passes."""
    objects = list(object_list)
    ready: list[Any] = []
    futures: dict[Any, tuple[Any, Any, int]] = {}
    for obj in objects:
        future = getattr(obj, "_ready_future", None)
        if future is not None:  # a Process sentinel
            futures[future] = (obj, None, 0)
        elif isinstance(obj, Connection):
            future, token = obj._poll_future()
            futures[future] = (obj, obj, token)
        else:
            raise TypeError(f"actors.mp.connection.wait() takes actors.mp Connections and "
                            f"Process sentinels, got {obj!r}")
    if not futures:
        return []
    # One future done when any is; waited for through the runtime, which
    # reads the inbox itself where it must (a pool task, an actor handler).
    first: concurrent.futures.Future = concurrent.futures.Future()

    def one_done(_: Any) -> None:
        if not first.done():
            try:
                first.set_result(True)
            except concurrent.futures.InvalidStateError:
                pass
    for future in futures:
        future.add_done_callback(one_done)
    context.runtime().wait(first, timeout if timeout is None else max(0.0, timeout),
                           track=False)
    for future, (obj, conn, token) in futures.items():
        if conn is not None and not future.done():
            context.bind(conn._ref).ask(("cancel", token))
    for future, (obj, conn, token) in futures.items():
        if conn is None:
            if future.done():
                ready.append(obj)
            continue
        answer = future.result()
        if answer is True:
            ready.append(obj)
    return [obj for obj in objects if obj in ready]



