"""The leader's side of Zab against scripted learners: epoch rules, handshake errors, bad input, observers."""
from __future__ import annotations

import asyncio
import logging
import socket
import struct
from pathlib import Path

import pytest

from conftest import free_ports, until
from zkref.config import QuorumMaj
from zkref.jute import CreateTxn, LearnerInfo
from zkref.persistence import FileTxnSnapLog
from zkref.quorum.leader import Leader
from zkref.quorum.learner import Follower, Observer
from zkref.quorum.zab import (ACK, ACKEPOCH, DIFF, FOLLOWERINFO, LEADERINFO, NEWLEADER, PING, UPTODATE, ZabPeer,
                              make_zxid as z, packet, packet_bytes, read_packet,
                              trace_violations)
from zkref.zkdatabase import ZKDatabase

pytestmark = pytest.mark.timeout(60)


def ensemble(n=3, observers=()):
    ports = free_ports(2 * n)
    return QuorumMaj.from_properties({f"server.{i}": f"127.0.0.1:{ports[2 * i - 2]}:{ports[2 * i - 1]}"
                                      + (":observer" if i in observers else "") for i in range(1, n + 1)})


def zab_peer(tmp: Path, myid: int, qv, accepted=0, current=0, init_limit=10, leader_id=1) -> ZabPeer:
    files = FileTxnSnapLog(tmp / f"s{myid}", tmp / f"s{myid}")
    db = ZKDatabase(files)
    db.load_data_base()
    return ZabPeer(myid=myid, quorum_verifier=qv, txn_factory=files, zk_db=db, tick_time=100, init_limit=init_limit,
                   sync_limit=5, leader_id=leader_id, accepted_epoch=accepted, current_epoch=current, zab_trace=[])


async def connect(leader_peer):
    host, port = leader_peer.quorum_verifier.all_members[leader_peer.myid].addr[0]
    for _ in range(200):
        try:
            return await asyncio.open_connection(host, port)
        except OSError:
            await asyncio.sleep(0.02)
    raise TimeoutError("leader never listened")


def info(sid, version=0x10000):
    return LearnerInfo(serverid=sid, protocol_version=version, config_version=0).to_bytes()


async def sync_to_newleader(r, w) -> list:
    "A learner's side of the sync, as sid 2: FOLLOWERINFO, ACKEPOCH, then every packet up to NEWLEADER (returned)."
    w.write(packet_bytes(packet(FOLLOWERINFO, z(0, 0), info(2))))
    await read_packet(r)
    w.write(packet_bytes(packet(ACKEPOCH, 0, struct.pack(">i", 0))))
    got = [await read_packet(r)]
    while got[-1].type != NEWLEADER:
        got.append(await read_packet(r))
    return got


async def with_leader(tmp, qv, script, accepted=0, current=0, init_limit=10):
    lp = zab_peer(tmp, 1, qv, accepted, current, init_limit)
    leader = Leader(lp)
    task = leader.run_task = asyncio.ensure_future(leader.run())
    try:
        return await script(leader, lp)
    finally:
        await leader.shutdown("test over")
        await asyncio.gather(task, return_exceptions=True)
        lp.zk_db.close()


def test_new_epoch_is_one_more_than_any_accepted_epoch(tmp_path):
    """The leader proposes max(acceptedEpoch of itself and the connecting quorum) + 1, writes it as its
    acceptedEpoch once a quorum connected, and currentEpoch after the quorum's ACKEPOCHs.
    Reference: Java Leader.getEpochToPropose, Leader.lead; Zab.tla LeaderProcessCEPOCH, LeaderProcessACKEPOCH"""
    async def script(leader, lp):
        r, w = await connect(lp)
        w.write(packet_bytes(packet(FOLLOWERINFO, z(7, 0), info(2))))
        li = await read_packet(r)
        w.write(packet_bytes(packet(ACKEPOCH, 0, struct.pack(">i", 2))))   # current epoch 2, as the leader's
        first_sync = await read_packet(r)
        w.close()
        await until(lambda: lp.current_epoch == 8)
        return li, first_sync
    li, first_sync = asyncio.run(with_leader(tmp_path, ensemble(), script, accepted=2, current=2))
    assert (li.type, li.zxid, struct.unpack(">i", li.data)[0]) == (LEADERINFO, z(8, 0), 0x10000)
    assert (tmp_path / "s1/version-2/acceptedEpoch").read_text().strip() == "8"
    assert (tmp_path / "s1/version-2/currentEpoch").read_text().strip() == "8"
    assert first_sync.type == DIFF                            # both at zxid 0: an empty DIFF


