"""Shared test fixtures: free ports, waiting on conditions, and real server processes.

`ServerProcess` is one ZooKeeper server as a process on 127.0.0.1 and free ports, from its own zoo.cfg and
directory: zkref (`python -m zkref zoo.cfg`) or the real Java 3.8 server (Debian's `zookeeper` package, run as
`QuorumPeerMain` in the foreground with a log4j console layout). `Ensemble` is N of them with server.N lines
for each other; `zkref_zk` and `java_zk` are fixtures that start standalone ones. Every process is stopped by
the PID we started, never by name.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

JAVA_CLASSPATH = ":".join([
    "/usr/share/java/zookeeper.jar",        # its manifest names the rest of ZooKeeper's dependencies
    "/usr/share/java/slf4j-log4j12.jar",    # a logging binding, so the server's log lines are visible
    "/usr/share/java/log4j-1.2.jar",
])
JAVA_LOG4J = """log4j.rootLogger=INFO, CONSOLE
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout
log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n
"""


_TAKEN_PORTS: set[int] = set()   # every port handed out in this test session, never handed out again


def _split_ports_between_workers() -> None:
    """Under pytest-xdist (`pytest -n 2`) each worker is a process with its own `_TAKEN_PORTS`, so two
    of them could hand out the same port: give each its own slice of 20000-32767 (`ZKREF_TEST_PORTS`, read by
    `zkref.testing.free_port`)."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not worker or not count:
        return
    index, size = int(worker.removeprefix("gw")), (32768 - 20000) // int(count)
    os.environ["ZKREF_TEST_PORTS"] = f"{20000 + index * size}-{20000 + (index + 1) * size - 1}"


_split_ports_between_workers()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago and that this session has not handed out before.

    It comes from `zkref.testing.free_port`: below the kernel's ephemeral range, so no outgoing connection can take
    it before the server binds it, and never the same port twice (the kernel's `bind(0)` can repeat itself). That
    function also keeps the ports it handed out lately to anyone in this process, a `MiniCluster` included, so a
    port drawn here is none of a cluster's own."""
    from zkref.testing import free_port as _free_port
    return _free_port(_TAKEN_PORTS)


def wait_for(condition, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    "Poll `condition()` until it returns a truthy value, or fail after `timeout` seconds."
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


async def until(condition, timeout: float = 10.0, what: str = "condition"):
    "The asyncio twin of `wait_for`: poll `condition()` until truthy, or fail after `timeout` seconds."
    import asyncio
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (value := condition()):
        if loop.time() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)
    return value


def free_ports(n: int) -> list[int]:
    "`n` different free ports (see `free_port`)."
    return [free_port() for _ in range(n)]


def run_on_cluster(scenario, *args, **kwargs):
    "Run `scenario(cluster)` on a new `zkref.testing.MiniCluster(*args, **kwargs)`; always close the cluster."
    import asyncio
    from zkref.testing import MiniCluster

    async def main():
        cluster = MiniCluster(*args, **kwargs)
        try:
            return await scenario(cluster)
        finally:
            await cluster.close()
    return asyncio.run(main())


def fle_winner(c, sids) -> int:
    "The server FastLeaderElection must elect among `sids`, both synced in the same epoch: the highest (last zxid, sid), from each one's latest `New election` line."
    import re

    def vote(sid):
        zxids = re.findall(r"New election\. My id = \d+, proposed zxid=0x(\w+)", c.logs(sid))
        return int(zxids[-1], 16), sid
    return max(sids, key=vote)


def four_letter_word(port: int, word: str, host: str = "127.0.0.1", timeout: float = 2.0) -> str:
    "Send a four-letter word to a ZooKeeper client port and return the whole answer ('' on failure)."
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(word.encode())
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks).decode(errors="replace")
    except OSError:
        return ""


def java_available() -> bool:
    return shutil.which("java") is not None and Path("/usr/share/java/zookeeper.jar").exists()


ROOT = Path(__file__).resolve().parent.parent   # the checkout: `python -m zkref` imports zkref from here
SERVLET_API_JAR = "/usr/share/java/servlet-api.jar"   # Java's AdminServer (Jetty) needs it; not in zookeeper.jar


SERVERS_OF_THIS_TEST: list["ServerProcess"] = []   # every ServerProcess the running test (or its fixtures) started
LOG_LINES_ON_FAILURE = 80


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test's report ends with the last lines of each server process it started, Java's and zkref's: a
    flaky ensemble test's logs are otherwise gone with its temporary directory before anyone reads them."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for s in SERVERS_OF_THIS_TEST:
            tail = s.logs().splitlines()[-LOG_LINES_ON_FAILURE:]
            report.sections.append((f"{s.kind} server log {s.log_path} (last {len(tail)} lines)", "\n".join(tail)))
    if call.when == "teardown":         # a module's fixture servers live on: keep those still running
        SERVERS_OF_THIS_TEST[:] = [s for s in SERVERS_OF_THIS_TEST if s.proc is not None and s.proc.poll() is None]


