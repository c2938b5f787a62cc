"""Where Java 3.8 ends the JVM from inside a running server (`ServiceUtils.requestSystemExit`), a
`python -m zkref` server ends its process, with the same code and Java's line `Exiting JVM with code N`; a
server run inside another process (the in-process mini cluster, notebooks) keeps Java's `LOG_ONLY` procedure
and lives on.

Each scenario runs real processes on 127.0.0.1 and free ports: `python -m zkref zoo.cfg`, and the same
scenario against Java 3.8 (Debian's `zookeeper` package) to compare the exit code and the lines. A learner's
exits (12, 13, 10) are provoked by `FakeLeader`: a small leader, in this test's process, that wins the election
(a LOOKING vote for itself with a newer epoch), then plays the leader's side of Zab's handshake over the quorum
port with a script of packets.
"""
from __future__ import annotations

import asyncio
import logging
import re
import socket
import struct
import subprocess
import threading
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException

from conftest import ServerProcess, free_ports, java_available, until
from zkref.config import QuorumPeerConfig
from zkref.datatree import DataTree
from zkref.jute import CreateTxn, TxnHeader
from zkref.main import LOG_ONLY, system_exit_procedure
from zkref.persistence import FileTxnSnapLog, marshall_txn_entry
from zkref.quorum.election import ServerState
from zkref.quorum.main import QuorumPeerMain
from zkref.quorum.zab import (ACK, ACKEPOCH, COMMIT, DIFF, FOLLOWERINFO, LEADERINFO, NEWLEADER, PROPOSAL, SNAP,
                              UPTODATE, make_zxid as z, snapshot_body)
from zkref.zkdatabase import ZKDatabase

pytestmark = pytest.mark.timeout(180)
needs_java = pytest.mark.skipif(not java_available(), reason="Java ZooKeeper 3.8 (Debian package zookeeper) is not installed")
KINDS = ["zkref", pytest.param("java", marks=[needs_java, pytest.mark.java, pytest.mark.slow])]

LOOKING = int(ServerState.LOOKING)   # a notification's state field
EXIT_WAIT_S = 60                     # every process here must be gone by then


# ---------------------------------------------------------------------------------------------------------
# A fake leader, over real sockets

def _read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("connection closed")
        data += chunk
    return data


def read_quorum_packet(sock: socket.socket) -> tuple[int, int, bytes | None]:
    "One QuorumPacket (type, zxid, data): jute's int, long, buffer and vector<Id> (a learner sends none)."
    ptype, zxid, n = struct.unpack(">iqi", _read_exactly(sock, 16))
    data = _read_exactly(sock, n) if n >= 0 else None
    (count,) = struct.unpack(">i", _read_exactly(sock, 4))
    for _ in range(max(count, 0)):                      # an Id: two ustrings
        for _ in range(2):
            (m,) = struct.unpack(">i", _read_exactly(sock, 4))
            _read_exactly(sock, max(m, 0))
    return ptype, zxid, data


def quorum_packet(ptype: int, zxid: int, data: bytes | None = None) -> bytes:
    "A QuorumPacket on the wire, without authinfo."
    body = struct.pack(">i", -1) if data is None else struct.pack(">i", len(data)) + data
    return struct.pack(">iq", ptype, zxid) + body + struct.pack(">i", -1)


def create_txn(zxid: int, path: str) -> bytes:
    "A PROPOSAL's data: a create txn as a txn log entry."
    return marshall_txn_entry(TxnHeader(client_id=0, cxid=0, zxid=zxid, time=0, type=1),
                              CreateTxn(path=path, data=b"", acl=[], ephemeral=False, parent_cversion=1))


class FakeLeader:
    """Server 1 of a two-server ensemble, on 127.0.0.1 and ports of its own: it answers each LOOKING
    notification on its election port with a LOOKING vote for itself at peer epoch `epoch` (which beats a new
    server's vote for itself), and on its quorum port runs `script(send, recv)` for the learner that connects.
    Daemon threads; every socket has a timeout, so nothing here can hang a test."""

    def __init__(self, script, sid: int = 1, epoch: int = 1, timeout_s: float = 30.0):
        self.script, self.sid, self.epoch, self.timeout_s = script, sid, epoch, timeout_s
        self.election = self._listen()
        self.quorum = self._listen()
        self.election_port = self.election.getsockname()[1]
        self.quorum_port = self.quorum.getsockname()[1]
        self.received: list[tuple[int, int, bytes | None]] = []   # what the learner sent on the quorum port
        self.errors: list[BaseException] = []
        self.learner_connected = threading.Event()
        self.connections: list[socket.socket] = []
        self.threads = [threading.Thread(target=self._guard, args=(f,), daemon=True)
                        for f in (self._serve_election, self._serve_quorum)]

    def _listen(self) -> socket.socket:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        s.settimeout(self.timeout_s)
        return s

    def start(self) -> "FakeLeader":
        for t in self.threads:
            t.start()
        return self

    def stop(self) -> None:
        for s in (self.election, self.quorum, *self.connections):
            try:
                s.close()
            except OSError:
                pass
        for t in self.threads:
            t.join(5)

    def _guard(self, target) -> None:
        try:
            target()
        except (OSError, EOFError):
            pass                                  # the server under test went away, or stop() closed us
        except BaseException as e:                # a bug in the script: the test reports it
            self.errors.append(e)

    def _accept(self, listener: socket.socket) -> socket.socket:
        conn, _ = listener.accept()
        conn.settimeout(self.timeout_s)
        self.connections.append(conn)
        return conn

    def _serve_election(self) -> None:
        "Java: QuorumCnxManager.receiveConnection, then FastLeaderElection's WorkerReceiver, reduced to a vote."
        while True:
            conn = self._accept(self.election)
            threading.Thread(target=self._guard, args=(lambda c=conn: self._election_connection(c),),
                             daemon=True).start()

    def _election_connection(self, conn: socket.socket) -> None:
        (version,) = struct.unpack(">q", _read_exactly(conn, 8))
        if version < 0:                                   # protocol version, then the sid and the address
            _read_exactly(conn, 8)
            (n,) = struct.unpack(">i", _read_exactly(conn, 4))
            _read_exactly(conn, n)
        while True:
            (n,) = struct.unpack(">i", _read_exactly(conn, 4))
            msg = _read_exactly(conn, n)
            state, _leader, _zxid, election_epoch = struct.unpack(">iqqq", msg[:28])
            if state == LOOKING:                          # our vote: state, leader, zxid, epochs, version 1
                vote = struct.pack(">iqqqqi", LOOKING, self.sid, 0, election_epoch, self.epoch, 1)
                conn.sendall(struct.pack(">i", len(vote)) + vote)

    def _serve_quorum(self) -> None:
        conn = self._accept(self.quorum)
        self.learner_connected.set()

        def send(ptype: int, zxid: int, data: bytes | None = None) -> None:
            conn.sendall(quorum_packet(ptype, zxid, data))
        send.raw = conn.sendall                           # bytes that follow a packet (a SNAP's database)

        def recv() -> tuple[int, int, bytes | None]:
            qp = read_quorum_packet(conn)
            self.received.append(qp)
            return qp

        self.script(send, recv)
        while True:                                       # keep the connection until the learner ends it
            recv()


