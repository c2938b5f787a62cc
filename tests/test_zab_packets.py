"""Zab's packet layer: type numbers, framing of QuorumPacket on the quorum port, packet text, bad input."""
from __future__ import annotations

import asyncio
import re
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from zkref.jute import Id, LearnerInfo, QuorumPacket
from zkref.quorum import zab
from zkref.quorum.zab import (ACKEPOCH, FOLLOWERINFO, PACKET_NAMES, PING, PROPOSAL, REVALIDATE, SNAP_SIGNATURE,
                              UPTODATE, QuorumPacketError, describe, make_zxid, packet, packet_bytes, packets_bytes,
                              packet_to_string, read_packet, read_packet_within, read_snapshot_body, snapshot_body,
                              ReadDeadline)

JAVA_LEADER_CONSTANTS = {  # Java: org.apache.zookeeper.server.quorum.Leader (branch-3.8), checked against the jar below
    "REQUEST": 1, "PROPOSAL": 2, "ACK": 3, "COMMIT": 4, "PING": 5, "REVALIDATE": 6, "SYNC": 7, "INFORM": 8,
    "COMMITANDACTIVATE": 9, "NEWLEADER": 10, "FOLLOWERINFO": 11, "UPTODATE": 12, "DIFF": 13, "TRUNC": 14,
    "SNAP": 15, "OBSERVERINFO": 16, "LEADERINFO": 17, "ACKEPOCH": 18, "INFORMANDACTIVATE": 19,
}


def read_all(data: bytes):
    async def go():
        r = asyncio.StreamReader()
        r.feed_data(data)
        r.feed_eof()
        return await read_packet(r)
    return asyncio.run(go())


def test_packet_type_numbers_are_javas():
    """Every Zab packet type has the number Java's Leader class gives it.
    Reference: Java Leader (static final int REQUEST … INFORMANDACTIVATE)"""
    for name, number in JAVA_LEADER_CONSTANTS.items():
        assert getattr(zab, name) == number, name
        assert PACKET_NAMES[number] == name


@pytest.mark.skipif(not Path("/usr/share/java/zookeeper.jar").exists(), reason="Java ZooKeeper not installed")
def test_packet_type_numbers_match_the_java_jar():
    """The constants compiled into the installed ZooKeeper 3.8 jar are the ones zkref uses.
    Reference: Java Leader constants, read with javap"""
    out = subprocess.run(["javap", "-constants", "-cp", "/usr/share/java/zookeeper.jar",
                          "org.apache.zookeeper.server.quorum.Leader"], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        pytest.skip(f"javap not usable: {out.stderr[:200]}")
    found = dict((m.group(1), int(m.group(2)))
                 for m in re.finditer(r"static final int (\w+) = (-?\d+);", out.stdout))
    for name, number in JAVA_LEADER_CONSTANTS.items():
        assert found.get(name) == number, name


@settings(max_examples=200, deadline=None)
@given(st.integers(-2**31, 2**31 - 1), st.integers(-2**63, 2**63 - 1),
       st.one_of(st.none(), st.binary(max_size=300)),
       st.one_of(st.none(), st.lists(st.builds(Id, scheme=st.text(max_size=8), id=st.text(max_size=8)), max_size=3)))
def test_quorum_packet_round_trip(ptype, zxid, data, authinfo):
    """A QuorumPacket is type, zxid, data buffer (-1 = null) and authinfo vector (-1 = null), with no
    length prefix; what zkref writes it reads back the same.
    Reference: Java LearnerHandler.run / Learner.writePacket (BinaryOutputArchive.writeRecord)"""
    qp = QuorumPacket(type=ptype, zxid=zxid, data=data, authinfo=authinfo)
    assert read_all(packet_bytes(qp)) == qp


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(-2**31, 2**31 - 1), st.integers(-2**63, 2**63 - 1),
                          st.one_of(st.none(), st.binary(max_size=100))), min_size=1, max_size=8))
def test_packets_written_as_one_buffer_read_back_one_by_one(packets):
    """Packets written back to back in one buffer (a batch flushed at once) are the same bytes as each written
    alone, and read back as the same packets in order: the stream has no other framing.
    Reference: Java LearnerHandler.sendPackets (BufferedOutputStream flushed when the queue is empty)"""
    qps = [packet(t, z, d) for t, z, d in packets]
    data = packets_bytes(qps)
    assert data == b"".join(packet_bytes(qp) for qp in qps)

    async def go():
        r = asyncio.StreamReader()
        r.feed_data(data)
        r.feed_eof()
        return [await read_packet_within(r, 5) for _ in qps]
    assert asyncio.run(go()) == qps


