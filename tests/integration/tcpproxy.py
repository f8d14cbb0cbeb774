"""A TCP proxy of the tests' own, to put between the server and its database and cut."""

from __future__ import annotations

import contextlib
import socket
import threading


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target``. ``cut()`` resets every open connection
    and refuses new ones (the database vanished); ``stall()`` keeps connections open but
    forwards nothing (a partition); ``restore()`` heals both."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._up = threading.Event()
        self._up.set()
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._up.is_set():
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                self._flowing.wait()
                if not self._up.is_set():
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self._up.clear()
        self._flowing.set()
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            _reset(conn)

    def stall(self) -> None:
        self._flowing.clear()

    def restore(self) -> None:
        self._up.set()
        self._flowing.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._listener.close()


def _reset(sock: socket.socket) -> None:
    try:
        # SO_LINGER 0: close with RST, as a crashed peer or a dropped route would.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        # Shut down first: on Linux, close() alone does not wake a pipe thread blocked in
        # recv() on this socket, and the connection would live on, half-cut, in limbo.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
    except OSError:
        pass
