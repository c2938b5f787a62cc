"""Log lines compared with Java 3.8's, line for line: which thread logs them, and in which order.

Each test runs the same scenario on Debian's Java 3.8.0 and on zkref (real processes, loopback, free ports) and
compares (thread, class, message) of the lines concerned, in log order, with the ports of the run replaced by
their role (`<election:1>`, `<port>` for a dialler's ephemeral port) and no timestamps or line numbers.
"""
from __future__ import annotations

import re
import socket

import pytest

from conftest import Ensemble, ServerProcess, free_ports, java_available, wait_for

pytestmark = pytest.mark.skipif(not java_available(), reason="needs Debian's Java ZooKeeper 3.8")

# `2026-01-01 00:00:00,000 [myid:1] - INFO  [thread:Class@123] - message`; a thread name may hold ':' and ']'
LINE = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ \[myid:\d*\] - (\w+)\s+\[(.*):([\w$]+)@\d+\] - (.*)$")


def entries(log: str) -> list[tuple[str, str, str, str]]:
    "(level, thread, class, message) of each log line, in log order (continuation lines, e.g. stack traces, left out)."
    return [m.groups() for m in map(LINE.match, log.splitlines()) if m]


def named_ports(text: str, ports: dict[int, str]) -> str:
    "`text` with each known port replaced by its name and any other port of 127.0.0.1 by `<port>`."
    return re.sub(r"127\.0\.0\.1:(\d+)", lambda m: f"127.0.0.1:{ports.get(int(m[1]), '<port>')}", text)


# ---------------------------------------------------------------------------------------------------------
# 1. The election listener's threads

LISTENER_HANDLER = "QuorumCnxManager$Listener$ListenerHandler"


def listener_lines(log: str, ports: dict[int, str]) -> list[tuple[str, str, str, str]]:
    "The lines of the listener's threads (`QuorumPeerListener`, `ListenerHandler-…`), ports named, in log order."
    return [(level, named_ports(t, ports), c, named_ports(m, ports)) for level, t, c, m in entries(log)
            if t == "QuorumPeerListener" or t.startswith("ListenerHandler-")]


@pytest.fixture(scope="module")
def formed_ensembles(tmp_path_factory):
    "A 3-server Java ensemble and a zkref one, each formed and then stopped: {kind: Ensemble}."
    root = tmp_path_factory.mktemp("formed")
    found = {}
    for kind in ("java", "zkref"):
        e = Ensemble(root / kind, (kind,) * 3)
        try:
            e.start()
            e.wait_formed()
        finally:
            e.stop_all()
        found[kind] = e
    return found


def test_listener_handler_lines_come_from_the_handlers_thread(formed_ensembles):
    """Java's Listener starts one ListenerHandler per election address, which names its thread
    `"ListenerHandler-" + address` (`ListenerHandler-/127.0.0.1:3888`) and logs from it `<myid> is accepting
    connections now, my election bind port: /127.0.0.1:3888` and, for each peer that dials in, `Received
    connection request from /127.0.0.1:<its port>`. On every server of a formed ensemble, zkref logs the same
    lines (first the bind, then only connection requests, at least one on server 1, which every other peer
    dials) from the same thread, and none of the handler's lines from another thread.
    Reference: Java QuorumCnxManager.Listener.ListenerHandler.run, ListenerHandler.acceptConnections"""
    for i in (1, 2, 3):
        got = {}
        for kind, e in formed_ensembles.items():
            ports = {p: f"<election:{j}>" for j, (_, p, _) in e.ports.items()}
            lines = [l for l in listener_lines(e.log(i), ports) if l[2] == LISTENER_HANDLER]
            assert all(c == LISTENER_HANDLER for _, t, c, _ in entries(e.log(i)) if t.startswith("ListenerHandler-")
                       and c.startswith("QuorumCnxManager$Listener")), kind
            assert not [l for l in entries(e.log(i)) if l[2] == LISTENER_HANDLER and
                        not l[1].startswith("ListenerHandler-")], (kind, i)
            got[kind] = (lines[0], set(lines[1:]))
        thread = f"ListenerHandler-/127.0.0.1:<election:{i}>"
        assert got["java"][0] == ("INFO", thread, LISTENER_HANDLER,
                                  f"{i} is accepting connections now, my election bind port: /127.0.0.1:<election:{i}>")
        assert got["zkref"][0] == got["java"][0], (i, got)
        # Whether a peer dials this one first is a race (the lower sid's connection is dropped and dialled back),
        # but server 1, the lowest, is always dialled: each request line there, and only that one, on both
        request = {("INFO", thread, LISTENER_HANDLER, "Received connection request from /127.0.0.1:<port>")}
        for kind, (_, rest) in got.items():
            assert rest <= request and (rest or i != 1), (kind, i, rest)


