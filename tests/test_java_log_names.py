"""A quorum server logs an exception the way Java 3.8 does: the message, then on the next line the exception as
Java's `Throwable.toString()` prints it — `java.io.EOFException`, `java.net.SocketException: Connection reset`,
`java.lang.IllegalArgumentException: …` — the line operators grep for, never a Python class name. Each test
provokes a line cheaply on a three-server ensemble, once of Java 3.8 servers (the oracle: the expected lines
below are what it prints) and once of zkref servers, and checks the line that follows the message.
"""
from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

import pytest

from conftest import SERVLET_API_JAR, Ensemble, WithObserver, java_available, wait_for

pytestmark = pytest.mark.timeout(300)

KINDS = ["java", "zkref"] if java_available() else ["zkref"]
# What a peer's socket reads when the process at the other end is SIGKILLed: its kernel closes the connection
# with a FIN (the end of the stream), or with a reset when our last bytes were still unread there.
PEER_GONE = {"java.io.EOFException", "java.net.SocketException: Connection reset"}


def after(log: str, message: str) -> list[str]:
    "The line after each log line whose message ends with `message`: the exception Java prints under it."
    lines = log.splitlines()
    return [lines[n + 1] for n, line in enumerate(lines[:-1]) if line.endswith(message)]


def python_names(text: str) -> list[str]:
    "Python exception names in a log, which a Java server never prints."
    names = ("EOFError", "IncompleteReadError", "ConnectionResetError", "BrokenPipeError", "TimeoutError",
             "OSError", "IllegalArgumentError", "ValueError", "JuteError", "KeeperException:")
    return [line for line in text.splitlines() if any(line.startswith(n) for n in names)]


def open_election_connection(e: Ensemble, a: int, b: int) -> bool:
    """Whether servers `a` and `b` hold an election connection: an established TCP socket of one's process whose
    far end is the other's election port (read from /proc, as `ss -tnp` would show it). Java keeps only the
    connection the larger id dials (QuorumCnxManager.initiateConnection/handleConnection), and opens one only
    when it has a notification to send, so a connection dropped while the ensemble formed may stay closed."""
    def sockets(pid: int) -> set[str]:
        inodes = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        return inodes

    def connected_to(pid: int, port: int) -> bool:
        mine = sockets(pid)
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for row in Path(table).read_text().splitlines()[1:]:
                f = row.split()
                if f[3] == "01" and int(f[2].rsplit(":", 1)[1], 16) == port and f[9] in mine:
                    return True
        return False

    election = {i: e.ports[i][1] for i in (a, b)}
    return (connected_to(e.procs[a].proc.pid, election[b]) or connected_to(e.procs[b].proc.pid, election[a]))


@pytest.mark.parametrize("kind", KINDS)
def test_a_learner_connection_that_ends_logs_java_exceptions(kind, tmp_path):
    """When a connection to the leader's quorum port ends inside the first packet (a dialler that sends a packet
    type and closes), the leader logs `Unexpected exception in LearnerHandler: ` with `java.io.EOFException`
    under it. When a follower is SIGKILLed, the leader logs the same message for its handler, and its election
    RecvWorker (when it holds an election connection with that follower, as it almost always does) `Connection
    broken for id <f>, my id = <leader>`, each with the end of the stream or a reset
    (`java.io.EOFException`, `java.net.SocketException: Connection reset`) under it. When the leader is then
    SIGKILLed, the follower left logs `Exception when following the leader` with the same. No line names a
    Python exception.
    Reference: Java LearnerHandler.run (catch IOException), QuorumCnxManager.RecvWorker.run,
    Follower.followLeader, DataInputStream.readLong/readInt (EOFException), Throwable.toString."""
    e = Ensemble(tmp_path, (kind,) * 3)
    e.start()
    try:
        leader = e.wait_formed(timeout=90)
        followers = [i for i in e.ids if i != leader]
        # the follower to kill is one the leader holds an election connection with: Java's duplicate-connection
        # handling can leave a pair with none after forming (a CI run met it), and then no RecvWorker can log
        with_connection = [f for f in followers if open_election_connection(e, leader, f)]
        follower = (with_connection or followers)[0]
        other = next(f for f in followers if f != follower)
        handler_msg = "Unexpected exception in LearnerHandler: "

        with socket.create_connection(("127.0.0.1", e.quorum(leader)), timeout=10) as s:
            s.sendall(struct.pack(">i", 11))           # FOLLOWERINFO's type, then nothing: the zxid never comes
        wait_for(lambda: after(e.log(leader), handler_msg), 30, 0.2, what="the leader's LearnerHandler line")
        assert after(e.log(leader), handler_msg) == ["java.io.EOFException"]

        broken = f"Connection broken for id {follower}, my id = {leader}"
        # lines from before the kill are not its: while the ensemble formed, Java's leader may have closed a
        # duplicate election connection itself (`Socket closed` under the line)
        broken_before = len(after(e.log(leader), broken))
        e.stop(follower, sig=9)
        wait_for(lambda: len(after(e.log(leader), handler_msg)) >= 2, 30, 0.2, what="the dead follower's handler")
        assert set(after(e.log(leader), handler_msg)[1:]) <= PEER_GONE, after(e.log(leader), handler_msg)
        if with_connection:
            wait_for(lambda: len(after(e.log(leader), broken)) > broken_before, 30, 0.2,
                     what="the election RecvWorker's line")
            assert set(after(e.log(leader), broken)[broken_before:]) <= PEER_GONE, after(e.log(leader), broken)

        e.stop(leader, sig=9)
        following = "Exception when following the leader"
        wait_for(lambda: after(e.log(other), following), 60, 0.2, what="the follower's line")
        assert set(after(e.log(other), following)) <= PEER_GONE, after(e.log(other), following)
        for i in e.ids:
            assert python_names(e.log(i)) == [], (i, python_names(e.log(i)))
    finally:
        e.stop_all()


