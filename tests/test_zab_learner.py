"""The learner's side of Zab against scripted leaders: handshake rules, sync modes, bad input, exits."""
from __future__ import annotations

import asyncio
import logging
import struct
from pathlib import Path

import pytest

from zkref.config import QuorumMaj
from zkref.jute import CreateTxn, TxnHeader
from zkref.persistence import FileTxnSnapLog, marshall_txn_entry
from zkref.quorum.learner import Follower, LearnerExit, Observer
from zkref.quorum.zab import (ACK, ACKEPOCH, COMMIT, DIFF, FOLLOWERINFO, INFORM, LEADERINFO, NEWLEADER,
                              OBSERVERINFO, PING, PROPOSAL, SNAP, UPTODATE, ZabPeer, make_zxid as z, packet,
                              packet_bytes, read_packet, snapshot_body)
from zkref.zkdatabase import ZKDatabase

pytestmark = pytest.mark.timeout(60)


def create(zxid, path):
    return marshall_txn_entry(TxnHeader(client_id=0, cxid=0, zxid=zxid, time=0, type=1),
                              CreateTxn(path=path, data=b"", acl=[], ephemeral=False, parent_cversion=1))


class Leader:
    """A scripted leader: `script(reader, send)` runs for the one learner that connects."""
    def __init__(self, script):
        self.script, self.received = script, []

    async def handle(self, reader, writer):
        def send(t, zx, d=None):
            writer.write(packet_bytes(packet(t, zx, d)))
        async def recv():
            qp = await read_packet(reader)
            self.received.append(qp)
            return qp
        async def until_closed():
            "Keep reading (and recording) until the learner closes the connection."
            try:
                while True:
                    await recv()
            except (EOFError, ConnectionError):
                pass
        writer.until_closed = until_closed
        try:
            await self.script(recv, send, writer)
        finally:
            writer.close()