def handshake_and_diff(send, recv, epoch: int = 1) -> None:
    "Discovery and an empty DIFF sync: FOLLOWERINFO → LEADERINFO → ACKEPOCH → DIFF, NEWLEADER → ACK, UPTODATE → ACK."
    # Spec: Zab.tla LeaderProcessFOLLOWERINFO, LeaderProcessACKEPOCH, LeaderProcessACKLD
    ptype, _, _ = recv()
    assert ptype == FOLLOWERINFO
    send(LEADERINFO, z(epoch, 0), struct.pack(">i", 0x10000))
    ptype, _, _ = recv()
    assert ptype == ACKEPOCH
    send(DIFF, 0)
    send(NEWLEADER, z(epoch, 0))
    ptype, zxid, _ = recv()
    assert (ptype, zxid) == (ACK, z(epoch, 0))
    send(UPTODATE, -1)
    ptype, _, _ = recv()
    assert ptype == ACK


def commit_out_of_order(send, recv) -> None:
    "Two proposals, then a COMMIT of the second: not the oldest pending txn."
    handshake_and_diff(send, recv)
    send(PROPOSAL, z(1, 1), create_txn(z(1, 1), "/a"))
    send(PROPOSAL, z(1, 2), create_txn(z(1, 2), "/b"))
    send(COMMIT, z(1, 2))


# ---------------------------------------------------------------------------------------------------------
# Reading the two servers' logs (zkref prints Java's log4j layout)

LINE = re.compile(r"^\S+ \S+ \[myid:\d*\] - (?P<level>\w+)\s+\[(?P<thread>.*):(?P<cls>[\w$]+)@\d+\] - (?P<msg>.*)$")


def log_lines(text: str) -> list[tuple[str, str, str, str]]:
    "(level, thread, class, message) of each log line (stack-trace lines left out)."
    return [(m["level"], m["thread"], m["cls"], m["msg"]) for m in map(LINE.match, text.splitlines()) if m]


def peer_thread(lines: list[tuple[str, str, str, str]], myid: int = 2) -> list[tuple[str, str, str, str]]:
    "The lines of the peer's own thread, `QuorumPeer[myid=N](plain=…)(secure=…)`, which follows the leader."
    return [l for l in lines if l[1].startswith(f"QuorumPeer[myid={myid}]")]


def wait_exit(server: ServerProcess) -> int:
    "The process's exit code; fails (and stops it) if it has not exited within EXIT_WAIT_S."
    try:
        return server.proc.wait(EXIT_WAIT_S)
    except subprocess.TimeoutExpired:
        server.stop()
        pytest.fail(f"{server.kind} did not exit within {EXIT_WAIT_S}s:\n{server.logs()[-3000:]}")


def run_until_exit(server: ServerProcess) -> tuple[int, str]:
    "Start `server` and wait for its process to exit (stopping it either way): (exit code, its log)."
    try:
        server.start(wait=False)
        code = wait_exit(server)
    finally:
        server.stop()
    return code, server.logs()


def follower_of(leader: FakeLeader, root: Path, kind: str, jvm_flags: tuple[str, ...] = ()) -> ServerProcess:
    "Server 2 of the fake leader's two-server ensemble, `python -m zkref` or Java 3.8, not started."
    q2, e2 = free_ports(2)
    config = {"tickTime": 500, "initLimit": 10, "syncLimit": 5,
              "server.1": f"127.0.0.1:{leader.quorum_port}:{leader.election_port}",
              "server.2": f"127.0.0.1:{q2}:{e2}"}
    return ServerProcess(root / kind, config, myid=2, kind=kind, jvm_flags=jvm_flags)


