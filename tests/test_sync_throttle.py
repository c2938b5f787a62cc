"""Learner sync throttling (`zookeeper.leader.maxConcurrentSnapSyncs` / `maxConcurrentDiffSyncs`), on zkref and
on Java 3.8, the same scenario on each and the observations compared.

Three participants and two observers (4 and 5), every server with `-Dzookeeper.leader.maxConcurrentSnapSyncs=1`,
`-Dzookeeper.leader.maxConcurrentDiffSyncs=1` and `-Dzookeeper.snapshotSizeFactor=-1` (no DIFF from the txn log, so a learner behind the leader's
committed log gets a SNAP). Observer 4 is never started as a server: the test speaks for it on the leader's
quorum port (`hold_sync`: OBSERVERINFO, LEADERINFO, ACKEPOCH with zxid 0, then SNAP — or with the leader's
zxid, then DIFF) and never ACKs NEWLEADER, so its sync stays in progress until the test closes the socket
(initLimit is 60 ticks).
That makes "two syncs at once" a state the test controls instead of a race.
"""
from __future__ import annotations

import re
import shutil
import socket
import struct

import pytest
from kazoo.client import KazooClient

from conftest import Ensemble, four_letter_word, java_available, wait_for

pytestmark = pytest.mark.timeout(600)

OBSERVERINFO, FOLLOWERINFO, LEADERINFO, ACKEPOCH, SNAP, DIFF = 16, 11, 17, 18, 15, 13   # Java: Leader's packet types
FLAGS = ["-Dzookeeper.leader.maxConcurrentSnapSyncs=1", "-Dzookeeper.leader.maxConcurrentDiffSyncs=1",
         "-Dzookeeper.snapshotSizeFactor=-1"]


class Observers(Ensemble):
    "Servers 1-3 participants, 4 and 5 observers (`:observer` on their server lines, `peerType=observer`)."

    def __init__(self, root, kinds, **kw):
        super().__init__(root, kinds, **kw)
        for i, s in self.servers.items():
            for o in (4, 5):
                s.config[f"server.{o}"] = f"{s.config[f'server.{o}']}:observer"
            if i in (4, 5):
                s.config["peerType"] = "observer"
            s.cfg_path.write_text("".join(f"{k}={v}\n" for k, v in s.config.items()))


def quorum_packet(ptype: int, zxid: int, data: bytes | None) -> bytes:
    "A QuorumPacket as jute writes it: type, zxid, data (length -1 for none), authinfo (none)."
    body = struct.pack(">i", -1) if data is None else struct.pack(">i", len(data)) + data
    return struct.pack(">iq", ptype, zxid) + body + struct.pack(">i", -1)


