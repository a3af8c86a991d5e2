"""HTTPS_PROXY/NO_PROXY are honoured for AWS APIs; instance-local endpoints (IMDS, the ECS agent)
never go through a proxy."""
import http.client
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ForwardingProxy:
    """A plain HTTP proxy on loopback that forwards every request to one upstream (moto) and
    counts what it saw."""

    def __init__(self, upstream: str):
        up = urllib.parse.urlparse(upstream)
        seen = self.seen = []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _forward(self):
                seen.append((self.command, self.path))
                target = urllib.parse.urlparse(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                conn = http.client.HTTPConnection(up.hostname, up.port, timeout=10)
                path = target.path + (f"?{target.query}" if target.query else "")
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                # moto routes S3 by Host; the name was only for the proxy (moto skips SigV4).
                headers["Host"] = f"{up.hostname}:{up.port}"
                conn.request(self.command, path, body, headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_HEAD = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def test_aws_calls_use_the_proxy_and_imds_never_does(moto, world, ecs_boot):
    proxy = ForwardingProxy(moto.url)
    try:
        port = urllib.parse.urlparse(moto.url).port
        # A name only the proxy can reach: the request must go through it to succeed.
        env = {"AWS_ENDPOINT_URL": f"http://moto.ecs-boot.invalid:{port}",
               "HTTP_PROXY": proxy.url, "HTTPS_PROXY": proxy.url}
        out = ecs_boot.run("render", env=env)
        assert out.returncode == 0, out.stderr
        assert "ECS_ENGINE_AUTH_DATA=<secret sha256:" in out.stdout
        paths = [p for _, p in proxy.seen]
        assert any("moto.ecs-boot.invalid" in p for p in paths), paths
        assert not any("latest/" in p for p in paths), "IMDS went through the proxy"
    finally:
        proxy.close()


def test_a_dead_proxy_does_not_break_local_endpoints(moto, world, ecs_boot):
    env = {"HTTP_PROXY": "http://127.0.0.1:1", "HTTPS_PROXY": "http://127.0.0.1:1"}
    out = ecs_boot.run("render", env=env)
    assert out.returncode == 0, out.stderr