def follow_until_exit(script, root: Path, kind: str, jvm_flags: tuple[str, ...] = ()) -> tuple[int, str, FakeLeader]:
    """Start a fake leader playing `script` and its follower (`python -m zkref` or Java 3.8); wait for the
    follower's process to exit, stop both; (exit code, the follower's log, the stopped fake leader). The fake
    leader saw no error."""
    leader = FakeLeader(script).start()
    server = follower_of(leader, root, kind, jvm_flags)
    try:
        server.start(wait=False)
        code = wait_exit(server)
    finally:
        server.stop()
        leader.stop()
    assert not leader.errors, leader.errors
    return code, server.logs(), leader


# ---------------------------------------------------------------------------------------------------------
# Exit 12: a COMMIT that does not match the oldest pending txn

@pytest.mark.parametrize("kind", KINDS)
def test_commit_not_matching_the_oldest_pending_txn_exits_12(kind, tmp_path):
    """A follower that is sent a COMMIT for a zxid other than its oldest pending proposal logs
    `Committing zxid 0x… but next pending txn 0x…` and ends the JVM with exit code 12 (UNMATCHED_TXN_COMMIT):
    `Exiting JVM with code 12` at ERROR from ServiceUtils, logged by the thread that follows the leader. zkref's
    `python -m zkref` does the same; the Java run is the oracle for the code and the lines.

    Reference: Java FollowerZooKeeperServer.commit, ServiceUtils.SYSTEM_EXIT, ExitCode.UNMATCHED_TXN_COMMIT
    """
    code, log, _ = follow_until_exit(commit_out_of_order, tmp_path, kind)
    assert code == 12, log[-3000:]
    lines = log_lines(log)
    exiting = [l for l in lines if l[2] == "ServiceUtils"]
    assert [(l[0], l[3]) for l in exiting] == [("ERROR", "Exiting JVM with code 12")], log[-3000:]
    assert exiting[0][1].startswith("QuorumPeer[myid=2]"), exiting   # the peer's own thread, as Java's
    mismatch = [l for l in lines if l[3].startswith("Committing zxid")]
    assert [(l[0], l[2], l[3]) for l in mismatch] == [
        ("ERROR", "FollowerZooKeeperServer", "Committing zxid 0x100000002 but next pending txn 0x100000001")]
    assert peer_thread(lines)[-2:] == [mismatch[0], exiting[0]], f"the exit line follows directly:\n{log[-2000:]}"
    if kind == "zkref":                                          # (Java's other threads may still log while it exits)
        assert lines[-1] == exiting[0], f"nothing is logged after the exit line:\n{log[-2000:]}"
    assert "Traceback" not in log


def uptodate_instead_of_a_sync(send, recv) -> None:
    "Discovery, then UPTODATE where DIFF, SNAP or TRUNC must come."
    ptype, _, _ = recv()
    assert ptype == FOLLOWERINFO
    send(LEADERINFO, z(1, 0), struct.pack(">i", 0x10000))
    ptype, _, _ = recv()
    assert ptype == ACKEPOCH
    send(UPTODATE, -1)


@pytest.mark.parametrize("kind", KINDS)
def test_unexpected_first_sync_packet_exits_13(kind, tmp_path):
    """After ACKEPOCH a learner accepts only DIFF, SNAP or TRUNC; anything else is logged
    (`Got unexpected packet from leader: UPTODATE ffffffffffffffff null, exiting ... `) and ends the JVM with
    exit code 13 (QUORUM_PACKET_ERROR), `Exiting JVM with code 13` being the last line.

    Reference: Java Learner.syncWithLeader, ServiceUtils.SYSTEM_EXIT, ExitCode.QUORUM_PACKET_ERROR
    """
    code, log, _ = follow_until_exit(uptodate_instead_of_a_sync, tmp_path, kind)
    assert code == 13, log[-3000:]
    lines = log_lines(log)
    unexpected = [l for l in lines if l[3].startswith("Got unexpected packet from leader")]
    assert [(l[0], l[2], l[3]) for l in unexpected] == [
        ("ERROR", "Learner", "Got unexpected packet from leader: UPTODATE ffffffffffffffff null, exiting ... ")]
    assert (lines[-1][0], lines[-1][2], lines[-1][3]) == ("ERROR", "ServiceUtils", "Exiting JVM with code 13"), log[-2000:]
    assert peer_thread(lines)[-2:] == [unexpected[0], lines[-1]], log[-2000:]   # nothing runs after the call
    assert lines[-1][1].startswith("QuorumPeer[myid=2]")
    assert "Traceback" not in log


def snap_whose_snapshot_cannot_be_written(snap_dir: Path):
    "A SNAP sync; as the learner registers, its snapshot's file name is taken by a directory, so the save fails."
    # Java's AtomicFileOutputStream deletes what is in its way before the rename: an empty directory would go
    def script(send, recv) -> None:
        ptype, _, _ = recv()
        assert ptype == FOLLOWERINFO
        taken = snap_dir / f"snapshot.{z(1, 0):x}"
        taken.mkdir(parents=True)
        (taken / "keep").write_text("a directory that is not empty cannot be replaced by the snapshot\n")
        send(LEADERINFO, z(1, 0), struct.pack(">i", 0x10000))
        ptype, _, _ = recv()
        assert ptype == ACKEPOCH
        send(SNAP, z(1, 0))
        send.raw(snapshot_body(ZKDatabase(None)))
        send(NEWLEADER, z(1, 0))
    return script


