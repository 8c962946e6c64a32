"""A real PostgreSQL server for the tests, started from the installed binaries in a temporary folder.

``postgres_server`` (one per test session) runs ``initdb`` and ``pg_ctl`` from
``/usr/lib/postgresql/*/bin`` (Debian's ``postgresql`` package; the newest
version there) or from ``PATH``, listening on 127.0.0.1 on a free port, with
its socket in the temporary folder, and stops it at the end of the session,
also after a failure (and at interpreter exit, should the session be killed
before that). When the binaries are missing the tests that use it fail, saying
how to install them: they are never skipped.

``initdb`` refuses to run as root, so as root the server runs as the
``postgres`` user (``runuser``), its folder owned by that user.

``postgres_url`` (one per test) is a fresh database owned by a role that logs
in with a password over TCP (scram-sha-256), so a test sees the password
really used; ``stop()`` and ``start()`` take the server down and up again in
the middle of a test, on the same port.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROLE = "corpusbot_test"
PASSWORD = "Pw-9f8e7d6c5b4a-secret"  # long and unusual, so that finding it anywhere in a log means it leaked
SERVER_USER = "postgres"  # who runs the server when the tests run as root
INSTALL_HINT = (
    "The tests of the PostgreSQL state store need PostgreSQL's server binaries (initdb, pg_ctl, postgres), "
    "looked for in /usr/lib/postgresql/*/bin and on PATH. Install them: `apt-get update && apt-get install -y "
    "postgresql` (Debian/Ubuntu; the service it starts is not used), or your system's postgresql server package."
)
START_TIMEOUT_SECONDS = 60


def find_binaries() -> Path:
    """The folder holding initdb and pg_ctl: the newest /usr/lib/postgresql/N/bin, else the one on PATH."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda path: [int(part) if part.isdigit() else 0 for part in Path(path).parent.name.split(".")],
    )
    for folder in reversed(candidates):
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).parent == Path(pg_ctl).parent:
        return Path(initdb).parent
    raise FileNotFoundError(INSTALL_HINT)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """One PostgreSQL server in a folder of its own: ``start()``, ``stop()``, ``url()``, ``create_database()``."""

    def __init__(self, root: Path, binaries: Path, host: str = "127.0.0.1") -> None:
        self.root = root
        self.bin = binaries
        self.data = root / "data"
        self.sockets = root / "sockets"
        self.log = root / "server.log"
        self.host = host  # where it listens and what its URLs name (a netns gateway reaches hosts in namespaces)
        self.port = free_port(host)
        self._as_root = os.geteuid() == 0
        self._names = itertools.count(1)
        self.running = False

    # -- the server --------------------------------------------------------------------------------------------

    def init(self) -> None:
        self.sockets.mkdir()
        if self._as_root:
            try:
                user = pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise FileNotFoundError(
                    f"The tests run as root and initdb refuses root, but there is no {SERVER_USER!r} user to run it "
                    f"as. {INSTALL_HINT}"
                ) from None
            for path in (self.root, self.sockets):
                os.chown(path, user.pw_uid, user.pw_gid)
        self.root.chmod(0o700)
        self._run(
            self.bin / "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        # The superuser over the socket only; everyone else over TCP with a password (from loopback, and from the
        # subnets of the address listened on: ``samenet``).
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all samenet scram-sha-256\n",
            encoding="utf-8",
        )

    def start(self) -> None:
        """Start the server (again) on the same port; returns once it accepts connections."""
        options = (
            f"-h {self.host} -p {self.port} -k {self.sockets} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200 -c shared_buffers=32MB"
        )
        self._run(
            self.bin / "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            str(START_TIMEOUT_SECONDS),
            "start",
        )
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` ends every session (as a restart or failover does); ``immediate`` kills it."""
        if not self.running:
            return
        self._run(self.bin / "pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
        self.running = False

    def cleanup(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    # -- databases ---------------------------------------------------------------------------------------------

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` as the superuser over the socket; its output."""
        return self._run(
            self.bin / "psql",
            "-h",
            str(self.sockets),
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-qAt",
            "-c",
            sql,
        )

    def create_role(self) -> None:
        self.psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")

    def create_database(self) -> str:
        name = f"corpusbot_test_{next(self._names)}"
        self.psql(f"CREATE DATABASE {name} OWNER {ROLE}")
        return name

    def drop_database(self, name: str) -> None:
        if self.running:
            self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def url(self, database: str, password: str = PASSWORD) -> str:
        return f"postgresql://{ROLE}:{password}@{self.host}:{self.port}/{database}"

    # -- running its programs ----------------------------------------------------------------------------------

    def _run(self, program: Path, *args: str) -> str:
        command = [str(program), *args]
        if self._as_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, cwd=self.root, check=False, timeout=120)
        if result.returncode != 0:
            log = self.log.read_text(encoding="utf-8", errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}\n{log}"
            )
        return result.stdout


@contextlib.contextmanager
def running_postgres(host: str = "127.0.0.1") -> Iterator[PostgresServer]:
    """A PostgreSQL server of its own listening on ``host`` (e.g. a netns gateway, while that network is up),
    its role made; stopped and removed on leaving. Fails the test (never skips) without the binaries."""
    try:
        binaries = find_binaries()
    except FileNotFoundError as error:
        pytest.fail(str(error), pytrace=False)
    root = Path(tempfile.mkdtemp(prefix="corpusbot-pg-"))
    server = PostgresServer(root, binaries, host)
    atexit.register(server.cleanup)
    try:
        server.init()
        server.start()
        server.create_role()
        yield server
    finally:
        server.cleanup()
        atexit.unregister(server.cleanup)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session (fails, never skips, when PostgreSQL is not installed)."""
    try:
        binaries = find_binaries()
    except FileNotFoundError as error:
        pytest.fail(str(error), pytrace=False)
    root = Path(tempfile.mkdtemp(prefix="corpusbot-pg-"))
    server = PostgresServer(root, binaries)
    atexit.register(server.cleanup)  # should the session end without running the finalizer
    try:
        server.init()
        server.start()
        server.create_role()
    except FileNotFoundError as error:
        server.cleanup()
        pytest.fail(str(error), pytrace=False)
    except BaseException:
        server.cleanup()
        raise
    try:
        yield server
    finally:
        server.cleanup()
        atexit.unregister(server.cleanup)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A URL (with the password) of a fresh, empty database on the running server; the server is up again after."""
    if not postgres_server.running:
        postgres_server.start()  # a test before this one stopped it and failed before starting it again
    name = postgres_server.create_database()
    try:
        yield postgres_server.url(name)
    finally:
        if not postgres_server.running:
            postgres_server.start()
        postgres_server.drop_database(name)
