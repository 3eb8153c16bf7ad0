"""A real redis-server on 127.0.0.1 for the Redis store's tests (no mocks).

``RedisServer.start(folder)`` runs one on a free port, without persistence, and returns once it
answers PING; ``stop()`` ends it. ``./run test`` installs the Debian package redis-server.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

__all__ = ["RedisServer", "redis_available"]

_BIND_ATTEMPTS = 3


def redis_available() -> bool:
    """Whether the redis-server command is installed."""
    return shutil.which("redis-server") is not None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process, listening on ``127.0.0.1:port``; ``url`` is its database 0."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.log = log

    @classmethod
    def start(cls, directory: Path, *, deadline: float = 10.0) -> RedisServer:
        """Start one in ``directory`` (its working folder and log); wait until it answers PING,
        for at most ``deadline`` seconds. Raises RuntimeError with its output if it does not."""
        directory.mkdir(parents=True, exist_ok=True)
        failure = ""
        for _ in range(_BIND_ATTEMPTS):  # the free port may be taken before redis binds it
            port = _free_port()
            log = directory / f"redis-{port}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                     "--save", "", "--appendonly", "no", "--dir", str(directory)],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
            server = cls(process, port, log)
            give_up = time.monotonic() + deadline
            while time.monotonic() < give_up:
                if process.poll() is not None:
                    break
                if _answers_ping(port):
                    return server
                time.sleep(0.02)
            server.stop()
            failure = log.read_text(errors="replace")
            if "Address already in use" not in failure:
                break
        raise RuntimeError(f"redis-server did not come up within {deadline}s:\n{failure}")

    def stop(self) -> None:
        """End the server (SIGTERM, then SIGKILL after 5 s) and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __repr__(self) -> str:
        return f"RedisServer({self.url!r}, pid={self.process.pid})"