@pytest.mark.parametrize("kind", KINDS)
def test_snapshot_that_cannot_be_written_during_sync_exits_10(kind, tmp_path):
    """A learner synced by SNAP saves a snapshot at NEWLEADER; if that fails (here the snapshot's file name is
    taken by a directory that is not empty) Java logs `Severe unrecoverable error, exiting` with the IOException and ends the JVM
    with exit code 10 (TXNLOG_ERROR_TAKING_SNAPSHOT) before it ACKs NEWLEADER.

    Reference: Java ZooKeeperServer.takeSnapshot, Learner.syncWithLeader (NEWLEADER), ExitCode.TXNLOG_ERROR_TAKING_SNAPSHOT
    """
    root = tmp_path / kind
    code, log, leader = follow_until_exit(snap_whose_snapshot_cannot_be_written(root / "data" / "version-2"), tmp_path, kind)
    assert code == 10, log[-3000:]
    lines = log_lines(log)
    severe = [l for l in lines if l[3] == "Severe unrecoverable error, exiting"]
    assert [(l[0], l[2]) for l in severe] == [("ERROR", "ZooKeeperServer")], log[-3000:]
    assert (lines[-1][0], lines[-1][2], lines[-1][3]) == ("ERROR", "ServiceUtils", "Exiting JVM with code 10"), log[-2000:]
    assert peer_thread(lines)[-2:] == [severe[0], lines[-1]], log[-2000:]       # nothing runs after the call
    assert not any(t == ACK and zx == z(1, 0) for t, zx, _ in leader.received)   # NEWLEADER is never ACKed
    assert "Traceback" not in log


# ---------------------------------------------------------------------------------------------------------
# Exit 14: an election port that cannot be bound

ELECTION_PORT_LINES = [
    ("INFO", "QuorumCnxManager$Listener", "Leaving listener"),
    ("ERROR", "QuorumCnxManager$Listener",
     "As I'm leaving the listener thread, I won't be able to participate in leader election any longer: {addr}"),
    ("ERROR", "ServiceUtils", "Exiting JVM with code 14"),
]


@pytest.mark.parametrize("kind", KINDS)
def test_election_port_that_cannot_be_bound_exits_14_with_javas_last_lines(kind, tmp_path):
    """When the election port is taken and `zookeeper.electionPortBindRetry` tries fail, Java's listener logs
    `Leaving listener`, `As I'm leaving the listener thread, …` and its socketBindErrorHandler ends the JVM:
    `Exiting JVM with code 14` (UNABLE_TO_BIND_QUORUM_PORT), all three from the QuorumPeerListener thread
    (verified on Debian's Java 3.8.0). zkref's listener ends with the same three lines, in the same thread, the
    process with the same code, and no `Unexpected exception` line is printed, as Java prints none.

    Reference: Java QuorumCnxManager.Listener.run (socketBindErrorHandler), ServiceUtils.SYSTEM_EXIT
    """
    q1, e1, q2, e2, q3, e3 = free_ports(6)
    config = {"tickTime": 500, "initLimit": 10, "syncLimit": 5, "electionPortBindRetry": 1,
              "server.1": f"127.0.0.1:{q1}:{e1}", "server.2": f"127.0.0.1:{q2}:{e2}",
              "server.3": f"127.0.0.1:{q3}:{e3}"}
    server = ServerProcess(tmp_path / kind, config, myid=1, kind=kind,
                           jvm_flags=["-Dzookeeper.electionPortBindRetry=1"])
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", e1))
        blocker.listen()
        try:
            server.start(wait=False)
            code = wait_exit(server)
        finally:
            server.stop()
    log = server.logs()
    assert code == 14, log[-3000:]
    # Java's election threads go on logging around the listener's last lines (even while System.exit runs):
    # compare the listener thread's own last lines
    listener = [(level, cls, msg) for level, thread, cls, msg in log_lines(log) if thread == "QuorumPeerListener"]
    expected = [(level, cls, msg.format(addr=f"127.0.0.1:{e1}")) for level, cls, msg in ELECTION_PORT_LINES]
    assert listener[-3:] == expected, log[-3000:]
    assert [t for _, t, cls, _ in log_lines(log) if cls == "ServiceUtils"] == ["QuorumPeerListener"]
    assert "Unexpected exception" not in log


# ---------------------------------------------------------------------------------------------------------
# The way out of main: Exiting JVM with code N

@pytest.mark.parametrize("kind", KINDS)
def test_invalid_config_ends_with_exiting_jvm_with_code_2(kind, tmp_path):
    """QuorumPeerMain.main turns a ConfigException into `Invalid config, exiting abnormally` and ends with
    `ServiceUtils.requestSystemExit(2)`: the last log line is `Exiting JVM with code 2` (ERROR) and the exit
    code is 2.

    Reference: Java QuorumPeerMain.main, ExitCode.INVALID_INVOCATION
    """
    server = ServerProcess(tmp_path / kind, {"tickTime": 2000}, kind=kind)
    server.cfg_path.write_text("tickTime=2000\nclientPort=2181\n")      # no dataDir
    code, log = run_until_exit(server)
    assert code == 2, log[-3000:]
    lines = log_lines(log)
    assert (lines[-1][0], lines[-1][2], lines[-1][3]) == ("ERROR", "ServiceUtils", "Exiting JVM with code 2"), log
    assert any(l[3].startswith("Invalid config, exiting abnormally") for l in lines)


def failed_start_tail(log: str, first: str) -> tuple[list, list]:
    """From the log line whose message is `first` to the end: (level, thread, class, message) of each log line, and
    the other lines that are not stack frames (an exception's first line, what was printed on stderr)."""
    raw = log.splitlines()
    start = next(i for i, l in enumerate(raw) if (m := LINE.match(l)) and m["msg"] == first)
    lines = log_lines("\n".join(raw[start:]))
    other = [l for l in raw[start:] if not LINE.match(l) and l.strip() and not l.startswith(("\tat ", "\t..."))]
    return lines, other


