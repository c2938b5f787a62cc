"""Zab under failure: a leader killed under a write load, quorum loss, bad input on the quorum port.

Each server is a real process (conftest's `Ensemble`): zkref through a short launcher (`zkref.main` with the Zab
trace recorded), or the real Java 3.8 server (Debian package) where a test compares zkref with what Java does.
zkref processes record their Zab packets to a JSON-lines file, so a test can check the merged trace with
`zkref.quorum.zab.trace_violations` (Zab.tla's invariants). `Ensemble(trace=False)` runs `python -m zkref zoo.cfg`
instead, as a user would (bench/zab_bench.py measures that).
"""
from __future__ import annotations

import json
import signal
import socket
import struct
import threading
import time
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError

import conftest
from conftest import four_letter_word, java_available, wait_for
from zkref.quorum.zab import (ACKEPOCH, DIFF, FOLLOWERINFO, LEADERINFO, LEARNER_PROTOCOL_VERSION, SNAP, TRUNC,
                              ZabEvent, epoch_of, make_zxid, packet, packet_bytes, trace_violations)

pytestmark = pytest.mark.timeout(300)
TICK_MS = 500

LAUNCHER = """
import dataclasses, json, sys
import zkref.quorum.peer as P
from zkref.quorum.learner import zab_roles

class TraceFile(list):
    "ZabEvents written as JSON lines as they happen (so a SIGKILLed server's trace survives)."
    def __init__(self, path):
        super().__init__()
        self.f = open(path, "a", buffering=1)
    def append(self, e):
        self.f.write(json.dumps(dataclasses.asdict(e)) + "\\n")

_init = P.QuorumPeer.__init__
def init(self, *a, **k):
    _init(self, *a, **k)
    self.role_factories = zab_roles()
    self.zab_trace = TraceFile(sys.argv[1])
P.QuorumPeer.__init__ = init
from zkref.main import main
sys.exit(main(sys.argv[2:]))
"""


class Ensemble(conftest.Ensemble):
    """conftest's three servers, each `zkref` or `java`; a zkref server runs through LAUNCHER, recording its Zab
    trace to s<i>/trace.jsonl (or, with `trace=False`, as `python -m zkref zoo.cfg`)."""

    def __init__(self, root: Path, kinds=("zkref", "zkref", "zkref"), trace: bool = True, **extra):
        self.traced = trace
        (root / "launch.py").write_text(LAUNCHER)
        super().__init__(root, kinds, tick_ms=TICK_MS, **extra)

    def zkref_args(self, i: int) -> list[str]:
        if not self.traced:
            return super().zkref_args(i)
        return [str(self.root / "launch.py"), str(self.root / f"s{i}" / "trace.jsonl")]

    def trace(self) -> list[ZabEvent]:
        "Every zkref server's recorded Zab events, merged in time order (one machine: one monotonic clock)."
        events = []
        for i, kind in self.kinds.items():
            p = self.root / f"s{i}" / "trace.jsonl"
            if kind == "zkref" and p.exists():
                for line in p.read_text().splitlines():
                    try:
                        events.append(ZabEvent(**json.loads(line)))
                    except ValueError:          # the last line of a SIGKILLed server may be cut short
                        pass
        return sorted(events, key=lambda e: e.time)


def kazoo(hosts: str, timeout: float = 10, **options) -> KazooClient:
    "A started kazoo client; `options` go to KazooClient (e.g. connection_retry)."
    zk = KazooClient(hosts=hosts, timeout=timeout, **options)
    zk.start(timeout=30)
    return zk


def children_on(e: Ensemble, i: int, path: str) -> set[str]:
    "The children of `path` as server `i` has them, after a `sync` (so everything committed before is there)."
    zk = kazoo(e.hosts([i]))
    try:
        zk.sync(path)
        return set(zk.get_children(path))
    finally:
        zk.stop()
        zk.close()


class Writer(threading.Thread):
    "Creates /load/nNNNNN one after another through any server, recording each acknowledged create."

    def __init__(self, hosts: str, limit: int = 3000, seconds: float = 60, client_options: dict | None = None):
        super().__init__(daemon=True)
        self.hosts, self.limit, self.seconds = hosts, limit, seconds
        self.client_options = dict(client_options or {})     # for KazooClient
        self.acked: list[str] = []
        self.failed = 0
        self.last_error = ""                                    # the latest failure, for a test's message
        self.halt = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.seconds
        zk = kazoo(self.hosts, **self.client_options)
        zk.ensure_path("/load")
        try:
            for n in range(self.limit):
                if self.halt.is_set() or time.monotonic() > deadline:
                    break
                name = f"n{n:05d}"
                try:
                    zk.create_async(f"/load/{name}", b"v").get(timeout=10)
                    self.acked.append(name)
                except (KazooException, KazooTimeoutError) as ex:
                    # connection loss or no answer in time: kazoo moves to another server by itself; this
                    # create's outcome is unknown, so it is not counted as acknowledged
                    self.failed += 1
                    self.last_error = f"{type(ex).__name__} {ex} (client state {zk.state})"
                    wait_for(lambda: zk.connected or self.halt.is_set() or time.monotonic() > deadline, 60, 0.05,
                             what="the writer to reconnect")
        finally:
            zk.stop()
            zk.close()


def test_leader_sigkill_under_write_load_loses_no_acknowledged_write(tmp_path):
    """Three zkref processes take a steady stream of creates (at most 3000, at most 60 s); the leader is
    SIGKILLed mid-load. The two others elect a new leader in a higher epoch and writes resume; after `sync`,
    every create a client saw acknowledged is on every live server, and on the killed server once it
    restarts and catches up. The merged Zab trace of all three servers violates none of Zab.tla's invariants.
    Reference: Zab.tla Integrity, Agreement, TotalOrder, PrimaryIntegrity (committed txns survive a leader
    change); Java Leader.lead, Follower.followLeader, LearnerHandler.syncFollower"""
    e = Ensemble(tmp_path)
    try:
        e.start()
        leader = e.wait_formed()
        w = Writer(e.hosts(), limit=3000, seconds=60)
        w.start()
        wait_for(lambda: len(w.acked) >= 300 or not w.is_alive(), 60, what="the writer to get going")
        before = len(w.acked)
        e.stop(leader, signal.SIGKILL)
        rest = [i for i in e.kinds if i != leader]
        new_leader = e.wait_formed(rest)
        wait_for(lambda: len(w.acked) >= before + 300 or not w.is_alive(), 60, what="writes to resume")
        w.halt.set()
        w.join(60)
        assert not w.is_alive()
        assert len(w.acked) > before, "no write was acknowledged after the leader was killed"
        acked = set(w.acked)
        for i in rest:
            found = children_on(e, i, "/load")
            print(f"server {i}: acknowledged {len(acked)}, found {len(found & acked)} "
                  f"({len(found)} in all, {w.failed} creates with unknown outcome)")
            assert acked <= found, f"server {i} lost acknowledged writes: {sorted(acked - found)[:10]}"

        e.start(leader)
        e.wait_formed()
        found = children_on(e, leader, "/load")
        print(f"restarted server {leader}: acknowledged {len(acked)}, found {len(found & acked)}")
        assert acked <= found
        zk = kazoo(e.hosts([new_leader]))
        try:
            assert epoch_of(zk.exists(f"/load/{w.acked[-1]}").czxid) >= 2        # written in the new epoch
        finally:
            zk.stop()
            zk.close()
    finally:
        e.stop_all()
    trace = e.trace()
    assert any(ev.type == "PROPOSAL" for ev in trace)
    assert trace_violations(trace) == []


