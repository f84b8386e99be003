"""A real PostgreSQL server from Debian's packages, started on loopback for the tests.

initdb refuses to run as root, so when the tests run as root the server runs as the `postgres`
system user (created by Debian's postgresql package; scripts/test.sh installs it when missing).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from pathlib import Path


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PostgresServer:
    def __init__(self, root: Path | None = None):
        import tempfile

        from rag.local_llm import free_port

        # a directory the postgres user can reach (pytest's tmp dirs are private to root)
        root = root or Path(tempfile.mkdtemp(prefix="ragkb-pg-"))
        os.chmod(root, 0o755)
        self.root, self.port = root, free_port()
        self.data, self.sock, self.log = root / "pgdata", root / "sock", root / "postgres.log"

    def _run(self, args: list[str]) -> None:
        cmd = args
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *args]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> str:
        bin_dir = pg_bin()
        assert bin_dir is not None, "PostgreSQL server binaries missing: apt-get install postgresql"
        self.root.mkdir(parents=True, exist_ok=True)
        self.sock.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.sock, "postgres")
        self._run([str(bin_dir / "initdb"), "-D", str(self.data), "-U", "ragkb", "--auth=trust", "-E", "UTF8",
                   "--locale=C.UTF-8"])
        self._run([str(bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start",
                   "-o", f"-h 127.0.0.1 -p {self.port} -k {self.sock} -c fsync=off -c max_connections=200"])
        return self.url("postgres")

    def url(self, db: str) -> str:
        return f"postgresql+psycopg://ragkb@127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        bin_dir = pg_bin()
        try:
            self._run([str(bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"])
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


def fresh_database(admin_url: str) -> str:
    """CREATE DATABASE with a new name on the server of `admin_url`; returns its URL."""
    import uuid

    from sqlalchemy import create_engine, text

    name = "t_" + uuid.uuid4().hex[:16]
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    for _ in range(50):
        try:
            with engine.connect() as c:
                c.execute(text(f'CREATE DATABASE "{name}"'))
            break
        except Exception:  # server still starting
            time.sleep(0.2)
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + name
