"""The configuration a leader sends in NEWLEADER, and what leaders and learners log about it, as Java 3.8's.

A Java 3.8 and a zkref ensemble of servers 1 and 2 elect a leader; a hand-written learner (sid 3, in both
configurations) then registers with the leader by FOLLOWERINFO/ACKEPOCH and reads up to NEWLEADER.
"""
import asyncio
import re
import struct

import pytest

from conftest import Ensemble, java_available
from zkref.jute import LearnerInfo
from zkref.quorum.zab import (ACKEPOCH, FOLLOWERINFO, LEADERINFO, LEARNER_PROTOCOL_VERSION, NEWLEADER, SNAP, packet,
                              packet_bytes, read_packet_within, read_snapshot_body)

pytestmark = pytest.mark.skipif(not java_available(), reason="needs Debian's Java ZooKeeper 3.8")

DISABLED = "Dynamic reconfig is disabled, we don't store the last seen config."


async def register_and_read_to(reader, writer, last: int, sid: int = 3, on_packet=lambda qp: None):
    """Register as learner `sid` with the leader on the other end (FOLLOWERINFO, LEADERINFO, ACKEPOCH), then read
    its sync (a SNAP's snapshot body included), handing each packet to `on_packet`, up to the first of type `last`:
    (the LEADERINFO, that packet). Java: Learner.registerWithLeader, syncWithLeader"""
    info = LearnerInfo(serverid=sid, protocol_version=LEARNER_PROTOCOL_VERSION, config_version=0)
    writer.write(packet_bytes(packet(FOLLOWERINFO, 0, info.to_bytes())))
    leader_info = await read_packet_within(reader, 10)
    assert leader_info.type == LEADERINFO, leader_info
    writer.write(packet_bytes(packet(ACKEPOCH, 0, struct.pack(">i", 0))))
    for _ in range(1000):                                 # SNAP or DIFF, proposals, NEWLEADER, UPTODATE
        qp = await read_packet_within(reader, 10)
        if qp.type == SNAP:
            await asyncio.wait_for(read_snapshot_body(reader), 10)
        on_packet(qp)
        if qp.type == last:
            return leader_info, qp
    raise AssertionError(f"no packet of type {last}")


async def newleader_payload(port: int) -> bytes:
    "Register as sid 3 with the leader at `port` and return its NEWLEADER's data."
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return (await register_and_read_to(reader, writer, NEWLEADER))[1].data
    finally:
        writer.close()


def messages(log: str) -> list[tuple[str, str]]:
    "(class, message) of each log line."
    return re.findall(r" - \w+\s+\[.*?:([\w$]+)@\d+\] - (.*)", log)


@pytest.mark.parametrize("kind", ["java", "zkref"])
def test_newleader_carries_the_current_config_and_reconfig_off_is_logged(kind, tmp_path):
    """With dynamic reconfiguration off, NEWLEADER carries the leader's current configuration at version 0:
    lead()'s copy with the NEWLEADER zxid as version (ZOOKEEPER-1783) is handed to setLastSeenQuorumVerifier,
    which keeps nothing and logs so once per leadership; a learner hands the NEWLEADER config to the same
    method, right after 'Learner received NEWLEADER message'.
    Reference: Java Leader.lead / getQuorumVerifierBytes, Learner.syncWithLeader (NEWLEADER),
    QuorumPeer.setLastSeenQuorumVerifier (3.8.0)."""
    e = Ensemble(tmp_path, (kind, kind, "zkref"))
    e.start(1, 2)
    try:
        leader = e.wait_formed([1, 2])
        data = asyncio.run(newleader_payload(e.quorum(leader)))
        follower = 3 - leader
        leader_log, follower_log = messages(e.log(leader)), messages(e.log(follower))
    finally:
        e.stop_all()
    lines = data.decode().split("\n")
    assert lines[-1] == "version=0", (kind, lines)
    assert [re.sub(r"=127\.0\.0\.1:\d+:\d+:", "=…:", x) for x in lines[:-1]] == [
        f"server.{i}=…:participant" for i in (1, 2, 3)], (kind, lines)
    # the leader: once, while leading, before its quorum of NEWLEADER ACKs
    took = leader_log.index(("Leader", next(m for c, m in leader_log if m.startswith("LEADING - LEADER ELECTION TOOK"))))
    quorum = next(i for i, (c, m) in enumerate(leader_log) if m.startswith("Have quorum of supporters"))
    assert [i for i, line in enumerate(leader_log) if line == ("QuorumPeer", DISABLED)] and all(
        took < i < quorum for i, line in enumerate(leader_log) if line == ("QuorumPeer", DISABLED)), kind
    assert leader_log.count(("QuorumPeer", DISABLED)) == 1, kind
    # the follower: right after NEWLEADER, once
    i = follower_log.index(("Learner", "Learner received NEWLEADER message"))
    assert follower_log[i + 1] == ("QuorumPeer", DISABLED), (kind, follower_log[i:i + 3])
    assert follower_log.count(("QuorumPeer", DISABLED)) == 1, kind
