"""`python -m spark_etl.devtools.lab` serves the four notebooks with a kernel that is this environment and imports
spark_etl.

Everything goes through the server's REST and websocket APIs on loopback, with bounded waits, and the server is
stopped by its process group whatever happens, so a failure leaves no server or kernel running.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from support.pipeline import PROJECT_DIR
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from spark_etl.devtools.ports import free_port

pytestmark = pytest.mark.e2e

HOST = "127.0.0.1"
START_SECONDS = 60.0
KERNEL_SECONDS = 60.0
STOP_SECONDS = 30.0
URL_PATTERN = re.compile(r"http://127\.0\.0\.1:(\d+)/lab\?token=([0-9a-f]{16,})")
PROBE = (
    "import json, os, sys, spark_etl\n"
    "print(json.dumps({'executable': sys.executable, 'pid': os.getpid(), 'spark_etl': spark_etl.__file__}))"
)


def api(port: int, token: str | None, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One REST call: (status, decoded JSON or None); HTTP errors are returned, not raised."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"token {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://{HOST}:{port}{path}", data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status: int = response.status
            payload = response.read()
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    return status, json.loads(payload) if payload else None


def wait_for_url(process: subprocess.Popen[bytes], log: Path) -> tuple[int, str]:
    """The port and token of the URL the launcher prints once the server answers."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace")
        # the last match: Jupyter's own log shows the URL with the token masked as "..."
        matches = URL_PATTERN.findall(text)
        if matches:
            port, token = matches[-1]
            return int(port), token
        assert process.poll() is None, f"the launcher exited with {process.returncode}:\n{text}"
        time.sleep(0.25)
    pytest.fail(f"no URL within {START_SECONDS:.0f} s:\n{log.read_text(encoding='utf-8', errors='replace')}")


async def execute(port: int, token: str, kernel_id: str, code: str) -> tuple[dict[str, Any], str]:
    """Run code in the kernel over its websocket: the execute_reply's content and the stdout it printed.

    Unbounded by itself: the caller puts one deadline on the whole exchange.
    """
    session = uuid.uuid4().hex
    msg_id = uuid.uuid4().hex
    request = HTTPRequest(
        f"ws://{HOST}:{port}/api/kernels/{kernel_id}/channels?session_id={session}",
        headers={"Authorization": f"token {token}"},
    )
    connection = await websocket_connect(request)
    try:
        message = {
            "header": {
                "msg_id": msg_id,
                "msg_type": "execute_request",
                "username": "test",
                "session": session,
                "date": "",
                "version": "5.3",
            },
            "parent_header": {},
            "metadata": {},
            "content": {"code": code, "silent": False, "store_history": False, "allow_stdin": False},
            "buffers": [],
            "channel": "shell",
        }
        await connection.write_message(json.dumps(message))
        reply: dict[str, Any] | None = None
        idle = False
        stdout = ""
        # the reply comes on shell, the output and the final idle status on iopub, in no fixed order
        while reply is None or not idle:
            raw = await connection.read_message()
            assert raw is not None, "the kernel websocket closed"
            answer = json.loads(raw)
            if answer.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            msg_type = answer["header"]["msg_type"]
            if msg_type == "execute_reply":
                reply = answer["content"]
            elif msg_type == "stream" and answer["content"]["name"] == "stdout":
                stdout += answer["content"]["text"]
            elif msg_type == "status" and answer["content"]["execution_state"] == "idle":
                idle = True
        return reply, stdout
    finally:
        connection.close()


def stop(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM to the launcher's process group (launcher and server), SIGKILL if that is not enough."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            return process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
    return process.wait(timeout=STOP_SECONDS)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:  # a zombie is dead, only not yet reaped by whoever adopted it
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_lab_serves_the_notebooks_with_a_kernel_of_this_environment(tmp_path: Path) -> None:
    log = tmp_path / "lab.log"
    kernel_pid: int | None = None
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "spark_etl.devtools.lab", "--port", str(free_port())],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
    try:
        port, token = wait_for_url(process, log)
        status, server = api(port, token, "GET", "/api/status")
        assert status == 200 and "started" in server
        assert api(port, None, "GET", "/api/status")[0] == 403, "the server must require the token"

        status, listing = api(port, token, "GET", "/api/contents")
        assert status == 200
        assert sorted(item["name"] for item in listing["content"]) == [
            "01_staging.ipynb",
            "02_intermediate.ipynb",
            "03_marts.ipynb",
            "04_monitoring.ipynb",
        ]

        status, kernel = api(port, token, "POST", "/api/kernels", {"name": "python3"})
        assert status == 201 and kernel["name"] == "python3"
        reply, stdout = asyncio.run(asyncio.wait_for(execute(port, token, kernel["id"], PROBE), KERNEL_SECONDS))
        assert reply["status"] == "ok", reply
        facts = json.loads(stdout)
        kernel_pid = facts["pid"]
        assert facts["executable"] == sys.executable
        assert Path(facts["spark_etl"]).is_relative_to(PROJECT_DIR / "Spark_ETL_Pipeline" / "src")

        assert api(port, token, "DELETE", f"/api/kernels/{kernel['id']}")[0] == 204
        assert wait_gone(kernel_pid, STOP_SECONDS), "the deleted kernel is still running"
    finally:
        returncode = stop(process)
        if kernel_pid is not None and not wait_gone(kernel_pid, STOP_SECONDS):
            os.kill(kernel_pid, signal.SIGKILL)
    assert returncode == 0, log.read_text(encoding="utf-8", errors="replace")
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # nothing of the launcher's process group is left