def lone_server_behaviour(e: Ensemble, lone: int, zk_before: KazooClient) -> dict:
    "What a client sees from the one server left of three: srvr's answer, a write, a new session."
    seen = {"srvr": four_letter_word(e.client(lone), "srvr").strip()}
    try:
        zk_before.create_async("/during-loss", b"x").get(timeout=8)   # kazoo queues it while it reconnects
        seen["write"] = "ok"
    except (KazooException, KazooTimeoutError) as ex:
        seen["write"] = type(ex).__name__
    zk = KazooClient(hosts=e.hosts([lone]), timeout=4)
    try:
        zk.start(timeout=6)
        seen["new session"] = "connected"
    except KazooTimeoutError:
        seen["new session"] = "timed out"
    finally:
        zk.stop()
        zk.close()
    return seen


@pytest.mark.timeout(200)
@pytest.mark.parametrize("kind", ["zkref", pytest.param("java", marks=pytest.mark.java)])
def test_quorum_loss_stops_service_until_the_quorum_returns(kind, tmp_path):
    """Two of three servers stop: the last one cannot form a quorum and, without read-only mode, stops serving
    (Java 3.8: srvr answers "This ZooKeeper instance is not currently serving requests", a write from a
    connected client fails with connection loss, a new session cannot be made). zkref and Java are run
    through the same steps and must show the same. When one server comes back the two elect a leader and
    writes succeed again, with the data from before the loss.
    Reference: Zab.tla (no leader without a quorum: LeaderProcessCEPOCH needs a quorum); Java
    QuorumPeer.run (LOOKING shuts the ZooKeeperServer down), NIOServerCnxn "ZooKeeperServer not running",
    FourLetterCommands ZK_NOT_SERVING; ZooKeeper Administrator's Guide, "readonlymode.enabled\""""
    if kind == "java" and not java_available():
        pytest.skip("Java ZooKeeper is not installed")
    e = Ensemble(tmp_path, (kind,) * 3)
    try:
        e.start()
        leader = e.wait_formed()
        zk = kazoo(e.hosts())
        try:
            zk.create("/before", b"1")
            lone = next(i for i in e.kinds if i != leader)
            for i in [i for i in e.kinds if i != lone]:
                e.stop(i)
            wait_for(lambda: e.mode(lone) is None, 60, what="the lone server to stop serving")
            seen = lone_server_behaviour(e, lone, zk)
            print(kind, seen)
            assert seen["srvr"] == "This ZooKeeper instance is not currently serving requests"
            assert seen["write"] in ("ConnectionLoss", "ConnectionLossException", "SessionExpiredError",
                                     "KazooTimeoutError"), seen
            assert seen["new session"] == "timed out"

            back = next(i for i in e.kinds if i not in (lone,))
            e.start(back)
            e.wait_formed([lone, back])
            wait_for(lambda: zk.connected, 60, what="the client to reconnect")
            zk.create("/after", b"2")
            assert zk.get("/before")[0] == b"1"
        finally:
            zk.stop()
            zk.close()
    finally:
        e.stop_all()
    if kind == "zkref":
        assert trace_violations(e.trace()) == []


def quorum_talk(port: int, data: bytes, replies: int = 0, timeout: float = 20) -> tuple[list, bool]:
    """Send raw bytes to a quorum port; read up to `replies` QuorumPackets back, then whether the server
    closed the connection (EOF before `timeout`)."""
    got = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        f = s.makefile("rb")
        for _ in range(replies):
            head = f.read(12)
            if len(head) < 12:
                return got, True
            ptype, zxid = struct.unpack(">iq", head)
            (n,) = struct.unpack(">i", f.read(4))
            body = f.read(n) if n > 0 else None
            (auth,) = struct.unpack(">i", f.read(4))
            got.append((ptype, zxid, body))
        if replies:
            return got, False
        try:
            closed = s.recv(1) == b""
        except (socket.timeout, ConnectionResetError):
            closed = False
        return got, closed


def learner_info(sid: int) -> bytes:
    "LearnerInfo: sid, protocol version, config version. Java: Learner.registerWithLeader"
    return struct.pack(">qiq", sid, LEARNER_PROTOCOL_VERSION, 0)