def test_election_port_taken_lines_come_from_javas_threads(tmp_path):
    """When a server's election port is taken and `zookeeper.electionPortBindRetry=1` runs out, Java's handler
    thread `ListenerHandler-/127.0.0.1:<port>` logs `Exception while listening to address /127.0.0.1:<port>`
    and `Leaving listener thread for address 127.0.0.1:<port> after 1 errors. Use
    zookeeper.electionPortBindRetry property to increase retry count.`; then the Listener's own thread,
    `QuorumPeerListener`, logs `Leaving listener`, `As I'm leaving the listener thread, …` and runs the
    socketBindErrorHandler: `Exiting JVM with code 14`. zkref logs the same five lines from the same threads in
    the same order (verified on Debian's Java 3.8.0).
    Reference: Java QuorumCnxManager.Listener.run (socketBindErrorHandler), ListenerHandler.acceptConnections"""
    got = {}
    for kind in ("java", "zkref"):
        q1, e1, q2, e2, q3, e3 = free_ports(6)
        config = {"tickTime": 500, "initLimit": 10, "syncLimit": 5, "server.1": f"127.0.0.1:{q1}:{e1}",
                  "server.2": f"127.0.0.1:{q2}:{e2}", "server.3": f"127.0.0.1:{q3}:{e3}"}
        server = ServerProcess(tmp_path / kind, config, myid=1, kind=kind,
                               jvm_flags=["-Dzookeeper.electionPortBindRetry=1"])
        with socket.socket() as blocker:
            blocker.bind(("127.0.0.1", e1))
            blocker.listen()
            try:
                server.start(wait=False)
                wait_for(lambda: server.proc.poll() is not None, 60, 0.1, f"{kind} to exit")
            finally:
                code = server.stop()
        assert code == 14, server.logs()[-3000:]
        got[kind] = listener_lines(server.logs(), {e1: "<election:1>"})
    assert got["java"] == [
        ("ERROR", "ListenerHandler-/127.0.0.1:<election:1>", LISTENER_HANDLER,
         "Exception while listening to address /127.0.0.1:<election:1>"),
        ("ERROR", "ListenerHandler-/127.0.0.1:<election:1>", LISTENER_HANDLER,
         "Leaving listener thread for address 127.0.0.1:<election:1> after 1 errors. "
         "Use zookeeper.electionPortBindRetry property to increase retry count."),
        ("INFO", "QuorumPeerListener", "QuorumCnxManager$Listener", "Leaving listener"),
        ("ERROR", "QuorumPeerListener", "QuorumCnxManager$Listener", "As I'm leaving the listener thread, I won't be "
         "able to participate in leader election any longer: 127.0.0.1:<election:1>"),
        ("ERROR", "QuorumPeerListener", "ServiceUtils", "Exiting JVM with code 14")], got["java"]
    assert got["zkref"] == got["java"]


# ---------------------------------------------------------------------------------------------------------
# 2. A standalone server's shutdown

def standalone_stopped_by_its_sync_thread(workdir, kind: str) -> str:
    """Start a standalone server whose txn log cannot grow (`zookeeper.preAllocSize` past the file system's
    largest file: the first append fails with `File too large`), open a session (its createSession is that
    append), and wait for the process to end; its log."""
    from kazoo.client import KazooClient
    from kazoo.handlers.threading import KazooTimeoutError
    server = ServerProcess(workdir, kind=kind, jvm_flags=["-Dzookeeper.preAllocSize=1099511627776"])   # KB: 1 EiB
    server.start()
    try:
        zk = KazooClient(server.hosts, timeout=5, connection_retry={"max_tries": 0})
        try:
            zk.start(timeout=3)               # no answer: the server ends before the session is logged
        except KazooTimeoutError:
            pass
        finally:
            zk.stop(); zk.close()
        wait_for(lambda: server.proc.poll() is not None, 30, 0.1, f"{kind} to exit")
    finally:
        server.stop()
    return server.logs()


