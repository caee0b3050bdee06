"""A TCP proxy the test controls: forward traffic, or stall it like a dead network.

Stopping a server makes connections fail at once; a cut cable does not: packets vanish
and clients wait until their timeouts. ``stall()`` reproduces that on loopback: new
connections are accepted but never served, and bytes on existing ones stop flowing.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time

from tests.support.ports import free_port


class StallingProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._stalled = threading.Event()
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.2)
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> StallingProxy:
        self._thread.start()
        return self

    def stall(self) -> None:
        self._stalled.set()

    def resume(self) -> None:
        """Forward again; connections opened while stalled are dropped so clients reconnect."""
        self._stalled.clear()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for sock in [self._listener, *self._sockets]:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            self._sockets.append(client)
            if self._stalled.is_set():
                continue  # accepted, never served
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets.append(upstream)
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while not self._stop.is_set():
                if self._stalled.is_set():
                    time.sleep(0.05)  # hold the bytes: the peer sees silence, not an error
                    continue
                readable, _, _ = select.select(list(peers), [], [], 0.1)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except OSError:
            return
        finally:
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()
