"""A real PostgreSQL server on 127.0.0.1 for tests, started from Debian's postgresql-15 (or newer).

initdb refuses to run as root: when the tests run as root, the server runs as the `postgres`
user in a temporary folder that user owns. `database()` makes a fresh database per test.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid

from tests.support import free_port


def pg_bin() -> str | None:
    """The newest installed PostgreSQL's bin folder (apt-get install -y postgresql)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    return os.path.dirname(found[-1]) if found else shutil.which("pg_ctl") and os.path.dirname(shutil.which("pg_ctl"))


class PostgresServer:
    def __init__(self) -> None:
        self.bin = pg_bin()
        if self.bin is None:
            raise RuntimeError("no PostgreSQL server here: apt-get install -y postgresql")
        self.root = tempfile.mkdtemp(prefix="pgtest-")
        self.data = os.path.join(self.root, "data")
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0

    def run(self, command: str) -> None:
        argv = ["su", "postgres", "-s", "/bin/sh", "-c", command] if self.as_postgres else ["/bin/sh", "-c", command]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{command}: {done.stdout}{done.stderr}")

    def __enter__(self) -> PostgresServer:
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        b, d = self.bin, self.data
        self.run(f"{b}/initdb -D {d} -A trust -U test --no-sync -E UTF8 >/dev/null")
        # fsync off: a test server needs no durability, and the disk is shared with other jobs
        options = f"-k {d} -h 127.0.0.1 -p {self.port} -c fsync=off -c max_connections=50"
        self.run(f"{b}/pg_ctl -D {d} -o '{options}' -l {d}/log -w -t 60 start >/dev/null")
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.run(f"{self.bin}/pg_ctl -D {self.data} -m fast -w stop >/dev/null")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://test@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        """A new empty database; returns its URL."""
        import sqlalchemy as sa

        name = f"t_{uuid.uuid4().hex[:12]}"
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f"CREATE DATABASE {name}")
        finally:
            engine.dispose()
        return self.url(name)