def test_standalone_shutdown_lines_after_its_sync_thread_dies(tmp_path):
    """A standalone server stops when a critical thread dies: SyncThread:0 fails to write its txn log
    (`Severe unrecoverable error, from thread : SyncThread:0`, `Thread SyncThread:0 exits, error code 1`, then
    its own `SyncRequestProcessor exited!`), the server's state turns ERROR, ZooKeeperServerMain's latch opens and
    `ZooKeeperServer.shutdown` logs, on main and in this order: `shutting down`, the RequestThrottler's `Shutting
    down`, `Draining request throttler queue` and `RequestThrottler shutdown. Dropped 0 requests` (its thread,
    joined), the session tracker's `Shutting down`, then the chain front to back: PrepRequestProcessor's
    `Shutting down`, SyncRequestProcessor's, FinalRequestProcessor's `shutdown of request processor complete`.
    zkref logs the same lines in the same order (threads Java does not wait for, Prep's `exited loop!` and the
    session tracker's, compared as a set). On SIGTERM Java 3.8.0's JVM exits without any of them (its
    divergences row), so this is the way a standalone Java server logs its shutdown.
    Reference: Java ZooKeeperCriticalThread.handleException, ZooKeeperServerMain.runFromConfig (shutdownLatch),
    ZooKeeperServer.shutdown(boolean), RequestThrottler.shutdown, PrepRequestProcessor.shutdown,
    SyncRequestProcessor.run and shutdown, FinalRequestProcessor.shutdown"""
    from test_role_shutdown_lines import ROLE_CLASSES, assert_same_role_end, split
    died = ("ZooKeeperServerListenerImpl", "Thread SyncThread:0 exits, error code 1")
    exited = ("SyncRequestProcessor", "SyncRequestProcessor exited!")
    final = ("FinalRequestProcessor", "shutdown of request processor complete")
    found = {}
    for kind in ("java", "zkref"):
        es = [(c, m) for _, _, c, m in entries(standalone_stopped_by_its_sync_thread(tmp_path / kind, kind))]
        assert died in es, (kind, es[-20:])
        lines = [e for e in es[es.index(died):] if e[0] in ROLE_CLASSES]
        # SyncThread:0 logs its last line as it dies; Java's main, woken by the ERROR state, may come first
        assert lines.count(exited) == 1 and lines.index(exited) < lines.index(final), (kind, lines)
        found[kind] = [e for e in lines if e != exited]
    ordered = split(found["java"])[0]
    assert ordered[:2] == [("ZooKeeperServer", "shutting down"), ("RequestThrottler", "Shutting down")], ordered
    assert ordered[-1] == final, ordered
    assert_same_role_end(found["java"], found["zkref"])


def test_standalone_exit_lines_after_its_sync_thread_dies(tmp_path):
    """After the shutdown, the process ends as Java's does on the standalone road: ZooKeeperServerMain.main (not
    QuorumPeerMain's, which never gets control back) logs `Exiting normally`, then ServiceUtils.SYSTEM_EXIT logs
    `Exiting JVM with code 0` at ERROR (whatever the code) and the process exits 0. Nothing else: Java's mains never
    call DatadirCleanupManager.shutdown (its daemon timer dies with the JVM), so no `Purge task not started.
    Ignoring shutdown!`.
    Reference: Java ZooKeeperServerMain.main, ServiceUtils.SYSTEM_EXIT, QuorumPeerMain.initializeAndRun"""
    tails = {}
    for kind in ("java", "zkref"):
        es = entries(standalone_stopped_by_its_sync_thread(tmp_path / kind, kind))
        last = max(i for i, e in enumerate(es) if e[3] == "shutdown of request processor complete")
        tails[kind] = [e for e in es[last + 1:] if e[1] == "main"]
    assert tails["java"] == [("INFO", "main", "ZooKeeperServerMain", "Exiting normally"),
                             ("ERROR", "main", "ServiceUtils", "Exiting JVM with code 0")], tails["java"]
    assert tails["zkref"] == tails["java"]


def test_slow_fsync_warning_names_the_sync_thread(tmp_path):
    """An fsync of the txn log slower than `zookeeper.fsync.warningthresholdms` is a WARN of FileTxnLog's on
    SyncThread:0 whose text names that thread too: `fsync-ing the write ahead log in SyncThread:0 took Nms which will
    adversely effect operation latency.File size is N bytes. See the ZooKeeper troubleshooting guide` (a threshold of
    -1 makes every fsync slow). zkref says the same whether the fsync ran on its sync thread or, with one client and
    nothing else in process, on the event loop itself (chapter 11e, "Where the commit runs"): the thread is the one
    Java's would be.
    Reference: Java FileTxnLog.commit (Thread.currentThread().getName()), SyncRequestProcessor"""
    from kazoo.client import KazooClient
    text = re.compile(r"fsync-ing the write ahead log in SyncThread:0 took \d+ms which will adversely effect operation "
                      r"latency\.File size is \d+ bytes\. See the ZooKeeper troubleshooting guide")
    found = {}
    for kind in ("java", "zkref"):
        server = ServerProcess(tmp_path / kind, kind=kind, jvm_flags=["-Dzookeeper.fsync.warningthresholdms=-1"])
        server.start()
        try:
            zk = KazooClient(server.hosts, timeout=10)
            zk.start(timeout=15)
            try:
                zk.create("/slow", b"x")           # its createSession and this create: two fsyncs at least
            finally:
                zk.stop(); zk.close()
            wait_for(lambda: sum("fsync-ing the write ahead log" in line for line in server.logs().splitlines()) >= 2,
                     10, 0.1, f"{kind}'s fsync warnings")
        finally:
            server.stop()
        found[kind] = [e for e in entries(server.logs()) if e[3].startswith("fsync-ing the write ahead log")]
    for kind, warnings in found.items():
        assert len(warnings) >= 2, (kind, warnings)
        for level, thread, cls, message in warnings:
            assert (level, thread, cls) == ("WARN", "SyncThread:0", "FileTxnLog"), (kind, level, thread, cls)
            assert text.fullmatch(message), (kind, message)