def read_exactly(s: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise ConnectionError("the leader closed the connection")
        out += chunk
    return out


def read_quorum_packet(s: socket.socket) -> tuple[int, int, bytes | None]:
    "(type, zxid, data) of the next QuorumPacket."
    ptype, zxid, n = struct.unpack(">iqi", read_exactly(s, 16))
    data = read_exactly(s, n) if n >= 0 else None
    (auths,) = struct.unpack(">i", read_exactly(s, 4))
    for _ in range(max(auths, 0)):
        for _ in range(2):                               # Id: scheme, id
            (k,) = struct.unpack(">i", read_exactly(s, 4))
            read_exactly(s, max(k, 0))
    return ptype, zxid, data


def hold_sync(quorum_port: int, sid: int, last_zxid: int = 0, expect: int = SNAP) -> socket.socket:
    """Register with the leader as observer `sid` whose log ends at `last_zxid` (0: nothing logged, so a SNAP),
    read the sync's first packet, and keep the socket: the leader's sync to it lasts until the socket closes.
    Java: Learner.registerWithLeader"""
    s = socket.create_connection(("127.0.0.1", quorum_port), timeout=30)
    s.sendall(quorum_packet(OBSERVERINFO, 0, struct.pack(">qiq", sid, 0x10000, 0)))   # LearnerInfo(sid, version, config)
    ptype, new_leader_zxid, _ = read_quorum_packet(s)
    assert ptype == LEADERINFO, ptype
    s.sendall(quorum_packet(ACKEPOCH, last_zxid, struct.pack(">i", 0)))      # currentEpoch 0
    ptype, _, _ = read_quorum_packet(s)
    assert ptype == expect, f"expected packet type {expect}, got {ptype}"
    return s


def mntr(port: int) -> dict[str, int]:
    out = four_letter_word(port, "mntr")
    rows = (line.split("\t", 1) for line in out.splitlines() if "\t" in line)
    return {k[3:]: int(float(v)) for k, v in rows if re.fullmatch(r"-?[\d.]+", v)}


SNAP_KEYS = ("snap_count", "cnt_inflight_snap_count", "sum_inflight_snap_count")


def delta(after: dict, before: dict) -> dict:
    return {k: after.get(k, 0) - before.get(k, 0) for k in SNAP_KEYS}


THROTTLED = re.compile(r"- ERROR \[.*?\] - too many concurrent sync\.\n(\S+: .*)")
SENT = re.compile(r"Sending snapshot last zxid of peer is 0x0, .*?, (\d+) concurrent snapshot sync, "
                  r"snapshot sync was (exempt|not exempt) from throttle")
LIMITS = re.compile(r"INFO  \[.*?:LearnerMaster@\d+\] - (zookeeper\.leader\.maxConcurrent\w+ = \d+)")


def run(kind: str, root) -> dict:
    """The scenario on a `kind` ensemble; what a user can observe of it."""
    e = Observers(root, (kind,) * 5, jvm_flags=FLAGS, initLimit=60)
    seen: dict = {}
    e.start(1, 2, 3)
    held = []
    try:
        leader = e.wait_formed([1, 2, 3])
        follower = next(i for i in (1, 2, 3) if i != leader)
        zk = KazooClient(hosts=e.hosts([leader]), timeout=30)
        zk.start(30)
        try:
            for i in range(5):
                zk.create(f"/t{i}", b"data")
        finally:
            zk.stop()
            zk.close()
        seen["limits"] = LIMITS.findall(e.log(leader))

        # 1. observer 4's snapshot sync is in progress; observer 5 (fresh) is refused until it ends
        before, mark = mntr(e.client(leader)), len(e.log(leader))
        held.append(hold_sync(e.quorum(leader), 4))
        e.start(5)
        wait_for(lambda: THROTTLED.search(e.log(leader)[mark:]), 60, what="the leader to refuse observer 5")
        seen["observer_5_while_held"] = e.mode(5)
        held.pop().close()
        wait_for(lambda: e.mode(5) == "observer", 90, what="observer 5 to sync once observer 4's sync ended")
        log = e.log(leader)[mark:]
        seen["refusal"] = sorted(set(THROTTLED.findall(log)))
        seen["sent_observers"] = SENT.findall(log)
        seen["metrics_observers"] = delta(mntr(e.client(leader)), before)
        ozk = KazooClient(hosts=e.hosts([5]), timeout=30)
        ozk.start(30)
        try:
            seen["observer_5_reads"] = [ozk.get(f"/t{i}")[0] for i in range(5)]
        finally:
            ozk.stop()
            ozk.close()

        # 2. observer 4's sync again; a follower that lost its data syncs all the same (exempt, but counted)
        before, mark = mntr(e.client(leader)), len(e.log(leader))
        held.append(hold_sync(e.quorum(leader), 4))
        e.stop(follower)
        shutil.rmtree(e.servers[follower].data_dir / "version-2")
        e.start(follower)
        wait_for(lambda: e.mode(follower) == "follower", 90, what=f"server {follower} to follow again")
        log = e.log(leader)[mark:]
        seen["sent_follower"] = SENT.findall(log)
        seen["refusal_follower"] = THROTTLED.findall(log)
        held.pop().close()
        seen["metrics_follower"] = delta(mntr(e.client(leader)), before)
        seen["modes"] = e.modes()

        # 3. maxConcurrentDiffSyncs=1: observer 4 (up to date) holds a DIFF; observer 5, restarted, is refused
        zxid = int(four_letter_word(e.client(leader), "srvr").split("Zxid: ")[1].split()[0], 16)
        mark = len(e.log(leader))
        held.append(hold_sync(e.quorum(leader), 4, zxid, expect=DIFF))
        e.stop(5)
        e.start(5)
        wait_for(lambda: THROTTLED.search(e.log(leader)[mark:]), 60, what="the leader to refuse observer 5's DIFF")
        seen["observer_5_while_diff_held"] = e.mode(5)
        held.pop().close()
        wait_for(lambda: e.mode(5) == "observer", 90, what="observer 5 to sync once observer 4's DIFF ended")
        seen["refusal_diff"] = sorted(set(THROTTLED.findall(e.log(leader)[mark:])))
        return seen
    finally:
        for s in held:
            s.close()
        e.stop_all()


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    "(java, zkref): the scenario on a Java 3.8 ensemble and on a zkref one."
    if not java_available():
        pytest.skip("Java ZooKeeper (Debian package zookeeper) is not installed")
    return run("java", tmp_path_factory.mktemp("java")), run("zkref", tmp_path_factory.mktemp("zkref"))


def test_limits_read_from_system_properties_and_logged(both):
    """The limits are the system properties `zookeeper.leader.maxConcurrentSnapSyncs` (default 10) and
    `zookeeper.leader.maxConcurrentDiffSyncs` (default 100), logged by LearnerMaster as the leader starts.
    Reference: Java LearnerMaster's static block; ZooKeeper Admin Guide, "maxConcurrentSnapSyncs\""""
    java, zkref = both
    assert java["limits"][:2] == ["zookeeper.leader.maxConcurrentSnapSyncs = 1",
                                  "zookeeper.leader.maxConcurrentDiffSyncs = 1"]
    assert zkref["limits"][:2] == java["limits"][:2]


def test_observer_past_the_snap_limit_is_refused_until_a_slot_frees(both):
    """With maxConcurrentSnapSyncs=1 and one observer's snapshot sync in progress, the leader refuses a second
    observer's SNAP (`too many concurrent sync.`, SyncThrottleException "new snap sync would make 2
    concurrently in progress; maximum is 1") and closes its connection; the observer is not serving, retries,
    and is synced — with the leader's data — once the first sync ends.
    Reference: Java LearnerHandler.run (beginSync(exemptFromThrottle), catch SyncThrottleException),
    LearnerSyncThrottler.beginSync, SyncThrottleException"""
    java, zkref = both
    assert java["refusal"] == ["org.apache.zookeeper.server.quorum.SyncThrottleException: new snap sync would make "
                               "2 concurrently in progress; maximum is 1"]
    assert zkref["refusal"] == java["refusal"]
    for r in both:
        assert r["observer_5_while_held"] is None
        assert r["observer_5_reads"] == [b"data"] * 5
        assert r["sent_observers"] == [("1", "not exempt"), ("1", "not exempt")]   # observer 4, then observer 5
    assert zkref["sent_observers"] == java["sent_observers"]


def test_follower_is_exempt_but_counted(both):
    """A follower's sync is essential: it goes through past the limit, and counts (the leader logs "2
    concurrent snapshot sync, snapshot sync was exempt from throttle").
    Reference: Java LearnerHandler.run (exemptFromThrottle = learnerType != OBSERVER)"""
    java, zkref = both
    assert java["sent_follower"] == [("1", "not exempt"), ("2", "exempt")]
    assert java["refusal_follower"] == []
    assert (zkref["sent_follower"], zkref["refusal_follower"]) == (java["sent_follower"], java["refusal_follower"])
    assert zkref["modes"] == java["modes"] == ["follower", "follower", "leader", "observer"]


def test_snap_metrics_count_only_syncs_that_began(both):
    """`snap_count` counts the SNAPs sent (not the refused ones); `inflight_snap_count` samples the syncs in
    progress as each begins and as it ends at the NEWLEADER ACK (a sync that fails adds no end sample).
    Reference: Java LearnerHandler.run (SNAP_COUNT, INFLIGHT_SNAP_COUNT), ServerMetrics"""
    java, zkref = both
    # observers: 4 begins (1), is cut off; 5 begins (1) and ends (0)
    assert java["metrics_observers"] == {"snap_count": 2, "cnt_inflight_snap_count": 3, "sum_inflight_snap_count": 2}
    # 4 begins (1); the follower begins (2) and ends (1); 4 is cut off after mntr was read
    assert java["metrics_follower"] == {"snap_count": 2, "cnt_inflight_snap_count": 3, "sum_inflight_snap_count": 4}
    assert (zkref["metrics_observers"], zkref["metrics_follower"]) == (java["metrics_observers"],
                                                                      java["metrics_follower"])


def test_observer_past_the_diff_limit_is_refused_until_a_slot_frees(both):
    """maxConcurrentDiffSyncs limits diff syncs the same way: with one observer's DIFF in progress and a limit of
    1, a restarted observer is refused ("new diff sync would make 2 concurrently in progress; maximum is 1")
    and not serving, then synced once the first DIFF ends.
    Reference: Java LearnerHandler.run (the diff branch: getLearnerDiffSyncThrottler().beginSync)"""
    java, zkref = both
    assert java["refusal_diff"] == ["org.apache.zookeeper.server.quorum.SyncThrottleException: new diff sync would "
                                    "make 2 concurrently in progress; maximum is 1"]
    assert zkref["refusal_diff"] == java["refusal_diff"]
    assert java["observer_5_while_diff_held"] is None and zkref["observer_5_while_diff_held"] is None


@pytest.mark.parametrize("flag", ["-Dzookeeper.leader.maxConcurrentSnapSyncs=0",
                                  "-Dzookeeper.leader.maxConcurrentDiffSyncs=-1",
                                  "zoo.cfg:leader.maxConcurrentSnapSyncs=0"])
def test_limit_below_one_refused_at_start(tmp_path, flag):
    """A sync limit below 1 — as a -D flag, or as the zoo.cfg key without `zookeeper.`, which becomes that
    system property — is refused when a zkref server starts: exit code 2 and Java's own message
    "maxConcurrentSyncs must be positive, was N" (Java starts, and then throws it each time the server is
    elected leader, so that server can never lead: site/divergences.md).
    Reference: Java LearnerSyncThrottler's constructor (IllegalArgumentException); QuorumPeerConfig.parseProperties
    (unknown keys become system properties); QuorumPeerMain exit codes"""
    if flag.startswith("zoo.cfg:"):
        key, value = flag[len("zoo.cfg:"):].split("=")
        e = Ensemble(tmp_path, ("zkref",) * 3, **{key: value})
        flag = f"-Dzookeeper.{key}={value}"
    else:
        e = Ensemble(tmp_path, ("zkref",) * 3, jvm_flags=[flag])
    proc = e.servers[1].start(wait=False).proc
    try:
        assert proc.wait(60) == 2
    finally:
        e.servers[1].stop()
    value = flag.rsplit("=", 1)[1]
    log = e.log(1)
    assert "Invalid config, exiting abnormally" in log
    assert f"{flag[2:]}: maxConcurrentSyncs must be positive, was {value}" in log


@pytest.mark.parametrize("raw, want", [(None, 10), ("3", 3), ("0x10", 16), ("#10", 16), ("010", 8), ("-0", 0),
                                       ("+7", 7), (" 5", 10), ("5 ", 10), ("1_0", 10), ("lots", 10), ("", 10),
                                       ("2147483648", 10), ("-2147483648", -2**31)])
def test_limits_are_read_as_integer_getinteger(raw, want):
    """The limits are read as Java's Integer.getInteger reads a system property: Integer.decode (decimal, 0x/#
    hex, 0-prefixed octal, a sign), and the default for anything else — spaces, underscores, overflow.
    Reference: Java LearnerMaster's static block (Integer.getInteger), Integer.decode"""
    from zkref.quorum.leader_sync import MAX_CONCURRENT_SNAP_SYNCS, sync_limits
    props = {} if raw is None else {MAX_CONCURRENT_SNAP_SYNCS: raw}
    assert sync_limits(lambda name, default=None: props.get(name, default))[0] == want
