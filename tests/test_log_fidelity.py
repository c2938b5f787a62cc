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
    lines (first the bind, then only connection requests) from the same thread, and none of the handler's lines
    from another thread.
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
            got[kind] = (lines[0], sorted(set(lines[1:])))
        thread = f"ListenerHandler-/127.0.0.1:<election:{i}>"
        assert got["java"][0] == ("INFO", thread, LISTENER_HANDLER,
                                  f"{i} is accepting connections now, my election bind port: /127.0.0.1:<election:{i}>")
        assert got["zkref"] == got["java"], (i, got)


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
