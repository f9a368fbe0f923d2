"""A throwaway PostgreSQL server for the JDBC tests and the JDBC benchmark: initdb into a temporary folder, start
on a free port on 127.0.0.1 with password authentication, stop and delete it at the end. A real server, because
snapshots, locks and MVCC visibility are what the tests check and no mock has them."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
SUPERUSER = "postgres"
# The test server's own password: it exists only for the life of the temporary server.
SUPERUSER_PASSWORD = "pg-test-secret-7f3a9c"

# The production schema: typed as the issue describes (the line items have no key).
TYPED_TABLES = {
    "accounts": "account_id bigint primary key, company_name text, company_address text, contact_person text, "
    "contact_phone text, gender text, joining_date date",
    "skus": "item_id text primary key, item_name text, item_description text, item_cost_price numeric(12,2), "
    "item_retail_price numeric(12,2)",
    "invoices": "invoice_id bigint primary key, account_id bigint, date_issued date, payment_dates date",
    "invoice_line_items": "invoice_id bigint, item_id text, quantity int",
}


def binaries_missing() -> str | None:
    """Why the server cannot be started here, or None when it can."""
    for name in ("initdb", "pg_ctl", "psql"):
        if not (PG_BIN / name).exists():
            return f"PostgreSQL binaries not found in {PG_BIN} (apt-get install postgresql)"
    return None


def _as_server_user(command: list[str]) -> list[str]:
    """initdb refuses to run as root: run the server's commands as the postgres user then."""
    if os.geteuid() == 0:
        return ["runuser", "-u", SUPERUSER, "--", *command]
    return command


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresServer:
    base_dir: Path
    port: int

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    def jdbc_url(self, database: str = "postgres") -> str:
        return f"jdbc:postgresql://127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres", stdin: str | None = None) -> str:
        """Run SQL through psql over TCP (as a client would), stopping at the first error; returns the rows as
        unaligned text, one line per row, fields separated by |."""
        environment = {**os.environ, "PGPASSWORD": SUPERUSER_PASSWORD, "PGCONNECT_TIMEOUT": "10"}
        result = subprocess.run(
            [
                str(PG_BIN / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-d",
                database,
                "-c",
                sql,
            ],
            input=stdin,
            env=environment,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return result.stdout

    def stop(self) -> None:
        subprocess.run(
            _as_server_user([str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"]),
            capture_output=True,
            timeout=120,
            check=False,
        )
        shutil.rmtree(self.base_dir, ignore_errors=True)


def start_server() -> PostgresServer:
    """initdb and start; durability settings off, as the data lives only as long as the tests."""
    base_dir = Path(tempfile.mkdtemp(prefix="spark_etl_pg_"))
    password_file = base_dir / "password"
    password_file.write_text(SUPERUSER_PASSWORD + "\n", encoding="utf-8")
    if os.geteuid() == 0:
        shutil.chown(base_dir, SUPERUSER, SUPERUSER)
        shutil.chown(password_file, SUPERUSER, SUPERUSER)
    server = PostgresServer(base_dir, free_port())
    subprocess.run(
        _as_server_user(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(server.data_dir),
                "-U",
                SUPERUSER,
                "--auth=scram-sha-256",
                f"--pwfile={password_file}",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ]
        ),
        capture_output=True,
        timeout=300,
        check=True,
    )
    options = (
        f"-p {server.port} -c listen_addresses=127.0.0.1 -k {base_dir} -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=60"
    )
    started = subprocess.run(
        _as_server_user(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(server.data_dir),
                "-o",
                options,
                "-l",
                str(base_dir / "server.log"),
                "-w",
                "-t",
                "120",
                "start",
            ]
        ),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if started.returncode != 0:
        log = (base_dir / "server.log").read_text(encoding="utf-8", errors="replace")
        shutil.rmtree(base_dir, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {started.stderr.strip()} {log[-2000:]}")
    return server