# ---------------------------------------------------------------------------------------------------------
# 3. The ZooKeeperServer constructor's lines

def test_server_constructor_lines_in_javas_order(tmp_path):
    """`new ZooKeeperServer(...)` logs, in this order: BlueThrottle's `Weighed connection throttling is disabled`
    (the connThrottle field, before the constructor's body), `minSessionTimeout set to …`, `maxSessionTimeout set
    to …`, the two response caches' sizes, the RequestPathMetricsCollector's settings, then
    initLargeRequestThrottlingSettings's `The max bytes for all large requests are set to 104857600` and `The
    large request threshold is set to -1`, AuthenticationHelper's two lines and `Created server with …`. Then the
    connection factory is made and bound, and only then does startdata make the ZKDatabase (its DataTree's two
    WatchManagerFactory lines, ZKDatabase's two settings) and load it. zkref logs the same lines in the same order
    on a standalone server, up to `Snapshot taken in` (the six `zookeeper.pathStats.*` settings too, though it
    collects no path statistics).
    Reference: Java ZooKeeperServer constructor, ZooKeeperServer.initLargeRequestThrottlingSettings,
    ZooKeeperServerMain.runFromConfig, ZooKeeperServer.startdata (createZKDatabase)"""
    found = {}
    for kind in ("java", "zkref"):
        server = ServerProcess(tmp_path / kind, kind=kind)
        try:
            server.start()
        finally:
            server.stop()
        es = [(c, re.sub(r"\d+", "N", m.replace(str(tmp_path / kind), "D"))) for _, t, c, m in entries(server.logs())
              if t == "main"]
        start = es.index(("BlueThrottle", "Weighed connection throttling is disabled"))
        end = next(i for i in range(start, len(es)) if es[i][1].startswith("Snapshot taken in "))
        found[kind] = es[start:end + 1]
    assert ("ZooKeeperServer", "The max bytes for all large requests are set to N") in found["java"], found["java"]
    assert [m for c, m in found["java"] if c == "RequestPathMetricsCollector"] == [
        "zookeeper.pathStats.slotCapacity = N", "zookeeper.pathStats.slotDuration = N", "zookeeper.pathStats.maxDepth = N",
        "zookeeper.pathStats.initialDelay = N", "zookeeper.pathStats.delay = N", "zookeeper.pathStats.enabled = false"]
    bound = next(i for i, (c, m) in enumerate(found["java"]) if m.startswith("binding to port"))
    assert [c for c, m in found["java"][bound + 1:bound + 5]] == ["WatchManagerFactory"] * 2 + ["ZKDatabase"] * 2, found["java"]
    assert found["zkref"] == found["java"]


# ---------------------------------------------------------------------------------------------------------
# 4. WatchManagerFactory: the watch managers of each new DataTree

USING_WATCH_MANAGER = ("WatchManagerFactory", "Using org.apache.zookeeper.server.watch.WatchManager as watch manager")


def main_lines(log: str) -> list[tuple[str, str]]:
    "(class, message) of the lines logged on main, in log order."
    return [(c, m) for _, t, c, m in entries(log) if t == "main"]


def data_tree_lines(log: str, after: int) -> list[tuple[str, str]]:
    "Every WatchManagerFactory line on main, then the `after` lines that follow the first."
    es = main_lines(log)
    first = next(i for i, e in enumerate(es) if e[0] == "WatchManagerFactory")
    return [e for e in es if e[0] == "WatchManagerFactory"] + es[first + 2:first + 2 + after]


