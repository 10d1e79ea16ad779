"""`python app.py` with no settings at all: SQLite under var/, a private Redis when none
answers, demo logins printed, docs at /schema; and everything stopped on exit."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
ENV_KEYS = (
    "DATABASE_URL",
    "REDIS_URL",
    "SEED_DEMO",
    "RUN_WORKER_INLINE",
    "JWT_KEYS",
    "JWT_ACTIVE_KID",
    "VAR_DIR",
    "ARGON2_TIME_COST",
    "ARGON2_MEMORY_KIB",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_python_app_py_runs_the_embedded_default(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env |= {
        "VAR_DIR": str(tmp_path / "var"),
        "PORT": str(port),
        # Nothing answers here, so the app must start its own Redis.
        "REDIS_PROBE_URL": f"redis://127.0.0.1:{free_port()}/0",
    }
    server = subprocess.Popen(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise AssertionError("the embedded default did not start")

        assert (tmp_path / "var" / "registry.sqlite3").exists()
        assert (tmp_path / "var" / "redis.sock").exists()
        login = httpx.post(
            f"{base}/auth/login", json={"phone": "13900000005", "password": "Demo2026pass"}
        )
        assert login.status_code == 200, login.text
        me = httpx.get(
            f"{base}/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
        )
        assert me.json()["role"] == "registrar"
        docs = httpx.get(f"{base}/schema/openapi.json")
        assert docs.status_code == 200
        assert "/auth/login" in docs.json()["paths"]
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=30)
    assert "Demo logins" in output
    for role in (
        "parent",
        "teacher",
        "registrar",
        "school_leader",
        "county_reviewer",
        "city_admin",
        "province_admin",
        "sysadmin",
    ):
        assert f"  {role} " in output
    socket_path = tmp_path / "var" / "redis.sock"
    assert not socket_path.exists()  # the private Redis was stopped…
    assert subprocess.run(["pgrep", "-f", str(socket_path)]).returncode == 1  # …and is gone