@pytest.mark.parametrize("flag, exception", [
    ("-Dzookeeper.maxResponseCacheSize=-4", "java.lang.IllegalArgumentException: Illegal initial capacity: -1"),
    ("-Dzookeeper.pathStats.sampleRate=often", 'java.lang.NumberFormatException: For input string: "often"')])
@pytest.mark.parametrize("audit", [False, True])
def test_invalid_argument_while_making_the_server_ends_as_javas(audit, flag, exception, tmp_path):
    """A response cache of -4 entries or fewer fails the making of the standalone ZooKeeperServer: Java's LRUCache
    asks LinkedHashMap for an initial capacity of cacheSize / 4, which throws `IllegalArgumentException: Illegal
    initial capacity: -1`; so does a pathStats.sampleRate that Float.parseFloat refuses (NumberFormatException, an
    IllegalArgumentException). ZooKeeperServerMain.main catches it: `Invalid arguments, exiting abnormally`, its own
    usage line (logged, then printed on stderr), the start-failure audit (whose first use loads ZKAuditProvider:
    `ZooKeeper audit is disabled.`, or `enabled.` and a serverStart failure line), and exit code 2.
    Reference: Java ResponseCache.LRUCache, RequestPathMetricsCollector, ZooKeeperServer's constructor, ZooKeeperServerMain.main,
    ZKAuditProvider.addServerStartFailureAuditLog; verified on Debian's Java 3.8.0."""
    if not java_available():
        pytest.skip("needs Debian's Java ZooKeeper 3.8")
    flags = [flag] + (["-Dzookeeper.audit.enable=true"] if audit else [])
    seen = {}
    for kind in ("java", "zkref"):
        server = ServerProcess(tmp_path / kind, {}, kind=kind, jvm_flags=flags)
        code, log = run_until_exit(server)
        lines, other = failed_start_tail(log, "Invalid arguments, exiting abnormally")
        seen[kind] = (code, [(level, thread, cls, re.sub(r"user=\S+", "user=U", msg)) for level, thread, cls, msg in lines],
                      other)
    usage = "Usage: ZooKeeperServerMain configfile | port datadir [ticktime] [maxcnxns]"
    assert seen["java"][0] == 2 and seen["java"][2] == [exception, usage], seen["java"]
    assert ("INFO", "main", "ZKAuditProvider", f"ZooKeeper audit is {'enabled' if audit else 'disabled'}.") \
        in seen["java"][1], seen["java"]
    assert seen["zkref"] == seen["java"], seen


# ---------------------------------------------------------------------------------------------------------
# In-process: LOG_ONLY

def test_in_process_follower_logs_the_disabled_exit_and_looks_for_a_leader_again(tmp_path, caplog):
    """A server run inside another process keeps Java's LOG_ONLY exit procedure (as Java's own tests and
    embedded servers set it): the same mismatched COMMIT logs `Fatal error, JVM should exit with code 12.
    Actually System.exit is disabled` instead of ending the process, the role ends, and the peer goes back to
    LOOKING; the test's process lives on.

    Reference: Java ServiceUtils.LOG_ONLY, ServiceUtils.setSystemExitProcedure, FollowerZooKeeperServer.commit
    """
    assert system_exit_procedure() is LOG_ONLY          # nothing in this process asked for SYSTEM_EXIT
    leader = FakeLeader(commit_out_of_order).start()
    server = follower_of(leader, tmp_path, "zkref")      # its zoo.cfg and myid; run here, not as a process
    config = QuorumPeerConfig()
    config.parse(str(server.cfg_path))
    disabled = "Fatal error, JVM should exit with code 12. Actually System.exit is disabled"

    async def scenario():
        main = QuorumPeerMain()
        task = asyncio.create_task(main.run_from_config(config))
        try:
            await until(lambda: disabled in caplog.text, 60, "the LOG_ONLY line")
            await until(lambda: main.quorum_peer.peer_state == ServerState.LOOKING
                        and "PeerState set to LOOKING" in caplog.text, 30, "the peer to look for a leader again")
        finally:
            await main.shutdown()
            await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 60)

    with caplog.at_level(logging.INFO):
        try:
            asyncio.run(scenario())
        finally:
            leader.stop()
    assert not leader.errors, leader.errors
    records = [(r.levelname, r.name, r.getMessage()) for r in caplog.records]
    assert ("ERROR", "ServiceUtils", disabled) in records
    assert not any(msg.startswith("Exiting JVM") for _, _, msg in records)
    assert not any(msg.startswith("Unexpected exception") for _, name, msg in records if name == "QuorumPeer")


# ---------------------------------------------------------------------------------------------------------
# Exit 10 wherever ZooKeeperServer.takeSnapshot cannot write its snapshot (start-up, the Snapshot Thread, a new
# leader), and exit 1 where Java's snapshot is not takeSnapshot's (a new database's snapshot.0)

SEVERE = "Severe unrecoverable error, exiting"


def block_snapshot(snap_dir: Path, zxid: int) -> None:
    "Take the name of the snapshot at `zxid` with a directory that is not empty, so that it cannot be written."
    # Java's SnapStream opens the file (FileNotFoundException: Is a directory); an empty directory would be replaced
    taken = snap_dir / f"snapshot.{zxid:x}"
    taken.mkdir(parents=True)
    (taken / "keep").write_text("a directory that is not empty cannot be replaced by the snapshot\n")


