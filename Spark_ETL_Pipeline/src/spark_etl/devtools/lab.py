"""JupyterLab on the stage notebooks, from this environment: `python -m spark_etl.devtools.lab [--port N]`.

The notebooks are meant to be explored as well as run by papermill, so this starts a server that needs no setup:
bound to loopback, rooted at notebooks/, with kernels that are this interpreter and import spark_etl from the
source tree, and a fresh token whose URL is printed once the server answers.
"""

from __future__ import annotations

import argparse
import functools
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType

from spark_etl.devtools.ports import HOST, free_port
from spark_etl.runtime import kernel_lifetime

SOURCE_DIR = Path(__file__).resolve().parents[2]
PROJECT_DIR = SOURCE_DIR.parent.parent
NOTEBOOKS_DIR = PROJECT_DIR / "notebooks"
DEFAULT_PORT = 8888
READY_SECONDS = 120.0


def parse_options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m spark_etl.devtools.lab",
        description=(
            f"Start JupyterLab on {NOTEBOOKS_DIR} at {HOST}, with this environment's Python as the kernel. "
            "Prints the URL (with a fresh token) once the server answers; Ctrl-C stops it and its kernels."
        ),
    )
    parser.add_argument(
        "--port",
        type=port_number,
        default=DEFAULT_PORT,
        help=f"port to listen on (default {DEFAULT_PORT}); 0, or a busy port, picks a free one",
    )
    return parser.parse_args(argv)


def port_number(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port number (0-65535)")
    return port


def port_is_free(port: int) -> bool:
    """Whether the server could bind the port now; SO_REUSEADDR as the server sets it, so TIME_WAIT is free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        if os.name != "nt":
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def choose_port(requested: int) -> int:
    if requested and port_is_free(requested):
        return requested
    port = free_port()
    if requested:
        print(f"port {requested} is busy; using {port}", file=sys.stderr)
    return port


def server_environment(token: str) -> dict[str, str]:
    """The server's environment, which its kernels inherit.

    The token goes in JUPYTER_TOKEN rather than on the command line, where any local user could read it. The
    source tree leads PYTHONPATH so kernels import this checkout's spark_etl even without the editable install,
    and this environment's kernelspecs win over same-named ones in the user's Jupyter folders.
    """
    environment = dict(os.environ)
    environment["JUPYTER_TOKEN"] = token
    others = [path for path in environment.get("PYTHONPATH", "").split(os.pathsep) if path and path != str(SOURCE_DIR)]
    environment["PYTHONPATH"] = os.pathsep.join([str(SOURCE_DIR), *others])
    environment.setdefault("JUPYTER_PREFER_ENV_PATH", "1")
    return environment


def server_command(port: int) -> list[str]:
    """jupyterlab as a module of this interpreter, so the 'python3' kernel resolves to it too.

    port_retries=0 makes a port taken in the meantime an error instead of a silent move away from the printed
    URL; answer_yes makes one Ctrl-C stop the server without a confirmation prompt.
    """
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.ip={HOST}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={NOTEBOOKS_DIR}",
        "--ServerApp.open_browser=False",
        "--ServerApp.answer_yes=True",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # containers often run as root; Jupyter refuses that by default, and the server is loopback-only
        command.append("--ServerApp.allow_root=True")
    return command


def answers(port: int, token: str) -> bool:
    request = urllib.request.Request(f"http://{HOST}:{port}/api/status", headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            status: int = response.status
    except (urllib.error.URLError, OSError):
        return False
    return status == 200


def wait_until_serving(process: subprocess.Popen[bytes], port: int, token: str) -> bool:
    """Poll the server until it answers with the token, it exits, or READY_SECONDS pass."""
    deadline = time.monotonic() + READY_SECONDS
    while process.poll() is None and time.monotonic() < deadline:
        if answers(port, token):
            return True
        time.sleep(0.25)
    return False


def exit_status(returncode: int) -> int:
    """A child killed by signal N reports -N; the shell's convention for that is 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def main(argv: list[str] | None = None) -> int:
    """Run JupyterLab in the foreground until Ctrl-C (or SIGTERM), then return its exit status."""
    options = parse_options(argv)
    port = choose_port(options.port)
    token = secrets.token_hex(24)
    url = f"http://{HOST}:{port}/lab?token={token}"
    # The server runs in a process group of its own, so a stop signal (Ctrl-C in the terminal, a SIGTERM to our
    # group) reaches us only, and we pass it on once, as SIGTERM: the server shuts its kernels down and exits. In
    # our group it got the group's signal and then ours, and one server died of the second (status 143).
    # Nothing outlives us: the server is sent SIGTERM when we die, however we die (kernel_lifetime).
    process = subprocess.Popen(
        server_command(port),
        env=server_environment(token),
        process_group=0,
        preexec_fn=functools.partial(kernel_lifetime.die_with_parent, os.getpid(), signal.SIGTERM),
    )
    stopping: list[int] = []  # the stop signal passed on, once

    def stop_server(signum: int, frame: FrameType | None) -> None:
        if process.poll() is None and not stopping:
            stopping.append(signum)
            process.send_signal(signal.SIGTERM)

    stop_signals = [signal.SIGINT, signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])]
    previous = {signum: signal.signal(signum, stop_server) for signum in stop_signals}
    try:
        if wait_until_serving(process, port, token):
            print(f"\nJupyterLab on {NOTEBOOKS_DIR} (Ctrl-C stops it):\n    {url}\n", file=sys.stderr, flush=True)
        elif process.poll() is None:
            print(f"\nJupyterLab is not answering yet; it will be at:\n    {url}\n", file=sys.stderr, flush=True)
        returncode = process.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if process.poll() is None:  # only on an error of our own: never leave the server behind
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    if returncode:
        print(f"JupyterLab exited with status {exit_status(returncode)}", file=sys.stderr)
    return exit_status(returncode)


if __name__ == "__main__":
    raise SystemExit(main())