@pytest.mark.parametrize("kind", KINDS)
def test_an_admin_server_port_in_use_logs_the_admin_server_exception(kind, tmp_path):
    """In quorum mode an AdminServer that cannot bind is only a warning: each server logs `Problem starting
    AdminServer` with Java's `org.apache.zookeeper.server.admin.AdminServer$AdminServerException: Problem
    starting AdminServer on address 127.0.0.1, port P and command URL /commands` under it, and the ensemble
    forms. Reference: Java QuorumPeer.start (catch AdminServerException), JettyAdminServer.start."""
    if kind == "java" and not Path(SERVLET_API_JAR).exists():
        pytest.skip("Java's AdminServer needs servlet-api.jar")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        e = Ensemble(tmp_path, (kind,) * 3, classpath=[SERVLET_API_JAR], **{
            "admin.enableServer": "true", "admin.serverAddress": "127.0.0.1", "admin.serverPort": port})
        e.start()
        try:
            e.wait_formed(timeout=90)
            want = ("org.apache.zookeeper.server.admin.AdminServer$AdminServerException: Problem starting AdminServer"
                    f" on address 127.0.0.1, port {port} and command URL /commands")
            for i in e.ids:
                assert after(e.log(i), "Problem starting AdminServer") == [want], i
        finally:
            e.stop_all()


@pytest.mark.parametrize("kind", KINDS)
def test_an_ephemeral_on_a_local_session_logs_the_keeper_exception_class(kind, tmp_path):
    """With local sessions on and their upgrading off, an ephemeral create on a local session at the leader is
    refused by its LeaderRequestProcessor, which logs `Error creating upgrade request` with the KeeperException
    under it as Java prints it: `org.apache.zookeeper.KeeperException$EphemeralOnLocalSessionException:
    KeeperErrorCode = Ephemeral node on local session`. Reference: Java LeaderRequestProcessor.processRequest
    (catch KeeperException), LeaderZooKeeperServer.checkUpgradeSession, KeeperException.toString."""
    from kazoo.client import KazooClient
    e = Ensemble(tmp_path, (kind,) * 3, localSessionsEnabled="true", localSessionsUpgradingEnabled="false")
    e.start()
    zk = None
    try:
        leader = e.wait_formed(timeout=90)
        zk = KazooClient(hosts=f"127.0.0.1:{e.client(leader)}", timeout=10)
        zk.start(30)
        with pytest.raises(Exception):
            zk.create("/eph", b"", ephemeral=True)
        want = ("org.apache.zookeeper.KeeperException$EphemeralOnLocalSessionException: KeeperErrorCode = Ephemeral "
                "node on local session")
        wait_for(lambda: after(e.log(leader), "Error creating upgrade request"), 30, 0.2, what="the leader's line")
        assert after(e.log(leader), "Error creating upgrade request") == [want]
    finally:
        if zk is not None:
            zk.stop()
            zk.close()
        e.stop_all()


