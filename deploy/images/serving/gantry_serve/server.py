"""The HTTP side: routing, body limits, JSON errors and a graceful drain.

Keep-alive connections are tracked while idle (between requests) so that a drain can
close them at once and wait only for requests in flight."""

import json
import re
import socket
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .protocol import BadInput, select_outputs, v1_instances, v2_inputs

V1_PREDICT = re.compile(r"^/v1/models/([^/:]+):predict$")
V2_MODEL = re.compile(r"^/v2/models/([^/]+)(/ready|/infer)?$")


class HttpError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class ServingServer(ThreadingHTTPServer):
    # Handler threads are joined on close, so in-flight requests finish before exit.
    daemon_threads = False
    block_on_close = True

    def __init__(self, address, config):
        self.config = config
        self.model = None
        self.draining = False
        self._idle = set()
        self._idle_lock = threading.Lock()
        super().__init__(address, Handler)

    def set_idle(self, conn, idle):
        with self._idle_lock:
            if idle and not self.draining:
                self._idle.add(conn)
            else:
                self._idle.discard(conn)
            return not (idle and self.draining)

    def drain(self):
        """Stop accepting, report not ready, close idle keep-alive connections; the
        caller then closes the server, which waits for requests in flight."""
        self.draining = True
        self.shutdown()
        with self._idle_lock:
            idle, self._idle = list(self._idle), set()
        for conn in idle:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # the client closed it already


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gantry-serve"
    sys_version = ""
    # A client idle this long between requests is disconnected.
    timeout = 120

    def handle(self):
        self.close_connection = True
        self._next_request()
        while not self.close_connection:
            self._next_request()

    def _next_request(self):
        if not self.server.set_idle(self.connection, True):
            self.close_connection = True
            return
        try:
            self.handle_one_request()
        finally:
            self.server.set_idle(self.connection, False)

    def parse_request(self):
        # The request line is in: from here on a drain waits for this request.
        self.server.set_idle(self.connection, False)
        self._body_read = False
        return super().parse_request()

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # no access log: the gateway keeps request statistics

    def send_error(self, code, message=None, explain=None):
        # Malformed request lines and the like, as JSON like every other error.
        self.close_connection = True
        self._reply(code, {"error": message or self.responses.get(code, ("error",))[0]})

    # ------------------------------------------------------------------ replies ----
    def _reply(self, status, obj):
        try:
            body = json.dumps(obj, allow_nan=False).encode()
        except ValueError as e:
            status, body = 500, json.dumps({"error": f"model output is not valid JSON: {e}"}).encode()
        if not getattr(self, "_body_read", True) or self.server.draining:
            self.close_connection = True  # an unread body cannot be skipped safely
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _dispatch(self, route):
        try:
            status, obj = route()
        except HttpError as e:
            status, obj = e.status, {"error": str(e)}
        except BadInput as e:
            status, obj = 400, {"error": str(e)}
        except Exception as e:  # the model failed: report it, keep serving
            traceback.print_exc(file=sys.stderr)
            status, obj = 500, {"error": f"model failed: {type(e).__name__}: {e}"}
        self._reply(status, obj)

    # ------------------------------------------------------------------ helpers ----
    def _model(self, name):
        cfg = self.server.config
        if name != cfg.model_name:
            raise HttpError(404, f"model '{name}' not found; this server serves '{cfg.model_name}'")
        if self.server.model is None:
            raise HttpError(503, f"model '{name}' is still loading")
        return self.server.model

    def _json_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise HttpError(411, "send the body with a Content-Length, not chunked")
        raw = self.headers.get("Content-Length")
        if raw is None:
            raise HttpError(411, "Content-Length is required")
        try:
            length = int(raw)
        except ValueError:
            raise HttpError(400, "Content-Length must be an integer") from None
        if length < 0:
            raise HttpError(400, "Content-Length must not be negative")
        limit = self.server.config.max_request_bytes
        if length > limit:
            raise HttpError(413, f"request body of {length} bytes is over the {limit}-byte limit")
        data = self.rfile.read(length)
        self._body_read = True
        if len(data) != length:
            raise HttpError(400, "the body is shorter than its Content-Length")
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise HttpError(400, f"the body is not valid JSON: {e}") from None

    # ------------------------------------------------------------------- routes ----
    def do_GET(self):
        path = self.path.split("?", 1)[0]
        self._body_read = "Content-Length" not in self.headers
        self._dispatch(lambda: self._get(path))

    def do_HEAD(self):
        self.do_GET()

    def do_POST(self):
        path = self.path.split("?", 1)[0]
        self._dispatch(lambda: self._post(path))

    def _ready(self):
        return self.server.model is not None and not self.server.draining

    def _get(self, path):
        if path == "/v2/health/live":
            return 200, {"live": True}
        if path == "/v2/health/ready":
            if self._ready():
                return 200, {"ready": True}
            return 503, {"error": "draining" if self.server.draining else "model is loading"}
        if path == "/v2":
            return 200, {"name": "gantry-serve", "version": "1", "extensions": []}
        match = V2_MODEL.match(path)
        if match and match.group(2) != "/infer":
            model = self._model(match.group(1))
            if match.group(2) == "/ready":
                return (200, {"ready": True}) if self._ready() else (503, {"error": "draining"})
            meta = {
                "name": self.server.config.model_name,
                "versions": ["1"],
                "platform": model.platform,
            }
            meta.update(model.metadata())
            return 200, meta
        if match or V1_PREDICT.match(path):
            raise HttpError(405, f"use POST for {path}")
        raise HttpError(404, f"no such path: {path}")

    def _post(self, path):
        match = V1_PREDICT.match(path)
        if match:
            model = self._model(match.group(1))
            instances = v1_instances(self._json_body())
            return 200, {"predictions": model.predict(instances)}
        match = V2_MODEL.match(path)
        if match and match.group(2) == "/infer":
            model = self._model(match.group(1))
            body = self._json_body()
            tensors, wanted = v2_inputs(body)
            outputs = select_outputs(model.infer(tensors), wanted)
            reply = {
                "model_name": self.server.config.model_name,
                "model_version": "1",
                "outputs": [t.to_json() for t in outputs],
            }
            if isinstance(body.get("id"), str):
                reply["id"] = body["id"]
            return 200, reply
        if match or path in ("/v2/health/live", "/v2/health/ready", "/v2"):
            raise HttpError(405, f"use GET for {path}")
        raise HttpError(404, f"no such path: {path}")