def data_dir_with_txns(data_dir: Path, n: int) -> int:
    """A data directory as a stopped server leaves it: `snapshot.0` of the empty tree and a txn log of `n`
    creates (zxids 1..n), written by zkref's own FileTxnSnapLog; the last zxid."""
    tsl = FileTxnSnapLog(data_dir, data_dir)
    tsl.save(DataTree(), {}, False)
    for zxid in range(1, n + 1):
        tsl.append(TxnHeader(client_id=0, cxid=0, zxid=zxid, time=0, type=1),
                   CreateTxn(path=f"/n{zxid}", data=b"", acl=[], ephemeral=False, parent_cversion=zxid))
    tsl.commit()
    tsl.close()
    return n


def severe_then_exit(thread: str, code: int = 10) -> list[tuple[str, str, str, str]]:
    "Java's two last lines of a thread whose snapshot cannot be written (ZooKeeperServer.takeSnapshot)."
    return [("ERROR", thread, "ZooKeeperServer", SEVERE), ("ERROR", thread, "ServiceUtils", f"Exiting JVM with code {code}")]


@pytest.mark.parametrize("kind", KINDS)
def test_snapshot_of_a_new_database_that_cannot_be_written_exits_1_not_10(kind, tmp_path):
    """A new server's first snapshot, `snapshot.0` of its empty database, is written by `FileTxnSnapLog.restore`
    itself (an empty database it may trust, `zookeeper.db.autocreate`), not by `takeSnapshot`: when its name is
    taken the IOException leaves `loadData` before `takeSnapshot` is reached, and the standalone server ends as
    any failed start does, `Unexpected exception, exiting abnormally` and exit code 1 (UNEXPECTED_ERROR), with
    no `Severe unrecoverable error` (verified on Debian's Java 3.8.0).

    Reference: Java FileTxnSnapLog.restore (trustEmptyDB → save), ZooKeeperServerMain.main, ExitCode.UNEXPECTED_ERROR
    """
    server = ServerProcess(tmp_path / kind, {}, kind=kind)
    block_snapshot(server.data_dir / "version-2", 0)
    code, log = run_until_exit(server)
    assert code == 1, log[-3000:]
    lines = log_lines(log)
    assert not any(l[3] == SEVERE for l in lines), log[-3000:]
    # standalone's own main reports it, the exception on the lines that follow (not parsed into `lines`)
    assert ("ERROR", "ZooKeeperServerMain", "Unexpected exception, exiting abnormally") in \
        [(l[0], l[2], l[3]) for l in lines], log[-3000:]
    after = log[log.index("Unexpected exception, exiting abnormally"):].splitlines()[1]
    assert after == f"java.io.FileNotFoundException: {server.data_dir / 'version-2' / 'snapshot.0'} (Is a directory)", \
        log[-3000:]
    assert (lines[-1][0], lines[-1][2], lines[-1][3]) == ("ERROR", "ServiceUtils", "Exiting JVM with code 1"), log[-2000:]
    assert "Traceback" not in log


@pytest.mark.parametrize("kind", KINDS)
def test_snapshot_at_start_that_cannot_be_written_exits_10(kind, tmp_path):
    """A standalone server's `loadData` ends with `takeSnapshot`: a restarted server (a snapshot and a log to
    restore, so `restore` writes nothing) snapshots at its last zxid; if that file cannot be written (its name
    taken by a directory that is not empty) the main thread logs `Snapshotting: 0x3 to …`, `Severe
    unrecoverable error, exiting` with the IOException, and `Exiting JVM with code 10`
    (TXNLOG_ERROR_TAKING_SNAPSHOT): the process's last three lines.

    Reference: Java ZooKeeperServer.loadData, ZooKeeperServer.takeSnapshot, ExitCode.TXNLOG_ERROR_TAKING_SNAPSHOT
    """
    server = ServerProcess(tmp_path / kind, {}, kind=kind)
    last = data_dir_with_txns(server.data_dir, 3)
    snapshot = server.data_dir / "version-2" / f"snapshot.{last:x}"
    block_snapshot(snapshot.parent, last)
    code, log = run_until_exit(server)
    assert code == 10, log[-3000:]
    lines = log_lines(log)
    assert lines[-3:] == [("INFO", "main", "FileTxnSnapLog", f"Snapshotting: 0x{last:x} to {snapshot}"),
                          *severe_then_exit("main")], log[-3000:]
    assert f"java.io.FileNotFoundException: {snapshot} (Is a directory)" in log
    assert "Traceback" not in log


@pytest.mark.parametrize("kind", KINDS)
def test_snapshot_thread_that_cannot_write_its_snapshot_exits_10(kind, tmp_path):
    """With `-Dzookeeper.snapCount=2` the SyncRequestProcessor rolls the log and starts a `Snapshot Thread`
    after the second txn; the snapshot's name (here every name it could take, `snapshot.1`…`snapshot.1f`) is
    taken by a directory, so `takeSnapshot` fails in that thread: `Severe unrecoverable error, exiting`, then
    `Exiting JVM with code 10` from the same thread, and the process ends while the client writes.

    Reference: Java SyncRequestProcessor.run (Snapshot Thread), ZooKeeperServer.takeSnapshot, ExitCode.TXNLOG_ERROR_TAKING_SNAPSHOT
    """
    server = ServerProcess(tmp_path / kind, {}, kind=kind, jvm_flags=["-Dzookeeper.snapCount=2"])
    for zxid in range(1, 0x20):
        block_snapshot(server.data_dir / "version-2", zxid)
    client = KazooClient(hosts=server.hosts, timeout=10, connection_retry=None, command_retry=None)
    try:
        server.start()
        client.start(timeout=20)
        for i in range(20):            # bounded; the snapshot is due after two txns: the session and a create
            if server.proc.poll() is not None:
                break
            try:
                client.create(f"/w{i}", b"x")
            except KazooException:
                break                                       # the server went away under the request
        code = wait_exit(server)
    finally:
        client.stop()
        client.close()
        server.stop()
    log = server.logs()
    assert code == 10, log[-3000:]
    lines = log_lines(log)
    snap_thread = [l for l in lines if l[1] == "Snapshot Thread"]
    assert snap_thread[-2:] == severe_then_exit("Snapshot Thread"), log[-3000:]
    assert snap_thread[0][2] == "FileTxnSnapLog" and snap_thread[0][3].startswith("Snapshotting: 0x"), snap_thread
    assert [l[1] for l in lines if l[2] == "ServiceUtils"] == ["Snapshot Thread"]
    if kind == "zkref":                                     # (Java's other threads may still log while it exits)
        assert lines[-1] == snap_thread[-1], log[-2000:]
    assert "Traceback" not in log