def test_watch_manager_lines_with_each_new_data_tree(tmp_path, formed_ensembles):
    """`new DataTree()` makes its data and child watch managers last, each through
    `WatchManagerFactory.createWatchManager`, which logs `Using org.apache.zookeeper.server.watch.WatchManager as
    watch manager` for the default `zookeeper.watchManagerName`: two lines per tree, on main when the server's
    ZKDatabase is made, just before ZKDatabase's `zookeeper.snapshotSizeFactor` and `zookeeper.commitLogCount`
    lines. zkref logs the same two lines with the same neighbours on a standalone server and on every server of a
    formed ensemble (its followers synced by DIFF, which makes no new tree; nor does a SIGTERM), and no others.
    Reference: Java WatchManagerFactory.createWatchManager, DataTree(DigestCalculator), ZKDatabase.createDataTree"""
    database = [("ZKDatabase", "zookeeper.snapshotSizeFactor = 0.33"), ("ZKDatabase", "zookeeper.commitLogCount=500")]
    found = {}
    for kind in ("java", "zkref"):
        server = ServerProcess(tmp_path / kind, kind=kind)
        try:
            server.start()
        finally:
            server.stop()
        found[kind] = data_tree_lines(server.logs(), 2)
    assert found["java"] == [USING_WATCH_MANAGER] * 2 + database, found["java"]
    assert found["zkref"] == found["java"]
    for i in (1, 2, 3):
        got = {kind: data_tree_lines(e.log(i), 3) for kind, e in formed_ensembles.items()}
        assert got["java"] == [USING_WATCH_MANAGER] * 2 + database + [
            ("QuorumPeer", "Using insecure (non-TLS) quorum communication")], (i, got["java"])
        assert got["zkref"] == got["java"], i


def failed_start_with(workdir, kind: str, flags: list[str]) -> tuple[int, str]:
    "Start a standalone server with these JVM flags and wait for it to end; its exit code and log."
    server = ServerProcess(workdir, kind=kind, jvm_flags=flags)
    server.start(wait=False)
    try:
        wait_for(lambda: server.proc.poll() is not None, 60, 0.1, f"{kind} to exit")
    finally:
        code = server.stop()
    return code, server.logs()


def test_unknown_watch_manager_ends_the_process_with_code_1(tmp_path):
    """A `zookeeper.watchManagerName` that names no class fails `WatchManagerFactory.createWatchManager` with
    `java.io.IOException: Couldn't instantiate foo.Bar` (caused by `java.lang.ClassNotFoundException: foo.Bar`);
    the DataTree constructor catches it, logs `Unexpected exception when creating WatchManager, exiting
    abnormally` at ERROR and calls `ServiceUtils.requestSystemExit(ExitCode.UNEXPECTED_ERROR)`: `Exiting JVM with
    code 1`, exit code 1 (seen on Debian's Java 3.8.0). zkref ends the same way, with the same lines last and the
    same exception and cause; and, as a divergence, the same way for Java's `WatchManagerOptimized`, which it does
    not implement (the cause says so).
    Reference: Java WatchManagerFactory.createWatchManager, DataTree(DigestCalculator), ServiceUtils.requestSystemExit"""
    failed = [("ERROR", "main", "DataTree", "Unexpected exception when creating WatchManager, exiting abnormally"),
              ("ERROR", "main", "ServiceUtils", "Exiting JVM with code 1")]
    for kind in ("java", "zkref"):
        code, log = failed_start_with(tmp_path / kind, kind, ["-Dzookeeper.watchManagerName=foo.Bar"])
        assert code == 1, (kind, log[-3000:])
        assert entries(log)[-2:] == failed, (kind, entries(log)[-5:])
        assert "\njava.io.IOException: Couldn't instantiate foo.Bar\n" in log, kind
        assert "\nCaused by: java.lang.ClassNotFoundException: foo.Bar\n" in log, kind
        assert USING_WATCH_MANAGER not in main_lines(log), kind
    optimized = "org.apache.zookeeper.server.watch.WatchManagerOptimized"
    code, log = failed_start_with(tmp_path / "optimized", "zkref", [f"-Dzookeeper.watchManagerName={optimized}"])
    assert code == 1 and entries(log)[-2:] == failed, log[-3000:]
    assert f"\njava.io.IOException: Couldn't instantiate {optimized}\n" in log
    assert (f"\nCaused by: java.lang.UnsupportedOperationException: {optimized} is not supported by zkref: "
            f"it implements only org.apache.zookeeper.server.watch.WatchManager\n") in log


# ---------------------------------------------------------------------------------------------------------
# 5. SnapStream's static block