class ServerProcess:
    """One ZooKeeper server as a real process on 127.0.0.1, from a zoo.cfg in `workdir`: kind `zkref` runs
    `python -m zkref zoo.cfg`, kind `java` runs Java 3.8's QuorumPeerMain from Debian's jar (log4j console layout).

    `config` is zoo.cfg (defaults: a free client port on 127.0.0.1, `workdir/data`, tickTime 2000, and the
    AdminServer off, as Java's default port 8080 is never assumed free); `myid` writes dataDir/myid for a peer.
    `jvm_flags` (e.g. `-Dreadonlymode.enabled=true`) go on java's command line, and to zkref through
    SERVER_JVMFLAGS as zkServer.sh passes them; `env` is added last (zkref inherits no JVMFLAGS or
    SERVER_JVMFLAGS from the test's own environment). `classpath` adds jars to java's class path;
    `python_args` replaces `-m zkref` before the zoo.cfg argument (a launcher script and its arguments).
    Everything the server prints goes to `workdir/server.log` (`logs()`). Stopped by the PID we started.
    """
    kind = "zkref"

    def __init__(self, workdir: Path, config: dict | None = None, myid: int | None = None, *, kind: str | None = None,
                 jvm_flags=(), classpath=(), env: dict | None = None, python_args=("-m", "zkref")):
        self.kind = kind or self.kind
        if self.kind not in ("zkref", "java"):
            raise ValueError(f"kind must be zkref or java, not {self.kind!r}")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = dict(config or {})
        self.client_port = int(config.setdefault("clientPort", free_port()))
        config.setdefault("clientPortAddress", "127.0.0.1")
        config.setdefault("dataDir", str(self.workdir / "data"))
        config.setdefault("tickTime", 2000)
        config.setdefault("admin.enableServer", "false")
        self.config = config
        self.data_dir = Path(str(config["dataDir"]))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if myid is not None:
            (self.data_dir / "myid").write_text(f"{myid}\n")
        self.cfg_path = self.workdir / "zoo.cfg"
        self.cfg_path.write_text("".join(f"{k}={v}\n" for k, v in config.items()))
        self.jvm_flags, self.classpath, self.python_args = list(jvm_flags), list(classpath), list(python_args)
        self.env = dict(env or {})
        self.log_path = self.workdir / "server.log"
        self.proc: subprocess.Popen | None = None

    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    def command(self) -> tuple[list[str], dict[str, str]]:
        "The argv and environment this server is started with."
        if self.kind == "java":
            (self.workdir / "log4j.properties").write_text(JAVA_LOG4J)
            argv = ["java", "-Xmx256m", f"-Dlog4j.configuration=file:{self.workdir / 'log4j.properties'}",
                    "-Dzookeeper.jmx.log4j.disable=true", *self.jvm_flags,
                    "-cp", ":".join([JAVA_CLASSPATH, *self.classpath]),
                    "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(self.cfg_path)]
            return argv, dict(os.environ, **self.env)
        env = {k: v for k, v in os.environ.items() if k not in ("JVMFLAGS", "SERVER_JVMFLAGS")}
        env["PYTHONPATH"] = str(ROOT)
        if self.jvm_flags:
            env["SERVER_JVMFLAGS"] = " ".join(self.jvm_flags)
        return [sys.executable, *self.python_args, str(self.cfg_path)], dict(env, **self.env)

    def start(self, wait: bool = True, timeout: float = 30.0) -> "ServerProcess":
        argv, env = self.command()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir, env=env)
        if self not in SERVERS_OF_THIS_TEST:
            SERVERS_OF_THIS_TEST.append(self)
        if wait:
            self.wait_serving(timeout)
        return self

    def wait_serving(self, timeout: float = 30.0) -> None:
        "Wait until `srvr` answers with a Mode (fail at once if the process exits)."
        name = "Java ZooKeeper" if self.kind == "java" else "zkref"

        def serving():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {self.proc.returncode}:\n{self.logs()[-3000:]}")
            return "Mode:" in four_letter_word(self.client_port, "srvr")
        wait_for(serving, timeout, 0.05, f"the {name} server to serve")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        "Send `sig` (SIGKILL from `kill`), wait, SIGKILL if it does not exit in `timeout`; the exit code."
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)     # a test may have SIGSTOPped it: never leave a stopped process
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def kill(self) -> int | None:
        return self.stop(signal.SIGKILL)


class ZkrefServer(ServerProcess):
    "A `python -m zkref zoo.cfg` process."
    kind = "zkref"


class JavaZooKeeper(ServerProcess):
    "A real Java ZooKeeper 3.8 server process (standalone, or a peer given server.N lines)."
    kind = "java"


