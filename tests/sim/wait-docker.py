"""Wait until the Docker engine answers on /var/run/docker.sock (the stand-in docker.service)."""

import http.client
import socket
import sys
import time

SOCKET = "/var/run/docker.sock"


class UnixConnection(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(SOCKET)


deadline = time.monotonic() + 60
last: object = "no 200 from /_ping"
while True:
    try:
        conn = UnixConnection("localhost", timeout=5)
        conn.request("GET", "/_ping")
        if conn.getresponse().status == 200:
            sys.exit(0)
    except OSError as err:
        last = err
    if time.monotonic() > deadline:
        print(f"docker engine not answering on {SOCKET}: {last}", file=sys.stderr)
        sys.exit(1)
    time.sleep(1)
