"""Shared test fixtures: free ports, waiting on conditions, and the real Java ZooKeeper 3.8 server.

The Java server is Debian's `zookeeper` package (3.8.0), run as `QuorumPeerMain` in the foreground with
a log4j console layout, on 127.0.0.1 and free ports, from a temporary data directory. It is stopped by
the PID we started, never by name.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
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


def free_port() -> int:
    "A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it)."
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    "`n` different free ports (`free_port` may hand out the same port twice in a row)."
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


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


class JavaZooKeeper:
    "One real Java ZooKeeper 3.8 server process (standalone, or a peer given server.N lines)."

    def __init__(self, workdir: Path, config: dict[str, object], myid: int | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
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
        (self.workdir / "log4j.properties").write_text(JAVA_LOG4J)
        self.log_path = self.workdir / "server.log"
        self.proc: subprocess.Popen | None = None

    def start(self, wait: bool = True, timeout: float = 30.0) -> "JavaZooKeeper":
        cmd = ["java", "-Xmx256m", f"-Dlog4j.configuration=file:{self.workdir / 'log4j.properties'}",
               "-Dzookeeper.jmx.log4j.disable=true", "-cp", JAVA_CLASSPATH,
               "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(self.cfg_path)]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.workdir)
        if wait:
            self.wait_serving(timeout)
        return self

    def wait_serving(self, timeout: float = 30.0) -> None:
        def serving():
            if self.proc.poll() is not None:
                raise RuntimeError(f"Java ZooKeeper exited with {self.proc.returncode}:\n{self.logs()[-3000:]}")
            return "Mode:" in four_letter_word(self.client_port, "srvr")
        wait_for(serving, timeout, 0.1, "the Java ZooKeeper server to serve")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


@pytest.fixture
def java_zk(tmp_path):
    "Factory: `java_zk(config=None, name='java', myid=None)` starts a Java ZooKeeper; all are stopped after the test."
    if not java_available():
        pytest.skip("Java ZooKeeper (Debian package zookeeper) is not installed; `make test` installs it")
    started: list[JavaZooKeeper] = []

    def start(config: dict | None = None, name: str = "java", myid: int | None = None, wait: bool = True):
        server = JavaZooKeeper(tmp_path / name, dict(config or {}), myid)
        started.append(server)
        return server.start(wait=wait)

    yield start
    for server in started:
        server.stop()
