"""A loopback TCP proxy the cluster tests cut, to partition one node from
etcd while the others still reach it: a real network cut of that node's
connections (they are closed, and new ones refused), nothing mocked."""

from __future__ import annotations

import socket
import threading


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target`` until :meth:`cut`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.lock = threading.Lock()
        self.conns: list[socket.socket] = []
        self.cut_off = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                if self.cut_off:
                    client.close()
                    upstream.close()
                    return
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        try:
            dst.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        src.close()  # each socket is the source of one of the two threads

    def cut(self) -> None:
        """Close every connection and refuse new ones."""
        self.listener.close()
        with self.lock:
            self.cut_off = True
            conns, self.conns = self.conns, []
        for s in conns:  # their threads close them
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
