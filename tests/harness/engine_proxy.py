"""A unix-socket proxy in front of the Docker engine, for tests that make the engine go away
while ecs-boot talks to it: `close()` drops every connection and removes the socket (an engine
restart or crash, as a client sees it); `restore()` listens again on the same path."""

from __future__ import annotations

import socket
import threading
from pathlib import Path


class SocketProxy:
    def __init__(self, path: Path, target: str = "/var/run/docker.sock"):
        self.path, self.target = Path(path), target
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.restore()

    @property
    def url(self) -> str:
        """What DOCKER_HOST says to go through the proxy."""
        return f"unix://{self.path}"

    def restore(self):
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(self.path))
        self.server.listen(16)
        self.closed = False
        threading.Thread(target=self._accept, args=(self.server,), daemon=True).start()

    def _accept(self, server):
        while not self.closed:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.target)
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.closed = True
        self.server.close()
        self.path.unlink(missing_ok=True)
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass
