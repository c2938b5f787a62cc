"""Mixed ensembles under failure: Java 3.8 and zkref servers in one ensemble, the leader killed whoever it is.

The servers are real processes (zkref through the launcher of `test_zab_failures.py`, Java as
`QuorumPeerMain` from Debian's package), on 127.0.0.1 and free ports.
"""
from __future__ import annotations

import re
import signal

import pytest

from conftest import java_available
from test_zab_failures import Ensemble, children_on, kazoo
from zkref.quorum.zab import epoch_of, trace_violations

pytestmark = [pytest.mark.timeout(420), pytest.mark.java,
              pytest.mark.skipif(not java_available(), reason="Java ZooKeeper (Debian package zookeeper) is not installed")]
FAR_BEHIND = 600        # more than zookeeper.commitLogCount (500): the leader's in-memory committed log cannot DIFF


def write_through(e: Ensemble, ids, prefix: str, count: int) -> set[str]:
    "Create /m/<prefix>-<server>-<n> through each server in turn; the names every create was acknowledged for."
    acked = set()
    for i in ids:
        zk = kazoo(e.hosts([i]))
        try:
            zk.ensure_path("/m")
            for n in range(count):
                name = f"{prefix}-{i}-{n:04d}"
                zk.create(f"/m/{name}", b"x" * 64)
                acked.add(name)
        finally:
            zk.stop()
            zk.close()
    return acked


def assert_everywhere(e: Ensemble, acked: set[str], ids=None) -> None:
    for i in ids or e.procs:
        found = children_on(e, i, "/m")
        print(f"server {i} ({e.kinds[i]}): acknowledged {len(acked)}, found {len(found & acked)}")
        assert acked <= found, f"server {i} ({e.kinds[i]}) lacks {sorted(acked - found)[:5]}"


def log_since(e: Ensemble, i: int, mark: int) -> str:
    return e.log(i)[mark:]


@pytest.mark.parametrize("kinds", [("java", "java", "zkref"), ("java", "zkref", "zkref")], ids=["2java+1zkref", "1java+2zkref"])
def test_mixed_ensemble_survives_a_killed_leader_and_resyncs_followers(kinds, tmp_path):
    """A 3-server ensemble of Java 3.8 and zkref processes forms; writes through every server are acknowledged;
    the leader (Java or zkref, whoever won) is SIGKILLed; the two others elect a new leader in a higher epoch
    and no acknowledged write is lost on any live server, nor on the killed one after it restarts. A follower
    stopped while a few writes happen restarts and is synced by DIFF; one stopped while more writes happen
    than the leader keeps in its committed log (and with snapCount=100 the logs have rolled) is synced by
    SNAP — both logged by the learner as Java's Learner.syncWithLeader logs them. zkref's Zab traces violate
    no Zab.tla invariant.
    Reference: Zab.tla Agreement, PrimaryIntegrity, GlobalPrimaryOrder; Java FastLeaderElection,
    LearnerHandler.syncFollower (DIFF from committedLog; SNAP when peerLastZxid < minCommittedLog and the txn
    log is over snapshotSizeFactor), Learner.syncWithLeader ("Getting a diff from the leader",
    "Getting a snapshot from leader")"""
    e = Ensemble(tmp_path, kinds, snapCount=100)
    try:
        e.start()
        leader = e.wait_formed(timeout=120)
        print("first leader:", leader, e.kinds[leader])
        acked = write_through(e, e.kinds, "a", 20)
        first_epoch = epoch_of(kazoo_stat(e, leader, f"/m/a-{leader}-0019"))

        e.stop(leader, signal.SIGKILL)
        rest = [i for i in e.kinds if i != leader]
        new_leader = e.wait_formed(rest, timeout=120)
        print("new leader:", new_leader, e.kinds[new_leader])
        acked |= write_through(e, rest, "b", 20)
        assert epoch_of(kazoo_stat(e, rest[0], f"/m/b-{rest[0]}-0019")) > first_epoch
        assert_everywhere(e, acked, rest)

        e.start(leader)
        e.wait_formed(timeout=120)
        assert_everywhere(e, acked)

        # every follower (Java and zkref) in turn misses a few writes (DIFF), then more than the leader's
        # committed log holds, with the logs rolled at snapCount (SNAP)
        for prefix, count, expect in (("c", 10, "Getting a diff from the leader"),
                                      ("d", FAR_BEHIND, "Getting a snapshot from leader")):
            for follower in [i for i in e.kinds if i != new_leader]:
                e.stop(follower)
                acked |= write_through(e, [new_leader], f"{prefix}{follower}", count)
                mark = len(e.log(follower))
                e.start(follower)
                assert e.wait_formed(timeout=120) == new_leader
                print(f"server {follower} ({e.kinds[follower]}) after missing {count} writes:",
                      [l[l.index(" - ", 30) + 3:] for l in log_since(e, follower, mark).splitlines() if "Getting a" in l])
                assert expect in log_since(e, follower, mark)
                assert_everywhere(e, acked)
    finally:
        e.stop_all()
    assert trace_violations(e.trace()) == []


def kazoo_stat(e: Ensemble, i: int, path: str) -> int:
    "The czxid of `path` as server `i` has it."
    zk = kazoo(e.hosts([i]))
    try:
        return zk.exists(path).czxid
    finally:
        zk.stop()
        zk.close()


NOTIFICATION = re.compile(r"Notification: my state:LOOKING; n\.sid:(\d+), n\.state:(LEADING|FOLLOWING), "
                          r"n\.leader:(\d+), n\.round:0x[0-9a-f]+, n\.peerEpoch:0x([0-9a-f]+)")


@pytest.mark.parametrize("kinds", [("java", "zkref", "zkref"), ("java", "java", "zkref"), ("zkref", "java", "java")],
                         ids=["late-java+2zkref", "late-java+java+zkref-leader", "late-zkref+2java"])
def test_late_peer_hears_the_new_epoch_from_leader_and_follower_and_follows(kinds, tmp_path):
    """Servers 2 and 3 form an ensemble (3 leads: same history, higher id) and take a write; server 1 starts
    late. Everyone it asks answers with the vote of the running epoch, the leader LEADING and the follower
    FOLLOWING, both with the new peerEpoch: Java's leader and learners update their election vote once the epoch
    is settled, so that a new server finds the leader on their answers alone (QuorumPeer.updateElectionVote,
    ZOOKEEPER-1732; FastLeaderElection.receivedFollowingNotification counts equal votes and checkLeader wants
    the leader's own LEADING). The late server follows and serves the write.
    Reference: Java Leader.lead, Learner.syncWithLeader (updateElectionVote), Vote.equals"""
    e = Ensemble(tmp_path, kinds, trace=False)
    try:
        e.start(2, 3)
        assert e.wait_formed([2, 3], timeout=120) == 3
        zk = kazoo(e.hosts([2]))
        try:
            epoch = epoch_of(zk.create("/before-the-late-peer", b"x", include_data=True)[1].czxid)
        finally:
            zk.stop()
            zk.close()
        e.start(1)
        assert e.wait_formed(timeout=120) == 3
        heard = {(int(sid), state, int(leader), int(ep, 16)) for sid, state, leader, ep in NOTIFICATION.findall(e.log(1))}
        print(f"server 1 ({kinds[0]}) heard:", sorted(heard))
        assert (3, "LEADING", 3, epoch) in heard
        assert (2, "FOLLOWING", 3, epoch) in heard
        assert {ep for _, _, _, ep in heard} == {epoch}, "an answer with a stale epoch"
        assert children_on(e, 1, "/") >= {"before-the-late-peer"}
    finally:
        e.stop_all()