def test_a_silent_peer_is_read_timed_out():
    """A read that gets no complete packet within the socket timeout fails with "Read timed out", also when
    part of the packet came. Reference: Java Learner.readPacket / LearnerHandler.run (soTimeout →
    SocketTimeoutException "Read timed out")"""
    async def go(prefix: bytes):
        r = asyncio.StreamReader()
        r.feed_data(prefix)
        with pytest.raises(TimeoutError, match="^Read timed out$"):
            await read_packet_within(r, 0.05)
    for prefix in (b"", packet_bytes(packet(PING, 1))[:7]):
        asyncio.run(go(prefix))


def test_a_connection_that_keeps_talking_is_never_read_timed_out():
    """The socket timeout bounds each read, not the connection's life: packets that keep coming, each well
    within the timeout, are all read even when together they take several timeouts; then the peer goes quiet
    and the next read times out. Reference: Java Socket.setSoTimeout (per blocking read), Learner.readPacket"""
    async def go():
        loop = asyncio.get_running_loop()
        r = asyncio.StreamReader()
        deadline = ReadDeadline()
        n = 12
        for k in range(n):                     # one packet every 0.05 s for 0.6 s; the timeout is 0.25 s
            loop.call_later(0.05 * (k + 1), r.feed_data, packet_bytes(packet(PING, k)))
        got = [(await deadline.read(r, 0.25)).zxid for _ in range(n)]
        with pytest.raises(TimeoutError, match="^Read timed out$"):
            await deadline.read(r, 0.25)
        return got
    assert asyncio.run(go()) == list(range(12))


def test_a_read_cancelled_from_outside_stays_cancelled():
    """Cancelling the reading task (a role shutting down) is a cancellation, not a read timeout; the same
    connection's deadline still times out a later silent read. Reference: Java Learner.shutdown closes the
    socket under a blocked read (SocketException, not SocketTimeoutException)"""
    async def go():
        r = asyncio.StreamReader()
        deadline = ReadDeadline()
        task = asyncio.ensure_future(deadline.read(r, 30))
        await asyncio.sleep(0)                 # let the read start waiting
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(TimeoutError):
            await deadline.read(r, 0.05)
    asyncio.run(go())


def test_wire_bytes_of_a_followerinfo():
    """FOLLOWERINFO carries zxid = acceptedEpoch << 32 and a 20-byte LearnerInfo{sid, 0x10000, configVersion}.
    Reference: Java Learner.registerWithLeader"""
    info = LearnerInfo(serverid=3, protocol_version=0x10000, config_version=0)
    b = packet_bytes(packet(FOLLOWERINFO, make_zxid(1, 0), info.to_bytes()))
    assert b == struct.pack(">iqi", 11, 1 << 32, 20) + struct.pack(">qiq", 3, 0x10000, 0) + struct.pack(">i", -1)


@pytest.mark.parametrize("cut", [0, 3, 12, 15, 17, 30])
def test_truncated_packet_is_eof(cut):
    """A connection that ends inside a packet raises EOFError (Java: EOFException); the caller drops the peer.
    Reference: Java BinaryInputArchive.readRecord on a closed stream"""
    whole = packet_bytes(packet(PING, 5, b"0123456789ab", [Id(scheme="ip", id="x")]))
    with pytest.raises(EOFError):
        read_all(whole[:cut])


def test_unreasonable_length_is_refused_with_javas_message():
    """A data length beyond jute.maxbuffer (+ its extra) fails with Java's `Unreasonable length = N`
    instead of reading gigabytes. Reference: Java BinaryInputArchive.checkLength"""
    with pytest.raises(QuorumPacketError, match="^Unreasonable length = 2147483632$"):
        read_all(struct.pack(">iqi", PING, 0, 0x7FFFFFF0))
    with pytest.raises(QuorumPacketError, match="^Unreasonable length = -2$"):
        read_all(struct.pack(">iqi", PING, 0, -2))


def test_packet_to_string_is_javas():
    """Packets print as Java's packetToString: name, Long.toHexString(zxid), then `null` or the session.
    Reference: Java LearnerHandler.packetToString"""
    assert packet_to_string(packet(PROPOSAL, make_zxid(1, 1))) == "PROPOSAL 100000001 null"
    assert packet_to_string(packet(UPTODATE, -1)) == "UPTODATE ffffffffffffffff null"
    assert packet_to_string(packet(REVALIDATE, -1, struct.pack(">qi", 77, 3000))) == "REVALIDATE ffffffffffffffff  sessionid = 77"
    assert packet_to_string(packet(99, 16)) == "UNKNOWN99 10 null"


def test_describe_never_raises_on_garbage():
    """describe() decodes known payloads and shows undecodable ones by size, for logs and traces.
    Reference: Java LearnerHandler.packetToString (logging must not fail on bad input)"""
    assert describe(packet(ACKEPOCH, make_zxid(1, 2), struct.pack(">i", -1))) == "ACKEPOCH 0x100000002 currentEpoch=-1"
    for t in PACKET_NAMES:
        assert describe(packet(t, 0, b"\x01\x02")).startswith(PACKET_NAMES[t])