@pytest.mark.parametrize("method, mode", [(None, "CHECKED"), ("Gz", "GZIP")])
def test_snapshot_compression_method_line_at_snapstreams_first_use(tmp_path, method, mode):
    """SnapStream reads `zookeeper.snapshot.compression.method` into a static field (`gz` → GZIP, case ignored;
    unset → CHECKED) and its static block logs `zookeeper.snapshot.compression.method = <mode>` once, when the
    class is first used: on a fresh data directory by Util.makeSnapshotName, just before FileTxnSnapLog.save's
    `Snapshotting: 0x0 to …`; on a restart by FileSnap.findNValidSnapshots (SnapStream.isValidSnapshot), just
    before `Reading snapshot …`. zkref logs the line once per process at the same two places, with the same mode.
    Reference: Java SnapStream (static block, StreamMode.fromString), Util.makeSnapshotName,
    FileSnap.findNValidSnapshots"""
    flags = [f"-Dzookeeper.snapshot.compression.method={method}"] if method else []
    found = {}
    for kind in ("java", "zkref"):
        server = ServerProcess(tmp_path / kind, kind=kind, jvm_flags=flags)
        runs = []
        for _ in ("fresh", "restart"):
            start = len(server.logs())
            try:
                server.start()
            finally:
                server.stop()
            es = main_lines(server.logs()[start:])
            firsts = [i for i, (c, _) in enumerate(es) if c == "SnapStream"]
            runs.append([(c, m.split(" /")[0]) for i in firsts for c, m in es[i:i + 2]])   # each, and the next
        found[kind] = runs
    line = ("SnapStream", f"zookeeper.snapshot.compression.method = {mode}")
    assert found["java"] == [[line, ("FileTxnSnapLog", "Snapshotting: 0x0 to")],
                             [line, ("FileSnap", "Reading snapshot")]], found["java"]
    assert found["zkref"] == found["java"]


# ---------------------------------------------------------------------------------------------------------
# 6. NIOServerCnxnFactory.configure's figures

@pytest.mark.parametrize("flags", [
    [],
    ["-Dzookeeper.nio.sessionlessCnxnTimeout=2500", "-Dzookeeper.nio.numSelectorThreads=3",
     "-Dzookeeper.nio.numWorkerThreads=0", "-Dzookeeper.nio.directBufferBytes=0"],
    ["-Dzookeeper.nio.numSelectorThreads=x", "-Dzookeeper.nio.numWorkerThreads=0x10",
     "-Dzookeeper.nio.directBufferBytes=1500"]], ids=["defaults", "set", "decoded"])
def test_nio_configuring_line_has_javas_figures(tmp_path, flags):
    """NIOServerCnxnFactory.configure logs `Configuring NIO connection handler with <sessionlessCnxnTimeout /
    1000>s sessionless connection timeout, <n> selector thread(s), <m> worker threads, and <directBufferBytes /
    1024> kB direct buffers.`: selector threads default to max((int) sqrt(cores / 2), 1), worker threads to
    2 × cores (0: `no`), a direct buffer size of 0 prints `gathered writes.`, each property read by
    Integer.getInteger (a bad value is the default, `0x10` is 16), cores being Runtime.availableProcessors().
    zkref logs the same line on the same machine with the same properties (Debian's Java 3.8.0 alongside).
    Reference: Java NIOServerCnxnFactory.configure and its static block (directBufferBytes)"""
    found = {}
    for kind in ("java", "zkref"):
        server = ServerProcess(tmp_path / kind, kind=kind, jvm_flags=flags)
        try:
            server.start()
        finally:
            server.stop()
        found[kind] = [e for e in main_lines(server.logs()) if e[1].startswith("Configuring NIO connection handler")]
    assert len(found["java"]) == 1, found["java"]
    assert found["zkref"] == found["java"]


def test_no_nio_selector_thread_ends_the_start(tmp_path):
    """`zookeeper.nio.numSelectorThreads` below 1 makes NIOServerCnxnFactory.configure throw
    `java.io.IOException: numSelectorThreads must be at least 1` before its `Configuring NIO …` line; the standalone
    main logs `Unexpected exception, exiting abnormally` and the process exits with 1 (`Exiting JVM with code 1`).
    zkref ends the same way. (Java's main also logs `ZooKeeper audit is disabled.` from
    ZKAuditProvider.addServerStartFailureAuditLog between the two; zkref's start-failure branches do not reach
    the audit provider, a gap of their own, so that line is left out here.)
    Reference: Java NIOServerCnxnFactory.configure, ZooKeeperServerMain.main"""
    found = {}
    for kind in ("java", "zkref"):
        code, log = failed_start_with(tmp_path / kind, kind, ["-Dzookeeper.nio.numSelectorThreads=0"])
        assert code == 1, (kind, log[-3000:])
        assert "\njava.io.IOException: numSelectorThreads must be at least 1\n" in log, kind
        es = [e for e in entries(log) if e[2] != "ZKAuditProvider"]
        assert not [e for e in es if e[3].startswith("Configuring NIO")], kind
        found[kind] = es[-2:]
    assert found["java"] == [("ERROR", "main", "ZooKeeperServerMain", "Unexpected exception, exiting abnormally"),
                             ("ERROR", "main", "ServiceUtils", "Exiting JVM with code 1")], found["java"]
    assert found["zkref"] == found["java"]