@pytest.mark.parametrize("kind", KINDS)
def test_new_leaders_snapshot_that_cannot_be_written_exits_10(kind, tmp_path):
    """A new leader snapshots its database as `lead()` starts (`zk.loadData()` → `takeSnapshot`), in the
    discovery phase. Server 2 of a two-server ensemble has the newer data (zxid 0x3, so it is elected), and its
    `snapshot.3` cannot be written: the peer's thread logs `Severe unrecoverable error, exiting` and `Exiting
    JVM with code 10`, its last two lines, and the process ends with 10; server 1 is left looking.

    Reference: Java Leader.lead, ZooKeeperServer.loadData, ZooKeeperServer.takeSnapshot, ExitCode.TXNLOG_ERROR_TAKING_SNAPSHOT
    """
    q1, e1, q2, e2 = free_ports(4)
    config = {"tickTime": 500, "initLimit": 10, "syncLimit": 5,
              "server.1": f"127.0.0.1:{q1}:{e1}", "server.2": f"127.0.0.1:{q2}:{e2}"}
    one = ServerProcess(tmp_path / kind / "s1", config, myid=1, kind=kind)
    two = ServerProcess(tmp_path / kind / "s2", config, myid=2, kind=kind)
    last = data_dir_with_txns(two.data_dir, 3)
    block_snapshot(two.data_dir / "version-2", last)
    try:
        one.start(wait=False)
        two.start(wait=False)
        code = wait_exit(two)
    finally:
        two.stop()
        one.stop()
    log = two.logs()
    assert code == 10, log[-3000:]
    lines = log_lines(log)
    assert any(l[3].startswith("LEADING - LEADER ELECTION TOOK") for l in lines), log[-3000:]
    thread = peer_thread(lines)[-1][1]
    assert peer_thread(lines)[-2:] == severe_then_exit(thread), log[-3000:]
    assert [l[1] for l in lines if l[2] == "ServiceUtils"] == [thread]
    assert "Traceback" not in log


def diff_then_proposals_whose_snapshot_cannot_be_written(snap_dir: Path):
    "An empty DIFF sync, then the names a snapshot could take are blocked and four txns proposed and committed."
    def script(send, recv) -> None:
        handshake_and_diff(send, recv)
        (snap_dir / "snapshot.0").unlink(missing_ok=True)          # the start-up's restore wrote it
        for zxid in (0, *range(z(1, 0), z(1, 0x10))):
            block_snapshot(snap_dir, zxid)
        for counter in range(1, 5):
            send(PROPOSAL, z(1, counter), create_txn(z(1, counter), f"/p{counter}"))
            send(COMMIT, z(1, counter))
    return script


@pytest.mark.parametrize("kind", KINDS)
def test_followers_snapshot_thread_that_cannot_write_its_snapshot_exits_10(kind, tmp_path):
    """A follower's SyncRequestProcessor snapshots as a standalone server's does: with
    `-Dzookeeper.snapCount=2`, the txns a leader proposes after the sync start a `Snapshot Thread`, and a
    snapshot that cannot be written ends the follower's process from that thread: `Severe unrecoverable error,
    exiting`, then `Exiting JVM with code 10`.

    Reference: Java SyncRequestProcessor.run (Snapshot Thread), ZooKeeperServer.takeSnapshot, ExitCode.TXNLOG_ERROR_TAKING_SNAPSHOT
    """
    root = tmp_path / kind
    code, log, _ = follow_until_exit(diff_then_proposals_whose_snapshot_cannot_be_written(root / "data" / "version-2"),
                                  tmp_path, kind, jvm_flags=("-Dzookeeper.snapCount=2",))
    assert code == 10, log[-3000:]
    lines = log_lines(log)
    snap_thread = [l for l in lines if l[1] == "Snapshot Thread"]
    assert snap_thread[-2:] == severe_then_exit("Snapshot Thread"), log[-3000:]
    assert [l[1] for l in lines if l[2] == "ServiceUtils"] == ["Snapshot Thread"]
    assert "Traceback" not in log