class Ensemble:
    """Servers of one ensemble on 127.0.0.1 and free ports (default three), each `zkref` or `java`: a
    `ServerProcess` in `root/s<i>` with server.N lines for all, tickTime `tick_ms`, initLimit 10, syncLimit 5,
    every four-letter word and the AdminServer off; then `server_config(i)` (a subclass's per-server lines),
    then `extra`. `jvm_flags` and `classpath` go to every server (see ServerProcess); `zkref_args(i)` is the
    python arguments before zoo.cfg of a zkref server (default `-m zkref`).
    """

    def __init__(self, root: Path, kinds=("zkref", "zkref", "zkref"), *, tick_ms: int = 500, jvm_flags=(),
                 classpath=(), **extra):
        self.root = Path(root)
        self.kinds = {i + 1: k for i, k in enumerate(kinds)}
        ports = free_ports(3 * len(self.kinds))
        self.ports = {i: tuple(ports[3 * (i - 1):3 * i]) for i in self.kinds}     # (quorum, election, client)
        servers = {f"server.{j}": f"127.0.0.1:{q}:{e}" for j, (q, e, _) in self.ports.items()}
        self.servers: dict[int, ServerProcess] = {}
        for i, kind in self.kinds.items():
            d = self.root / f"s{i}"
            cfg = {"tickTime": tick_ms, "initLimit": 10, "syncLimit": 5, "dataDir": d / "data",
                   "clientPort": self.client(i), "clientPortAddress": "127.0.0.1", "4lw.commands.whitelist": "*",
                   "admin.enableServer": "false", **self.server_config(i), **extra, **servers}
            self.servers[i] = ServerProcess(d, cfg, myid=i, kind=kind, jvm_flags=jvm_flags, classpath=classpath,
                                            python_args=self.zkref_args(i))
        self.procs: dict[int, ServerProcess] = {}     # the running ones

    def server_config(self, i: int) -> dict:
        return {}

    def zkref_args(self, i: int) -> list[str]:
        return ["-m", "zkref"]

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(self.kinds)

    def client(self, i: int) -> int:
        return self.ports[i][2]

    def quorum(self, i: int) -> int:
        return self.ports[i][0]

    def hosts(self, ids=None) -> str:
        return ",".join(f"127.0.0.1:{self.client(i)}" for i in (ids or self.kinds))

    def log(self, i: int) -> str:
        return self.servers[i].logs()

    def start(self, *ids: int) -> None:
        "Start servers `ids` (default all) without waiting: a peer serves only once a quorum formed."
        for i in ids or self.kinds:
            self.procs[i] = self.servers[i].start(wait=False)

    def mode(self, i: int) -> str | None:
        out = four_letter_word(self.client(i), "srvr")
        return out.split("Mode: ")[1].split()[0] if "Mode: " in out else None

    def modes(self, ids=None) -> list[str]:
        return sorted(str(self.mode(i)) for i in (ids or self.procs))

    def wait_formed(self, ids=None, timeout: float = 90) -> int:
        "Wait for one leader and the rest following among `ids` (default: the running servers); the leader's id."
        ids = list(ids or self.procs)
        want = sorted(["leader"] + ["follower"] * (len(ids) - 1))
        wait_for(lambda: self.modes(ids) == want, timeout, 0.2,
                 what=f"one leader among {ids} (modes now {dict((i, self.mode(i)) for i in ids)})")
        return next(i for i in ids if self.mode(i) == "leader")

    def stop(self, i: int, sig: int = signal.SIGTERM) -> None:
        self.procs.pop(i).stop(sig)

    def stop_all(self) -> None:
        for i in list(self.procs):
            self.stop(i)


class WithObserver(Ensemble):
    "Servers 1-3 participants, server 4 an observer (`peerType=observer`, `server.4=...:observer` everywhere)."

    def __init__(self, root, kinds, **kw):
        super().__init__(root, kinds, **kw)
        for i, s in self.servers.items():
            s.config["server.4"] = f"{s.config['server.4']}:observer"
            if i == 4:
                s.config["peerType"] = "observer"
            s.cfg_path.write_text("".join(f"{k}={v}\n" for k, v in s.config.items()))


def started_servers(tmp_path: Path, cls: type[ServerProcess]):
    "The body of the `java_zk` / `zkref_zk` fixtures: yields the factory, then stops every server it started."
    started: list[ServerProcess] = []

    def start(config: dict | None = None, name: str = cls.kind, myid: int | None = None, wait: bool = True, **options):
        server = cls(tmp_path / name, config, myid, **options)
        started.append(server)
        return server.start(wait=wait)

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def java_zk(tmp_path):
    """Factory: `java_zk(config=None, name='java', myid=None, wait=True, **options)` starts a Java ZooKeeper (a
    `JavaZooKeeper`; options such as `classpath` go to it); all are stopped after the test."""
    if not java_available():
        pytest.skip("Java ZooKeeper (Debian package zookeeper) is not installed; `make test` installs it")
    yield from started_servers(tmp_path, JavaZooKeeper)


@pytest.fixture
def zkref_zk(tmp_path):
    """Factory: `zkref_zk(config=None, name='zkref', myid=None, wait=True, **options)` starts `python -m zkref`
    (a `ZkrefServer`); all are stopped after the test."""
    yield from started_servers(tmp_path, ZkrefServer)