# ---------------------------------------------------------------------------------------------------------
# The quorum peer's making: QuorumPeer's and X509Util's static blocks, the setters' lines

def test_quorum_peer_setup_lines_in_javas_order(formed_ensembles):
    """`QuorumPeerMain.runFromConfig` makes the peer after binding the client port: QuorumPeer's static block logs
    `zookeeper.quorumCnxnTimeoutMs=-1`, its constructor's QuorumX509Util loads X509Util, whose static block logs
    `Setting -D jdk.tls.rejectClientInitiatedRenegotiation=true to disable client-initiated TLS renegotiation`; then
    the setters log (local sessions, tickTime, limits, TLS, multiAddress), `setQuorumSaslEnabled(false)` logs
    `QuorumPeer communication is not secured! (SASL auth disabled)` and `quorum.cnxn.threads.size set to 20` ends
    the block. zkref logs the QuorumPeer and X509Util lines of main in the same order.
    Reference: Java QuorumPeer static initializer and constructor, X509Util static initializer,
    QuorumPeerMain.runFromConfig, QuorumPeer.setQuorumSaslEnabled"""
    found = {}
    for kind, e in formed_ensembles.items():
        es = [(c, m) for _, t, c, m in entries(e.log(1)) if t == "main"]
        start = es.index(("QuorumPeerMain", "Starting quorum peer, myid=1"))
        end = es.index(("QuorumPeer", "quorum.cnxn.threads.size set to 20"))
        found[kind] = [(c, m) for c, m in es[start:end + 1] if c in ("QuorumPeer", "X509Util")]
    assert found["java"][:2] == [
        ("QuorumPeer", "zookeeper.quorumCnxnTimeoutMs=-1"),
        ("X509Util", "Setting -D jdk.tls.rejectClientInitiatedRenegotiation=true to disable client-initiated TLS renegotiation")]
    assert ("QuorumPeer", "QuorumPeer communication is not secured! (SASL auth disabled)") in found["java"]
    assert found["zkref"] == found["java"]


def test_leader_connector_lines_come_from_its_thread(formed_ensembles):
    """A learner dials its leader from Java's `Learner.LeaderConnector`, which names its thread
    `LeaderConnector-<address>`: `Successfully connected to leader, using address: /127.0.0.1:<port>` is logged by
    class `Learner$LeaderConnector` on that thread, at INFO. zkref's followers log it the same way.
    Reference: Java Learner.connectToLeader, Learner.LeaderConnector.run"""
    found = {}
    for kind, e in formed_ensembles.items():   # only learners dial: every server's log can be read
        found[kind] = sorted({(lv, re.sub(r":\d+$", ":<port>", t), c, re.sub(r":\d+$", ":<port>", m))
                              for i in e.ids for lv, t, c, m in entries(e.log(i))
                              if m.startswith("Successfully connected to leader")})
    assert found["java"] == [("INFO", "LeaderConnector-/127.0.0.1:<port>", "Learner$LeaderConnector",
                              "Successfully connected to leader, using address: /127.0.0.1:<port>")], found["java"]
    assert found["zkref"] == found["java"]


def test_quorum_client_port_lines_in_javas_order(formed_ensembles):
    """Before it makes the peer, QuorumPeerMain.runFromConfig initializes the auth providers and makes the client
    port's factory: `ACL digest algorithm is: SHA1`, `zookeeper.DigestAuthenticationProvider.enabled = true`, then
    ServerCnxnFactory.createFactory's `Using org.apache.zookeeper.server.NIOServerCnxnFactory as server connection
    factory`, configure's `maxCnxns is not configured…`, `Configuring NIO connection handler…` and `binding to
    port …`. zkref logs the same lines in the same order on main.
    Reference: Java QuorumPeerMain.runFromConfig, ProviderRegistry.initialize, ServerCnxnFactory.createFactory,
    NIOServerCnxnFactory.configure"""
    found = {}
    for kind, e in formed_ensembles.items():
        es = [(c, re.sub(r":\d+$", ":<port>", m)) for _, t, c, m in entries(e.log(1)) if t == "main"]
        start = es.index(("QuorumPeerMain", "Starting quorum peer, myid=1"))
        end = next(i for i in range(start, len(es)) if es[i][1].startswith("binding to port"))
        found[kind] = [(c, m) for c, m in es[start + 1:end + 1] if c != "ServerMetrics"]   # its line names an object
    assert found["java"][2] == ("ServerCnxnFactory",
                                "Using org.apache.zookeeper.server.NIOServerCnxnFactory as server connection factory")
    assert found["zkref"] == found["java"]