@pytest.mark.parametrize("kind", KINDS)
def test_an_observer_that_goes_and_comes_back_logs_java_exceptions(kind, tmp_path):
    """An observer SIGKILLed and started again: the leader logs `Unexpected exception in LearnerHandler: ` for
    the observer's handler with the end of the stream or a reset under it; the observer comes back and observes.
    When the leader is then SIGKILLed, the observer logs `Exception when observing the leader` with the same.
    No line names a Python exception.
    Reference: Java LearnerHandler.run (catch IOException), Observer.observeLeader, Throwable.toString."""
    from conftest import WithObserver
    e = WithObserver(tmp_path, (kind,) * 4)
    e.start()
    try:
        leader = e.wait_formed([1, 2, 3], timeout=90)
        wait_for(lambda: e.mode(4) == "observer", 60, 0.2, what="the observer")
        handler_msg = "Unexpected exception in LearnerHandler: "
        before = len(after(e.log(leader), handler_msg))
        e.procs.pop(4).kill()
        wait_for(lambda: len(after(e.log(leader), handler_msg)) > before, 30, 0.2, what="the observer's handler")
        assert set(after(e.log(leader), handler_msg)) <= PEER_GONE, after(e.log(leader), handler_msg)
        e.start(4)
        wait_for(lambda: e.mode(4) == "observer", 60, 0.2, what="the observer back")
        e.stop(leader, sig=9)
        observing = "Exception when observing the leader"
        wait_for(lambda: after(e.log(4), observing), 60, 0.2, what="the observer's line")
        assert set(after(e.log(4), observing)) <= PEER_GONE, after(e.log(4), observing)
        for i in e.ids:
            assert python_names(e.log(i)) == [], (i, python_names(e.log(i)))
    finally:
        e.stop_all()


def upgrade_refusals(log: str) -> list[tuple[str, str]]:
    "(level, class) of each `Error creating upgrade request` line."
    import re
    return re.findall(r" - (\w+)\s+\[.*:([\w$]+)@\d+\] - Error creating upgrade request$", log, re.M)


def test_upgrade_refusal_is_logged_by_each_roles_processor(tmp_path):
    """The same refusal (an ephemeral on a local session, upgrading off) at a follower is logged by its
    FollowerRequestProcessor at WARN and at an observer by its ObserverRequestProcessor at INFO, each with the
    KeeperException under it; zkref logs each as Java 3.8 does.
    Reference: Java FollowerRequestProcessor.processRequest (LOG.warn), ObserverRequestProcessor.processRequest (LOG.info)"""
    from kazoo.client import KazooClient
    if not java_available():
        pytest.skip("needs Java 3.8")
    want = "org.apache.zookeeper.KeeperException$EphemeralOnLocalSessionException: KeeperErrorCode = Ephemeral node on local session"
    got = {}
    for kind in ("java", "zkref"):
        e = WithObserver(tmp_path / kind, (kind,) * 4, localSessionsEnabled="true", localSessionsUpgradingEnabled="false")
        e.start()
        try:
            want_modes = ["follower", "follower", "leader", "observer"]
            wait_for(lambda: e.modes() == want_modes, 90, 0.2, what=f"a leader, 2 followers and the observer ({e.modes()})")
            leader = next(i for i in e.ids if e.mode(i) == "leader")
            follower = next(i for i in (1, 2, 3) if i != leader)
            for i in (follower, 4):
                zk = KazooClient(hosts=f"127.0.0.1:{e.client(i)}", timeout=10)
                zk.start(30)
                try:
                    with pytest.raises(Exception):
                        zk.create("/eph", b"", ephemeral=True)
                finally:
                    zk.stop()
                    zk.close()
                wait_for(lambda: after(e.log(i), "Error creating upgrade request"), 30, 0.2, what=f"server {i}'s line")
                assert after(e.log(i), "Error creating upgrade request") == [want], (kind, i)
            got[kind] = (upgrade_refusals(e.log(follower)), upgrade_refusals(e.log(4)))
        finally:
            e.stop_all()
    assert got["java"] == ([("WARN", "FollowerRequestProcessor")], [("INFO", "ObserverRequestProcessor")]), got
    assert got["zkref"] == got["java"]