async def run_learner(tmp: Path, script, cls=Follower, accepted=0, current=0, tick_ms=200):
    leader = Leader(script)
    server = await asyncio.start_server(leader.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    qv = QuorumMaj.from_properties({"server.1": f"127.0.0.1:{port}:1", "server.2": "127.0.0.1:2:3"})
    files = FileTxnSnapLog(tmp, tmp)
    db = ZKDatabase(files)
    db.load_data_base()
    peer = ZabPeer(myid=2, quorum_verifier=qv, txn_factory=files, zk_db=db, tick_time=tick_ms, init_limit=5,
                   sync_limit=2, leader_id=1, accepted_epoch=accepted, current_epoch=current, zab_trace=[])
    learner = cls(peer)
    error = None
    try:
        await asyncio.wait_for(learner.run(), 30)
    except LearnerExit as e:
        error = e
    finally:
        await learner.shutdown("test")
        server.close()
        await server.wait_closed()
        db.close()
    return peer, leader, error


async def handshake(recv, send, epoch=1):
    await recv()
    send(LEADERINFO, z(epoch, 0), struct.pack(">i", 0x10000))
    return await recv()


def test_new_epoch_is_accepted_and_acked_with_current_epoch(tmp_path):
    """On LEADERINFO with a newer epoch the learner writes acceptedEpoch and ACKEPOCHs its current epoch and
    last logged zxid. Reference: Java Learner.registerWithLeader; Zab.tla FollowerProcessNEWEPOCH"""
    async def script(recv, send, w):
        await handshake(recv, send, epoch=5)
    peer, leader, _ = asyncio.run(run_learner(tmp_path, script, accepted=3, current=2))
    info, ackepoch = leader.received
    assert (info.type, info.zxid) == (FOLLOWERINFO, z(3, 0))
    assert struct.unpack(">qiq", info.data) == (2, 0x10000, 0)
    assert (ackepoch.type, ackepoch.zxid, struct.unpack(">i", ackepoch.data)[0]) == (ACKEPOCH, 0, 2)
    assert peer.accepted_epoch == 5 and (tmp_path / "version-2" / "acceptedEpoch").read_text().strip() == "5"
    assert peer.current_epoch == 2


def test_same_epoch_is_acked_with_minus_one(tmp_path):
    """An epoch already accepted is acknowledged with -1 so it is not counted twice.
    Reference: Java Learner.registerWithLeader"""
    async def script(recv, send, w):
        await handshake(recv, send, epoch=4)
    peer, leader, _ = asyncio.run(run_learner(tmp_path, script, accepted=4, current=3))
    assert struct.unpack(">i", leader.received[1].data)[0] == -1


def test_older_epoch_is_refused(tmp_path, caplog):
    """A leader proposing an epoch older than the accepted one is refused: no ACKEPOCH, the learner leaves.
    Reference: Java Learner.registerWithLeader ("Leaders epoch, … is less than accepted epoch, …")"""
    async def script(recv, send, w):
        await handshake(recv, send, epoch=2)
    with caplog.at_level(logging.WARNING):
        peer, leader, _ = asyncio.run(run_learner(tmp_path, script, accepted=4, current=3))
    assert [p.type for p in leader.received] == [FOLLOWERINFO]
    assert "Leaders epoch, 2 is less than accepted epoch, 4" in caplog.text
    assert peer.accepted_epoch == 4


def test_unexpected_sync_packet_exits_13(tmp_path, caplog):
    """After ACKEPOCH only DIFF, SNAP or TRUNC may come; anything else is Java's exit 13
    (QUORUM_PACKET_ERROR). Reference: Java Learner.syncWithLeader ("Got unexpected packet from leader")"""
    async def script(recv, send, w):
        await handshake(recv, send)
        send(UPTODATE, -1)
        await w.until_closed()
    with caplog.at_level(logging.ERROR):
        _, _, error = asyncio.run(run_learner(tmp_path, script))
    assert error is not None and error.code == 13
    assert "Got unexpected packet from leader: UPTODATE ffffffffffffffff null, exiting ... " in caplog.text


def test_commit_of_the_wrong_zxid_exits_12(tmp_path):
    """In broadcast a COMMIT must name the oldest pending txn, else Java exits with 12
    (UNMATCHED_TXN_COMMIT). Reference: Java FollowerZooKeeperServer.commit"""
    async def script(recv, send, w):
        await handshake(recv, send)
        send(DIFF, 0); send(NEWLEADER, z(1, 0)); await recv()
        send(UPTODATE, -1); await recv()
        send(PROPOSAL, z(1, 1), create(z(1, 1), "/a")); send(PROPOSAL, z(1, 2), create(z(1, 2), "/b"))
        send(COMMIT, z(1, 2))
        await w.until_closed()
    _, _, error = asyncio.run(run_learner(tmp_path, script))
    assert error is not None and error.code == 12 and "but next pending txn 0x100000001" in str(error)


def test_snap_without_signature_drops_the_leader(tmp_path, caplog):
    """A SNAP whose stream does not end with "BenWasHere" is refused ("Missing signature").
    Reference: Java Learner.syncWithLeader"""
    async def script(recv, send, w):
        await handshake(recv, send)
        send(SNAP, z(1, 0))
        body = snapshot_body(ZKDatabase(None))
        w.write(body[:-len(b"BenWasHere")] + b"BenWasThere"[:10])
        await w.until_closed()
    with caplog.at_level(logging.ERROR):
        peer, _, _ = asyncio.run(run_learner(tmp_path, script))
    assert "Missing signature. Got BenWasTher" in caplog.text
    assert peer.current_epoch == 0


def test_silent_leader_times_out(tmp_path, caplog):
    """A leader that says nothing for the socket timeout (tickTime × initLimit during sync) is given up.
    Reference: Java Learner.connectToLeader (soTimeout), Follower.followLeader"""
    async def script(recv, send, w):
        await handshake(recv, send)
        await w.until_closed()                  # the learner gives up after its read timeout
    with caplog.at_level(logging.WARNING):
        peer, _, _ = asyncio.run(run_learner(tmp_path, script, tick_ms=100))
    assert "Exception when following the leader" in caplog.text and "Read timed out" in caplog.text


def test_truncated_packet_drops_the_leader(tmp_path, caplog):
    """A connection that ends inside a packet ends the role (logged), never a hang.
    Reference: Java Follower.followLeader (EOFException → "Exception when following the leader")"""
    async def script(recv, send, w):
        await recv()
        w.write(packet_bytes(packet(LEADERINFO, z(1, 0), struct.pack(">i", 0x10000)))[:9])
    with caplog.at_level(logging.WARNING):
        asyncio.run(run_learner(tmp_path, script))
    assert "Exception when following the leader\njava.io.EOFException" in caplog.text


def test_diff_before_newleader_is_logged_not_applied_until_uptodate(tmp_path):
    """In DIFF mode proposals received during sync are appended and fsynced at NEWLEADER, ACKed after the
    UPTODATE ack, then committed; currentEpoch is written before the NEWLEADER ack.
    Reference: Java Learner.syncWithLeader (ZOOKEEPER-3911); Zab.tla FollowerProcessNEWLEADER"""
    seen = {}
    async def script(recv, send, w):
        await handshake(recv, send)
        send(DIFF, z(1, 1)); send(PROPOSAL, z(1, 1), create(z(1, 1), "/a")); send(COMMIT, z(1, 1))
        send(NEWLEADER, z(1, 0))
        ack = await recv()
        seen["epoch_at_ack"] = (tmp_path / "version-2" / "currentEpoch").read_text().strip()
        seen["logs_at_ack"] = sorted(p.name for p in (tmp_path / "version-2").glob("log.*"))
        send(UPTODATE, -1)
        seen["after"] = [await recv(), await recv()]
        send(PING, z(1, 1))
        seen["ping"] = await recv()
    peer, leader, _ = asyncio.run(run_learner(tmp_path, script))
    assert seen["epoch_at_ack"] == "1" and seen["logs_at_ack"] == ["log.100000001"]
    assert [(p.type, p.zxid) for p in seen["after"]] == [(ACK, z(1, 0)), (ACK, z(1, 1))]
    assert (seen["ping"].type, seen["ping"].zxid, seen["ping"].data) == (PING, z(1, 1), b"")
    assert peer.zk_db.get_node("/a") is not None


def test_observer_applies_inform_without_acking(tmp_path):
    """An observer registers with OBSERVERINFO, applies INFORM packets (committed txns) and sends no ACK
    for them. Reference: Java Observer.processPacket, ObserverZooKeeperServer.commitRequest"""
    async def script(recv, send, w):
        await handshake(recv, send)
        send(DIFF, 0); send(NEWLEADER, z(1, 0)); await recv()
        send(UPTODATE, -1); await recv()
        send(INFORM, z(1, 1), create(z(1, 1), "/o"))
        send(PING, z(1, 1))
        await recv()
    peer, leader, _ = asyncio.run(run_learner(tmp_path, script, cls=Observer))
    assert leader.received[0].type == OBSERVERINFO
    assert [p.type for p in leader.received[2:]] == [ACK, ACK, PING]   # NEWLEADER ack, UPTODATE ack, ping
    assert peer.zk_db.get_node("/o") is not None


def test_disk_failure_in_the_sync_thread_ends_the_follower_with_exit_1(tmp_path, caplog, monkeypatch):
    """If writing the txn log fails in broadcast, Java's SyncThread dies with "Severe unrecoverable error"
    and the server goes to ERROR (ZooKeeperCriticalThread: "Thread SyncThread:N exits, error code 1"; the JVM
    does not exit), so the role ends; zkref's follower ends with LearnerExit(1) (no exit code) and never ACKs the txn.
    (The disk error is injected: once the broadcast PROPOSAL is appended, ZKDatabase.commit raises ENOSPC.)
    Reference: Java SyncRequestProcessor.run, ZooKeeperCriticalThread.handleException"""
    async def script(recv, send, w):
        await handshake(recv, send)
        send(DIFF, 0); send(NEWLEADER, z(1, 0)); await recv()
        send(UPTODATE, -1); await recv()
        send(PROPOSAL, z(1, 1), create(z(1, 1), "/a"))
        await w.until_closed()

    broken = []
    append, commit = ZKDatabase.append, ZKDatabase.commit
    def failing_append(self, hdr, txn=None, digest=None):
        if hdr.zxid == z(1, 1):
            broken.append(self)
        return append(self, hdr, txn, digest)
    def failing_commit(self):
        if self in broken:
            raise OSError(28, "No space left on device")
        return commit(self)
    monkeypatch.setattr(ZKDatabase, "append", failing_append)
    monkeypatch.setattr(ZKDatabase, "commit", failing_commit)
    with caplog.at_level(logging.ERROR):
        peer, leader, error = asyncio.run(run_learner(tmp_path, script))
    assert error is not None and error.code == 1
    assert "Severe unrecoverable error, from thread : SyncThread:2" in caplog.text
    assert not any(p.type == ACK and p.zxid == z(1, 1) for p in leader.received)