# ---------------------------------------------------------------------------------------------------------
# Request processors' threads

FINAL_DEBUG = ("log4j.logger.org.apache.zookeeper.server.FinalRequestProcessor=DEBUG\n")


def test_prep_and_final_lines_name_javas_threads(tmp_path):
    """Java's PrepRequestProcessor is a thread named `ProcessThread(sid:0 cport:<client port>):`: it logs its
    start line, `PrepRequestProcessor (sid:0) started, reconfigEnabled=false`, and each request's `Invalid path …
    with session 0x…, reason: …` from that thread. On a standalone server FinalRequestProcessor runs on
    SyncThread:0 for every request — a read too, which SyncRequestProcessor.run hands on at once when nothing
    waits for a flush — so its DEBUG `Processing request:: …` lines name SyncThread:0. zkref runs both inline
    (in the connection's step); its lines name the same threads.
    Reference: Java PrepRequestProcessor's constructor, PrepRequestProcessor.run, PrepRequestProcessor.validatePath,
    SyncRequestProcessor.run"""
    from kazoo.client import KazooClient
    from kazoo.exceptions import BadArgumentsError
    found = {}
    for kind in ("java", "zkref"):
        flags, env = [], {"ZOO_LOG_LEVEL": "DEBUG"}
        if kind == "java":
            props = tmp_path / "log4j-final-debug.properties"
            from conftest import JAVA_LOG4J
            props.write_text(JAVA_LOG4J + FINAL_DEBUG)
            flags, env = [f"-Dlog4j.configuration=file:{props}"], {}
        server = ServerProcess(tmp_path / kind, kind=kind, jvm_flags=flags, env=env)
        server.start()
        try:
            zk = KazooClient(server.hosts, timeout=10)
            zk.start(timeout=15)
            try:
                zk.create("/a", b"x")
                zk.get("/a")
                with pytest.raises(BadArgumentsError):
                    zk.create("/a/b\x01", b"")       # a control character: kazoo sends it as it is
            finally:
                zk.stop(); zk.close()
        finally:
            server.stop()
        port = server.client_port
        found[kind] = [(lv, t.replace(f"cport:{port}", "cport:<port>"), c, re.sub(r"0x[0-9a-f]+", "0x<n>", m))
                       for lv, t, c, m in entries(server.logs())
                       if (c == "PrepRequestProcessor" and ("started" in m or "Invalid path" in m))
                       or (c == "FinalRequestProcessor" and m.startswith("Processing request::")
                           and ("type:getData" in m or "type:create " in m))]
    prep = "ProcessThread(sid:0 cport:<port>):"
    assert found["java"][:2] == [
        ("INFO", prep, "PrepRequestProcessor", "PrepRequestProcessor (sid:0) started, reconfigEnabled=false"),
        ("DEBUG", "SyncThread:0", "FinalRequestProcessor", found["java"][1][3])], found["java"]
    assert ("INFO", prep, "PrepRequestProcessor", "Invalid path /a/b\x01 with session 0x<n>, reason: Invalid path "
            'string "/a/b\x01" caused by invalid character @4') in found["java"], found["java"]
    assert [t for _, t, _, _ in found["java"]].count("SyncThread:0") == 3, found["java"]   # create, getData, create
    assert [(lv, t, c) for lv, t, c, _ in found["zkref"]] == [(lv, t, c) for lv, t, c, _ in found["java"]]
    assert [m for *_, m in found["zkref"] if "Invalid path" in m] == [m for *_, m in found["java"] if "Invalid path" in m]


def test_a_leaders_prep_thread_has_no_client_port(formed_ensembles):
    """A leader's PrepRequestProcessor thread is named as a standalone one's, with the peer's id and the client
    port of its server — which a quorum server is given only after its processors start (QuorumPeer
    .setZooKeeperServer follows startup), so the name says `cport:-1`: `ProcessThread(sid:<leader> cport:-1):`.
    Reference: Java PrepRequestProcessor's constructor, ZooKeeperServer.getClientPort, Leader.lead"""
    started = re.compile(r"PrepRequestProcessor \(sid:(\d+)\) started, reconfigEnabled=false")
    for kind, e in formed_ensembles.items():
        lines = [(lv, t, c, m) for i in e.ids for lv, t, c, m in entries(e.log(i))
                 if c == "PrepRequestProcessor" and started.match(m)]
        assert lines, kind                                # the leader's (and a later leader's, if the ensemble
        for lv, thread, _, message in lines:              # re-elected as its servers were stopped one by one)
            assert (lv, thread) == ("INFO", f"ProcessThread(sid:{started.match(message)[1]} cport:-1):"), (kind, lines)