def test_in_process_server_whose_snapshot_fails_logs_the_disabled_exit_and_serves_on(tmp_path, caplog):
    """Under LOG_ONLY, `requestSystemExit(10)` returns inside `takeSnapshot`, and Java's method goes on: it logs
    `Snapshot taken in N ms` and its caller carries on, so a server whose `Snapshot Thread` cannot write its
    snapshot keeps serving from its log. An in-process standalone server (`-Dzookeeper.snapCount=2`, every
    name a snapshot could take blocked) logs `Severe unrecoverable error, exiting`, `Fatal error, JVM should
    exit with code 10. Actually System.exit is disabled` and `Snapshot taken in …`, and every write of the
    client succeeds, before and after.

    Reference: Java ZooKeeperServer.takeSnapshot, ServiceUtils.LOG_ONLY, SyncRequestProcessor.run (Snapshot Thread)
    """
    from zkref.config import ServerConfig
    from zkref.server.main import ZooKeeperServerMain

    assert system_exit_procedure() is LOG_ONLY
    data = tmp_path / "data"
    for zxid in range(1, 0x20):
        block_snapshot(data / "version-2", zxid)
    port = free_ports(1)[0]
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(f"tickTime=2000\ndataDir={data}\nclientPort={port}\nclientPortAddress=127.0.0.1\n"
                   "admin.enableServer=false\n")
    config = ServerConfig({"zookeeper.snapCount": "2"})
    config.parse(str(cfg))
    disabled = "Fatal error, JVM should exit with code 10. Actually System.exit is disabled"

    async def scenario():
        main = ZooKeeperServerMain()
        task = asyncio.create_task(main.run_from_config(config))
        client = KazooClient(hosts=f"127.0.0.1:{port}", timeout=10)
        try:
            await until(lambda: main.started.is_set() or task.done(), 30, "the server to serve")
            await asyncio.to_thread(client.start, 20)
            for i in range(5):
                await asyncio.to_thread(client.create, f"/w{i}", b"x")
            await until(lambda: disabled in caplog.text, 30, "the snapshot thread's LOG_ONLY line")
            for i in range(5, 10):                          # the server serves on
                await asyncio.to_thread(client.create, f"/w{i}", b"x")
            children = await asyncio.to_thread(client.get_children, "/")
            assert sorted(c for c in children if c.startswith("w")) == sorted(f"w{i}" for i in range(10))
            assert main.zks.is_running()
        finally:
            await asyncio.to_thread(client.stop)
            client.close()
            main.request_shutdown()
            await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 30)

    with caplog.at_level(logging.INFO):
        asyncio.run(scenario())
    records = [(r.levelname, r.name, r.getMessage().split("\n")[0]) for r in caplog.records
               if r.name in ("ZooKeeperServer", "ServiceUtils")]
    severe = records.index(("ERROR", "ZooKeeperServer", SEVERE))
    assert records[severe + 1] == ("ERROR", "ServiceUtils", disabled)
    assert records[severe + 2][:2] == ("INFO", "ZooKeeperServer") and records[severe + 2][2].startswith("Snapshot taken in")
    assert not any(msg.startswith("Exiting JVM") for _, _, msg in records)


def test_in_process_leader_whose_snapshot_fails_logs_the_disabled_exit_and_leads_on(tmp_path, caplog):
    """Under LOG_ONLY a new leader whose first snapshot cannot be written goes on as Java's `lead()` does after
    `takeSnapshot` returns: `Severe unrecoverable error, exiting`, `Fatal error, JVM should exit with code 10.
    Actually System.exit is disabled`, `Snapshot taken in N ms`, and then it leads: server 1 (a `python -m
    zkref` process) follows it and a client's write through the leader succeeds.

    Reference: Java Leader.lead, ZooKeeperServer.takeSnapshot, ServiceUtils.LOG_ONLY
    """
    assert system_exit_procedure() is LOG_ONLY
    q1, e1, q2, e2 = free_ports(4)
    config = {"tickTime": 500, "initLimit": 10, "syncLimit": 5,
              "server.1": f"127.0.0.1:{q1}:{e1}", "server.2": f"127.0.0.1:{q2}:{e2}"}
    one = ServerProcess(tmp_path / "s1", config, myid=1)
    two = ServerProcess(tmp_path / "s2", config, myid=2)       # its zoo.cfg and data; run here, not as a process
    last = data_dir_with_txns(two.data_dir, 3)
    block_snapshot(two.data_dir / "version-2", last)
    peer_config = QuorumPeerConfig()
    peer_config.parse(str(two.cfg_path))
    disabled = "Fatal error, JVM should exit with code 10. Actually System.exit is disabled"

    async def scenario():
        main = QuorumPeerMain()
        task = asyncio.create_task(main.run_from_config(peer_config))
        client = KazooClient(hosts=two.hosts, timeout=10)
        try:
            await until(lambda: disabled in caplog.text, 60, "the leader's LOG_ONLY line")
            await until(lambda: main.quorum_peer.peer_state == ServerState.LEADING
                        and "Have quorum of supporters" in caplog.text, 60, "server 1 to follow")
            await asyncio.to_thread(client.start, 30)
            await asyncio.to_thread(client.create, "/after", b"x")
            stat = (await asyncio.to_thread(client.exists, "/n3"))
            assert stat is not None and stat.czxid == last           # the restored data is served
        finally:
            await asyncio.to_thread(client.stop)
            client.close()
            await main.shutdown()
            await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 60)

    with caplog.at_level(logging.INFO):
        try:
            one.start(wait=False)
            asyncio.run(scenario())
        finally:
            one.stop()
    records = [(r.levelname, r.name, r.getMessage().split("\n")[0]) for r in caplog.records
               if r.name in ("ZooKeeperServer", "ServiceUtils")]
    severe = records.index(("ERROR", "ZooKeeperServer", SEVERE))
    assert records[severe + 1] == ("ERROR", "ServiceUtils", disabled)
    assert records[severe + 2][:2] == ("INFO", "ZooKeeperServer") and records[severe + 2][2].startswith("Snapshot taken in")
    assert not any(msg.startswith("Exiting JVM") for _, _, msg in records)
