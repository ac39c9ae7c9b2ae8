"""A stand-in for `kraft server` in the local-cluster tests: it answers /v1/status/ready and
/v1/quorum/status on the HTTP listener of its server.properties until SIGTERM. Tests copy it
to a file named `kraft` so that its command line looks like the real one."""

from __future__ import annotations

import json
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType

from kraft.config import load_config

ANSWERS = {
    "/v1/status/ready": {"status": "ready"},
    "/v1/quorum/status": {"cluster_id": "fake", "leader_id": 1, "leader_epoch": 7},
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        answer = ANSWERS.get(self.path)
        if answer is None:
            self.send_error(404)
            return
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> None:
    config = load_config(Path(sys.argv[sys.argv.index("--config") + 1]), environ={})
    server = ThreadingHTTPServer(config.http_listener, Handler)
    signal.signal(signal.SIGTERM, stop)
    print(f"fake node {config.node_id} serving on {config.http_listener}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