def test_first_packet_must_be_followerinfo(tmp_path, caplog):
    """A learner whose first packet is not FOLLOWERINFO/OBSERVERINFO is logged and dropped; the log line prints
    the packet as jute's QuorumPacket.toString() (CSV form: type, zxid in decimal, data, authinfo vector, and the
    record's trailing newline), not as packetToString.
    Reference: Java LearnerHandler.run ("First packet {} is not FOLLOWERINFO or OBSERVERINFO!", qp.toString()),
    ToStringOutputArchive"""
    async def script(leader, lp):
        r, w = await connect(lp)
        w.write(packet_bytes(packet(PING, 5)))
        rest = await r.read()
        return rest
    with caplog.at_level(logging.INFO):
        rest = asyncio.run(with_leader(tmp_path, ensemble(), script))
    assert rest == b""
    assert "First packet 5,5,,v{}\n is not FOLLOWERINFO or OBSERVERINFO!" in caplog.text
    assert "******* GOODBYE /127.0.0.1:" in caplog.text


def test_second_packet_must_be_ackepoch(tmp_path, caplog):
    """After LEADERINFO the learner must answer ACKEPOCH; anything else is logged as jute's QuorumPacket.toString()
    (data bytes as signed hex) and the connection closes.
    Reference: Java LearnerHandler.run ("{} is not ACKEPOCH", ackEpochPacket.toString()), ToStringOutputArchive"""
    async def script(leader, lp):
        r, w = await connect(lp)
        w.write(packet_bytes(packet(FOLLOWERINFO, z(0, 0), info(2))))
        await read_packet(r)
        w.write(packet_bytes(packet(ACK, z(1, 2), b"\x00\x01\x80")))
        return await r.read()
    with caplog.at_level(logging.INFO):
        rest = asyncio.run(with_leader(tmp_path, ensemble(), script))
    assert rest == b""
    assert "3,4294967298,#01ffffff80,v{}\n is not ACKEPOCH" in caplog.text


def test_newleader_must_be_acked(tmp_path, caplog):
    """The learner's answer to NEWLEADER must be an ACK; anything else is logged with packetToString — the type's
    name, the zxid in hex and, for REVALIDATE, the session id (` sessionid = <decimal>`, after a second space) —
    and the learner is dropped.
    Reference: Java LearnerHandler.run ("Next packet was supposed to be an ACK, but received packet: {}",
    packetToString(qp)), LearnerHandler.packetToString"""
    async def script(leader, lp):
        r, w = await connect(lp)
        await sync_to_newleader(r, w)
        w.write(packet_bytes(packet(6, -1, struct.pack(">qi", 0x1000005, 30000))))    # REVALIDATE
        await r.read()                                     # returns at EOF: the leader dropped the learner
    with caplog.at_level(logging.INFO):
        asyncio.run(with_leader(tmp_path, ensemble(), script))
    assert ("Next packet was supposed to be an ACK, but received packet: REVALIDATE ffffffffffffffff  "
            f"sessionid = {0x1000005}") in caplog.text


def test_follower_ahead_of_the_leader_is_refused(tmp_path, caplog):
    """An ACKEPOCH whose (currentEpoch, lastZxid) is more recent than the leader's is refused with Java's
    message and the connection closes. Reference: Java Leader.waitForEpochAck, StateSummary.isMoreRecentThan"""
    async def script(leader, lp):
        r, w = await connect(lp)
        w.write(packet_bytes(packet(FOLLOWERINFO, z(1, 0), info(2))))
        await read_packet(r)
        w.write(packet_bytes(packet(ACKEPOCH, z(5, 9), struct.pack(">i", 5))))
        return await r.read()
    with caplog.at_level(logging.INFO):
        rest = asyncio.run(with_leader(tmp_path, ensemble(), script, accepted=1, current=1))
    assert rest == b""
    assert "Follower is ahead of the leader, leader summary: 1 (current epoch), 0 (last zxid)" in caplog.text