def test_snapshot_body_after_snap_is_read_to_its_signature():
    """After SNAP the leader writes sessions, the tree and the string "BenWasHere"; the reader finds its end
    without a length prefix and leaves the next packet on the stream.
    Reference: Java LearnerHandler.run (SNAP), Learner.syncWithLeader ("Missing signature")"""
    from zkref.jute import CreateTxn, InputArchive, TxnHeader
    from zkref.zkdatabase import ZKDatabase
    db = ZKDatabase(None)
    db.sessions_with_timeouts[0x1000001] = 30000
    db.data_tree.process_txn(TxnHeader(client_id=1, cxid=1, zxid=make_zxid(1, 1), time=0, type=1),
                             CreateTxn(path="/a", data=b"x" * 50, acl=[], ephemeral=False, parent_cversion=1))

    async def go():
        r = asyncio.StreamReader()
        r.feed_data(snapshot_body(db) + packet_bytes(packet(PING, 9)))
        r.feed_eof()
        body, sig = await read_snapshot_body(r)
        return body, sig, await read_packet(r)
    body, sig, nxt = asyncio.run(go())
    assert sig == SNAP_SIGNATURE and nxt.type == PING
    copy = ZKDatabase(None)
    copy.deserialize_snapshot(InputArchive(body))
    assert copy.get_node("/a").data == b"x" * 50 and copy.sessions_with_timeouts == {0x1000001: 30000}


from zkref.quorum.zab import ZabEvent, trace_violations  # noqa: E402


def _ev(kind, myid, peer, t, zxid):
    return ZabEvent(kind, myid, 0.0, peer, t, zxid)


def _synced_learner():
    z = make_zxid
    return [_ev("send", 3, 1, "FOLLOWERINFO", 0), _ev("recv", 3, 1, "LEADERINFO", z(1, 0)),
            _ev("send", 3, 1, "ACKEPOCH", 0), _ev("recv", 3, 1, "DIFF", 0), _ev("recv", 3, 1, "NEWLEADER", z(1, 0)),
            _ev("step", 3, None, "currentEpoch", z(1, 0)), _ev("send", 3, 1, "ACK", z(1, 0)),
            _ev("recv", 3, 1, "UPTODATE", -1)]


def test_trace_checker_accepts_a_clean_run_and_flags_each_violation():
    """The trace checker raises Zab.tla's flags: commitInconsistent (COMMIT without PROPOSAL, or out of
    order), proposalInconsistent (PROPOSAL not after the last), ackInconsistent (ACK before fsync), the
    NEWLEADER rule (currentEpoch before the ACK), stateInconsistent (PROPOSAL before sync), Leadership2 (two
    leaders of one epoch), and a leader's COMMIT without a quorum of ACKs.
    Reference: Zab.tla ShouldNotBeTriggered (violatedInvariants), Leadership2; Java Learner.syncWithLeader"""
    z = make_zxid
    ok = _synced_learner() + [_ev("recv", 3, 1, "PROPOSAL", z(1, 1)), _ev("step", 3, None, "fsync", z(1, 1)),
                              _ev("send", 3, 1, "ACK", z(1, 1)), _ev("recv", 3, 1, "COMMIT", z(1, 1))]
    assert trace_violations(ok) == []
    cases = {
        "commitInconsistent": _synced_learner() + [_ev("recv", 3, 1, "COMMIT", z(1, 5))],
        "proposalInconsistent": _synced_learner() + [_ev("recv", 3, 1, "PROPOSAL", z(1, 2)),
                                                     _ev("recv", 3, 1, "PROPOSAL", z(1, 1))],
        "ackInconsistent": _synced_learner() + [_ev("recv", 3, 1, "PROPOSAL", z(1, 1)), _ev("send", 3, 1, "ACK", z(1, 1))],
        "FollowerProcessNEWLEADER": [e for e in _synced_learner() if e.type != "currentEpoch"],
        "stateInconsistent": [_ev("send", 3, 1, "FOLLOWERINFO", 0), _ev("recv", 3, 1, "PROPOSAL", z(1, 1))],
        "Leadership2": [_ev("send", 1, 3, "LEADERINFO", z(2, 0)), _ev("send", 2, 3, "LEADERINFO", z(2, 0))],
    }
    for flag, trace in cases.items():
        found = trace_violations(trace)
        assert found and all(f.startswith(flag) for f in found), (flag, found)
    leader = [_ev("send", 1, 2, "LEADERINFO", z(1, 0)), _ev("send", 1, 2, "PROPOSAL", z(1, 1)),
              _ev("send", 1, 2, "COMMIT", z(1, 1))]
    assert trace_violations(leader, lambda ids: len(ids) >= 2)[0].startswith("commitInconsistent")
    leader_ok = leader[:2] + [_ev("step", 1, None, "fsync", z(1, 1)), _ev("recv", 1, 2, "ACK", z(1, 1)), leader[2]]
    assert trace_violations(leader_ok, lambda ids: len(ids) >= 2) == []