@pytest.mark.parametrize("kind", ["zkref", pytest.param("java", marks=pytest.mark.java)])
def test_bad_input_on_the_quorum_port_drops_the_learner_and_the_ensemble_serves_on(kind, tmp_path):
    """The leader's quorum port gets garbage: a first packet of an unknown type (the leader logs "First packet
    … is not FOLLOWERINFO or OBSERVERINFO!" and closes), a truncated packet (closed, "GOODBYE"; also when the sender
    stays connected: the read times out after initLimit ticks), a
    FOLLOWERINFO from an epoch far in the future (an established leader answers LEADERINFO with its own epoch,
    not a new one: the epoch is fixed once a quorum agreed on it) and one from the past (answered with its
    epoch, then a DIFF/SNAP/TRUNC sync that the fake learner drops). zkref and Java are run through the same
    steps and must answer the same. Afterwards every znode is still there, the epoch is unchanged and the
    ensemble takes writes.
    Reference: Java LearnerHandler.run (first-packet check, soTimeout = initLimit × tickTime, catch IOException →
    GOODBYE), Leader.getEpochToPropose
    (returns the established epoch), Leader.waitForEpochAck (electionFinished); Zab.tla Integrity"""
    if kind == "java" and not java_available():
        pytest.skip("Java ZooKeeper is not installed")
    e = Ensemble(tmp_path, (kind,) * 3)
    try:
        e.start()
        leader = e.wait_formed()
        zk = kazoo(e.hosts())
        try:
            for n in range(20):
                zk.create(f"/keep{n}", b"k")
            epoch = epoch_of(zk.exists("/keep19").czxid)
            port = e.quorum(leader)

            got, closed = quorum_talk(port, packet_bytes(packet(99, 0, b"junk")))
            assert closed and got == []
            wait_for(lambda: "is not FOLLOWERINFO or OBSERVERINFO!" in e.log(leader), 20, what="the leader's log line")

            head = struct.pack(">iqi", FOLLOWERINFO, make_zxid(epoch, 0), 100) + b"short"   # 5 of 100 bytes
            with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
                s.sendall(head)
                s.shutdown(socket.SHUT_WR)
                assert s.recv(1) == b""                    # the leader drops the half-sent learner
            wait_for(lambda: "GOODBYE" in e.log(leader), 20, what="the leader to log GOODBYE")
            with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
                s.sendall(head)                            # and stays connected, sending nothing more
                assert s.recv(1) == b""                    # dropped after initLimit ticks, not kept forever

            future = packet_bytes(packet(FOLLOWERINFO, make_zxid(epoch + 1000, 0), learner_info(99)))
            got, _ = quorum_talk(port, future, replies=1)
            assert [(t, epoch_of(z)) for t, z, _ in got] == [(LEADERINFO, epoch)]   # not epoch + 1001

            past = packet_bytes(packet(FOLLOWERINFO, 0, learner_info(98)))
            ackepoch = packet_bytes(packet(ACKEPOCH, 0, struct.pack(">i", 0)))
            got, _ = quorum_talk(port, past + ackepoch, replies=2)
            assert got[0][0] == LEADERINFO and epoch_of(got[0][1]) == epoch
            assert got[1][0] in (DIFF, SNAP, TRUNC)

            assert e.mode(leader) == "leader"
            zk.create("/after-garbage", b"a")
            assert epoch_of(zk.exists("/after-garbage").czxid) == epoch
        finally:
            zk.stop()
            zk.close()
        for i in e.kinds:
            assert {f"keep{n}" for n in range(20)} | {"after-garbage"} <= children_on(e, i, "/")
        assert e.modes() == ["follower", "follower", "leader"]
    finally:
        e.stop_all()
    print(kind, "leader log:", [l for l in e.log(leader).splitlines() if "GOODBYE" in l or "First packet" in l][:4])