def test_no_quorum_for_the_epoch_ends_the_leadership(tmp_path, caplog):
    """Without a quorum of FOLLOWERINFOs within initLimit ticks the leader gives up: `lead()` ends with the
    InterruptedException "Timeout while waiting for epoch from quorum", without shutting the leader down itself
    (QuorumPeer.run logs it and shuts the leader down with "Forcing shutdown", as Java's log shows in
    tests/test_disloyal_voter.py). Reference: Java Leader.getEpochToPropose, Leader.lead, QuorumPeer.run (LEADING)"""
    async def script(leader, lp):
        await asyncio.wait([leader.run_task], timeout=10)
        return leader.run_task.exception() if leader.run_task.done() else None, leader.shutdown_reason
    with caplog.at_level(logging.INFO):
        error, reason = asyncio.run(with_leader(tmp_path, ensemble(5), script, init_limit=5))
    assert isinstance(error, InterruptedError) and str(error) == "Timeout while waiting for epoch from quorum"
    assert reason is None


def test_unknown_packet_in_broadcast_is_logged_and_ignored(tmp_path, caplog):
    """In broadcast an unexpected packet type is logged with packetToString (`UNKNOWN<type> <hex zxid> null`)
    and the learner stays. Reference: Java LearnerHandler.run ("unexpected quorum packet, type: {}",
    packetToString(qp)), LearnerHandler.packetToString"""
    async def script(leader, lp):
        r, w = await connect(lp)
        got = await sync_to_newleader(r, w)
        w.write(packet_bytes(packet(ACK, got[-1].zxid)))
        while (await read_packet(r)).type != UPTODATE:
            pass
        w.write(packet_bytes(packet(ACK, got[-1].zxid)))
        w.write(packet_bytes(packet(99, 0x10)))
        w.write(packet_bytes(packet(PING, 0)))
        await until(lambda: "unexpected quorum packet" in caplog.text)
        return any(h.sid == 2 for h in leader.learners)
    with caplog.at_level(logging.INFO):
        still_there = asyncio.run(with_leader(tmp_path, ensemble(), script))
    assert "unexpected quorum packet, type: UNKNOWN99 10 null" in caplog.text
    assert still_there


def test_observer_is_informed_and_does_not_count(tmp_path):
    """With a zkref leader, a zkref follower and a zkref observer: the observer's epoch and ACKs do not count
    toward quorums, it receives committed txns as INFORM (never PROPOSAL/COMMIT) and applies them.
    Reference: Java Leader.inform, Leader.isParticipant, Observer.processPacket"""
    async def scenario():
        qv = ensemble(3, observers=(3,))
        peers = {sid: zab_peer(tmp_path, sid, qv) for sid in (1, 2, 3)}
        leader, follower, observer = Leader(peers[1]), Follower(peers[2]), Observer(peers[3])
        tasks = [asyncio.ensure_future(x.run()) for x in (leader, follower, observer)]
        try:
            await until(lambda: leader.started.is_set() and peers[3].zab_state == "BROADCAST"
                        and peers[2].zab_state == "BROADCAST", 20, "all three peers in BROADCAST")
            assert leader.new_leader_acks == {1, 2}                          # the observer's ack is not counted
            p = leader.propose(leader.next_txn_header(0, 0, 1),
                               CreateTxn(path="/seen", data=b"", acl=[], ephemeral=False, parent_cversion=1))
            await asyncio.wait_for(p.done, 10)
            await until(lambda: peers[3].zk_db.get_node("/seen") is not None, 20, "the observer applied /seen")
            trace = peers[1].zab_trace + peers[2].zab_trace + peers[3].zab_trace
            trace.sort(key=lambda e: e.time)
            assert trace_violations(trace, qv.contains_quorum) == []
            return [(e.kind, e.type) for e in peers[3].zab_trace if e.zxid == p.hdr.zxid]
        finally:
            for x in (observer, follower, leader):
                await x.shutdown("test over")
            await asyncio.gather(*tasks, return_exceptions=True)
            for pr in peers.values():
                pr.zk_db.close()
    seen = asyncio.run(scenario())
    assert ("recv", "INFORM") in seen and ("step", "apply") in seen
    assert not any(t in ("PROPOSAL", "COMMIT", "ACK") for _, t in seen)
