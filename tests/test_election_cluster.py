"""Leader election of whole QuorumPeers in a MiniCluster: in-process, one process per server, and mixed with
real Java ZooKeeper 3.8 servers.

Every server runs the full start-up (zoo.cfg → run_from_config → QuorumPeer.start → the peer loop) and plays
Zab's roles after each election (the default of `create_quorum_peer`), as `python -m zkref` does: a leader is
"settled" once it has reached Zab's broadcast phase with a quorum synced.
"""
from __future__ import annotations

import asyncio
import re

import pytest

from conftest import run_on_cluster as run, fle_winner
from zkref.persistence import read_long_from_file
from zkref.testing import MiniCluster, java_available


async def settled(cluster: MiniCluster, timeout_s: float = 30.0, other_than=frozenset()) -> int:
    "The settled leader, after checking that exactly one server leads and every other live voter follows it."
    leader = await cluster.wait_for_leader(timeout_s, other_than)
    return leader


@pytest.mark.parametrize("n", [3, 5])
def test_ensemble_elects_exactly_one_leader(n):
    """A fresh ensemble of n servers elects exactly one leader, and every other server follows it (all
    histories are empty, so the highest sid wins).

    Reference: Zab.tla / FastLeaderElection: at most one leader per epoch; Java FastLeaderElection.totalOrderPredicate
    """
    async def scenario(c):
        await c.start()
        leader = await settled(c)
        for sid in range(1, n):          # every other server, once it has joined: a dropped duplicate election
            await c.wait_state(sid, "FOLLOWING")   # connection can leave one LOOKING a little longer
        return leader, c.states()
    leader, states = run(scenario, n)
    assert leader == n
    assert sorted(states.values()) == ["FOLLOWING"] * (n - 1) + ["LEADING"]


@pytest.mark.parametrize("history, winner", [
    ({1: 0x100000007, 2: 0x100000003, 3: 0x100000003}, 1),     # longest log in the same epoch
    ({1: 0x100000009, 2: 0x200000001, 3: 0x100000009}, 2),     # a later epoch beats a longer log
    ({1: 0x100000004, 2: 0x100000004, 3: 0x100000002}, 2),     # equal history: the higher sid
])
def test_highest_epoch_zxid_sid_wins(history, winner):
    """The server with the highest (peerEpoch, last zxid, sid) becomes leader. Each data directory is seeded
    with a real txn log; the epoch files are created from it at start-up, so each server's first vote carries
    its log's epoch. Once Zab has synced, every server's currentEpoch (in memory and on disk) is the new epoch:
    one more than the highest accepted epoch.

    Reference: Java FastLeaderElection.totalOrderPredicate, QuorumPeer.loadDataBase, Leader.getEpochToPropose;
    Zab.tla LeaderProcessCEPOCH
    """
    async def scenario(c):
        for sid, zxid in history.items():
            c.seed(sid, zxid)
        await c.start()
        leader = await settled(c)
        await c.wait_serving()
        proposed = {sid: re.search(r"New election\. My id = \d+, proposed zxid=0x(\w+)", c.logs(sid)).group(1)
                    for sid in c.sids}
        epochs = {sid: (c.peer(sid).current_epoch, read_long_from_file(c.members[sid].dir / "data" / "version-2" / "currentEpoch"))
                  for sid in c.sids}
        return leader, proposed, epochs
    leader, proposed, epochs = run(scenario, 3)
    assert leader == winner
    assert proposed == {sid: f"{zxid:x}" for sid, zxid in history.items()}
    new_epoch = max(zxid >> 32 for zxid in history.values()) + 1
    assert epochs == {sid: (new_epoch, new_epoch) for sid in history}


@pytest.mark.slow
def test_reelection_after_the_leader_is_killed():
    """SIGKILL the leader of a 3-server ensemble (one process each): the two survivors notice the leader is
    gone, go back to LOOKING and elect a new leader between them; the killed server, restarted from its data
    directory, joins that new leader as a follower. (The first leader depends on which processes were up
    first. The survivors synced in the same epoch, but not necessarily to the same zxid — a follower synced by
    SNAP holds the leader's NEWLEADER zxid, one synced by an empty DIFF its old one — so the new leader is the
    one with the higher (last zxid, sid), as their votes in the new election say.)

    Reference: Java QuorumPeer.run (a role ends → updateServerState → LOOKING), FastLeaderElection.totalOrderPredicate,
    receivedFollowingNotification
    """
    async def scenario(c):
        await c.start()
        first = await settled(c, 60)
        await c.wait_serving(timeout_s=60)      # both followers synced (in the same epoch)
        await c.kill(first)
        second = await settled(c, 60, other_than={first})
        expected = fle_winner(c, set(c.sids) - {first})
        await c.restart(first)
        await c.wait_state(first, "FOLLOWING", 60)
        return first, second, expected, await settled(c, 60), c.logs(first)
    first, second, expected, final, log = run(scenario, 3, mode="process")
    assert second == expected and final == second
    assert f"Starting quorum peer, myid={first}" in log


def test_restarted_follower_rejoins_the_leader():
    """A follower that stops and starts again does not disturb the ensemble: the others answer its
    notifications with FOLLOWING/LEADING votes and it follows the same leader.

    Reference: Java FastLeaderElection.receivedFollowingNotification, checkLeader
    """
    async def scenario(c):
        await c.start()
        leader = await settled(c)
        await c.restart(1)
        await c.wait_state(1, "FOLLOWING")
        return leader, c.peer(1).current_vote.id, c.leader()
    leader, followed, still = run(scenario, 3)
    assert leader == 3 and followed == 3 and still == 3


def test_minority_partition_never_elects():
    """Cut server 1 off from 2 and 3: 2 and 3 elect a leader between them, 1 stays LOOKING (its notification
    interval backs off) and never leads. After heal(), 1 joins the majority's leader.

    Reference: Zab.tla (a quorum is needed to elect); Java FastLeaderElection.lookForLeader (notTimeout back-off)
    """
    async def scenario(c):
        c.seed(1, 0x100000009)          # the best history: it would win if it could reach anyone
        c.partition({1}, {2, 3})
        await c.start()
        leader = await settled(c)
        await asyncio.wait_for(_until(lambda: "Notification time out: 800 ms" in c.logs(1)), 30)
        states_cut = c.states()
        log = c.logs(1)
        c.heal()
        await c.wait_state(1, "FOLLOWING", 60)
        return leader, states_cut, log, c.leader()
    leader, states_cut, log, after = run(scenario, 3)
    assert leader == 3 and states_cut[1] == "LOOKING" and after == 3
    assert "LEADING" not in re.findall(r"\] - (\w+)$", log, re.M)


def test_leader_cut_off_steps_down_and_majority_reelects():
    """When the leader is cut off from both followers, the followers lose it and elect a new leader; the old
    leader, without a quorum, steps down and stays LOOKING. The cut comes once both followers serve, so both have
    taken the leader's epoch at NEWLEADER (a follower cut off before its NEWLEADER still votes with epoch 0 and
    loses to the other, in Java as in zkref). They synced in the same epoch but not necessarily to the same
    zxid — one synced by SNAP holds the leader's NEWLEADER zxid, one synced by an empty DIFF its old one — so the
    new leader is the one with the higher (last zxid, sid), as their votes in the new election say.

    Reference: Java Leader.lead ("Not sufficient followers synced" / epoch timeout), Learner read timeouts,
    FastLeaderElection.totalOrderPredicate
    """
    async def scenario(c):
        await c.start()
        first = await settled(c)
        await c.wait_serving()
        c.disconnect(first)
        second = await settled(c, other_than={first})
        expected = fle_winner(c, set(c.sids) - {first})
        await c.wait_state(first, "LOOKING")
        return first, second, expected, c.states()[first], c.logs(first)
    first, second, expected, state, log = run(scenario, 3)
    assert first == 3 and second == expected and state == "LOOKING"
    assert "Shutdown called. For the reason" in log


def test_hierarchical_quorum_needs_a_majority_of_groups():
    """With groups {1,2,3} {4,5,6} {7,8,9}, a quorum is a majority of the weight in a majority of groups: with
    only group 1 and one server of group 2 running there is no leader; a second server of group 2 makes one.

    Reference: Java QuorumHierarchical.containsQuorum; ZooKeeper Administrator's Guide, "group.x" / "weight.x"
    """
    groups = {"group.1": "1:2:3", "group.2": "4:5:6", "group.3": "7:8:9"}
    weights = {f"weight.{i}": 1 for i in range(1, 10)}

    async def scenario(c):
        await c.start([1, 2, 3, 4])
        await c.wait_state(1, "LOOKING")
        no_leader = c.leader()
        await c.start_server(5)
        leader = await settled(c, 60)
        return no_leader, leader, c.states()
    no_leader, leader, states = run(scenario, 9, config={**groups, **weights})
    assert no_leader is None
    assert leader == 5 and states[1] == "FOLLOWING" and states[9] is None


def test_observers_follow_but_do_not_vote():
    """Observers learn the leader (OBSERVING) but never count towards a quorum: two observers and one voter
    of three elect nothing; the second voter makes a leader, and the observers observe it.

    Reference: Java FastLeaderElection (observers' votes are ignored), QuorumPeer.run (OBSERVING); Observers guide
    """
    async def scenario(c):
        await c.start([1, 4, 5])
        await c.wait_state(1, "LOOKING")
        assert c.leader() is None
        await c.start_server(2)
        leader = await settled(c)
        await c.wait_state(4, "OBSERVING")
        await c.wait_state(5, "OBSERVING")
        await c.wait_serving([4, 5])
        srvr = await c.four_letter_word(4, "srvr")
        return leader, c.states(), c.peer(4).current_vote.id, srvr
    leader, states, observed, srvr = run(scenario, 3, observers=2)
    assert leader == 2 and observed == 2 and states[3] is None
    assert "Mode: observer" in srvr


# ---------------------------------------------------------------------------------------------------------
# Mixed ensembles with Java ZooKeeper 3.8

java = pytest.mark.skipif(not java_available(), reason="Java ZooKeeper 3.8 (Debian package zookeeper) is not installed")


def java_decisions(log: str) -> list[str]:
    return re.findall(r"\] - (LEADING|FOLLOWING|OBSERVING)\s*$", log, re.M)


def java_leader_port(log: str) -> int | None:
    "The quorum port a Java follower dialled first: its leader's (through the mini cluster's proxy)."
    m = re.search(r"(?:Successfully connected to leader, using address:|Failed connect to) [^ ]*?/127\.0\.0\.1:(\d+)", log)
    return int(m.group(1)) if m else None


def first_decision(c: MiniCluster, sid: int):
    "The leader an in-process zkref server chose in its first election (from the trace)."
    decisions = [e for e in c.trace if e.kind == "decide" and e.myid == sid]
    return decisions[0].leader if decisions else None


@java
@pytest.mark.java
@pytest.mark.slow
def test_two_java_and_one_zkref_elect_the_same_leader():
    """Two Java 3.8 servers (sids 2, 3) and a zkref server (sid 1) elect the same leader on the first try: Java's
    sid 3 has the longest history, so zkref's first decision is to follow 3, Java 3's first decision is LEADING
    and Java 2's is FOLLOWING; then all three serve (`srvr`): the zkref follower synced with the Java leader
    and holds its five txns. (The servers start 1, 3, 2, each once the previous one
    is LOOKING, so the best candidate is present from the start; with staggered starts and equal histories FLE
    lets a server decide on a quorum that another member has already left, in Java as in zkref.)

    Reference: Java FastLeaderElection (wire compatibility, totalOrderPredicate), QuorumPeer.run state lines
    """
    async def scenario(c):
        c.seed(3, 0x100000005)
        await c.start([1])
        await c.wait_state(1, "LOOKING")
        await c.start([3])
        await asyncio.wait_for(_until(lambda: "New election" in c.logs(3)), 90)
        await c.start([2])
        await asyncio.wait_for(_until(lambda: first_decision(c, 1) and all(java_decisions(c.logs(s)) for s in (2, 3))), 90)
        serving = await asyncio.wait_for(_until_serving(c, (1, 2, 3)), 90)
        return (first_decision(c, 1), java_decisions(c.logs(3))[0], java_decisions(c.logs(2))[0], serving,
                c.peer(1).zk_db.get_data_tree_last_processed_zxid())
    zkref_choice, java3, java2, serving, zkref_zxid = run(scenario, 3, java={2, 3})
    assert zkref_choice == 3 and java3 == "LEADING" and java2 == "FOLLOWING"
    assert serving == {1: "follower", 2: "follower", 3: "leader"}
    assert zkref_zxid >= 0x100000005


@java
@pytest.mark.java
@pytest.mark.slow
def test_one_java_and_two_zkref_elect_the_same_leader():
    """A Java 3.8 server (sid 1) and two zkref servers (2, 3) elect zkref's sid 3 on the first try: Java's
    first decision is FOLLOWING, it dials server 3's quorum port, syncs with the zkref leader and serves
    (`srvr` says `Mode: follower`) without ever going back to LOOKING.

    Reference: Java FastLeaderElection (wire compatibility), Learner.connectToLeader
    """
    async def scenario(c):
        await c.start()
        leader = await settled(c, 90)
        await asyncio.wait_for(_until(lambda: java_leader_port(c.logs(1))), 90)
        serving = await asyncio.wait_for(_until_serving(c, (1,)), 90)
        log = c.logs(1)
        states = re.findall(r"\] - (LOOKING|FOLLOWING|LEADING)\s*$", log, re.M)
        return leader, java_decisions(log)[0], java_leader_port(log), c.members[leader].quorum_proxy_port, serving, states
    leader, java1, dialled, leader_port, serving, states = run(scenario, 3, java={1})
    assert leader == 3 and java1 == "FOLLOWING" and dialled == leader_port
    assert serving == {1: "follower"} and states == ["LOOKING", "FOLLOWING"]


async def _until(cond):
    while not cond():
        await asyncio.sleep(0.05)
    return cond()


async def _until_text(c: MiniCluster, sid: int, text: str) -> str:
    while text not in (answer := await c.four_letter_word(sid, "srvr")):
        await asyncio.sleep(0.1)
    return answer


async def _until_serving(c: MiniCluster, sids) -> dict[int, str]:
    "Wait until every server of `sids` answers `srvr` with a Mode; their modes."
    while True:
        modes = {}
        for sid in sids:
            m = re.search(r"Mode: (\w+)", await c.four_letter_word(sid, "srvr"))
            if m:
                modes[sid] = m.group(1)
        if len(modes) == len(sids):
            return modes
        await asyncio.sleep(0.1)


def test_a_second_learner_shutdown_waits_for_the_first_to_write_the_log():
    """A follower's role can end by itself (the leader is gone) while the peer shuts down too. The peer closes its
    log files right after `role.shutdown` returns, so a second `shutdown` must not return before the first has
    made its last disk write (the commit that Learner.shutdown → ZooKeeperServer.shutdown runs); otherwise the
    peer closes the files under that commit, as one CI run saw (`'NoneType' object has no attribute 'commit'`).
    Java's shutdowns run on the thread that calls them, so the peer's own call is what writes.
    Reference: Java Learner.shutdown, QuorumPeer.shutdown (follower.shutdown() before zkDb.close())."""
    async def scenario(c):
        await c.start()
        leader = await settled(c)
        await c.wait_serving()
        follower = next(s for s in c.sids if s != leader)
        peer = c.members[follower].runner.main.quorum_peer
        role = peer.role
        first = asyncio.create_task(role.shutdown("the leader is gone"))
        await asyncio.sleep(0)                          # the first shutdown has begun
        assert role.stopped.is_set() and not role.finished.is_set()
        await role.shutdown("quorum Peer shutdown")     # what the peer's own shutdown calls
        finished_when_second_returned = role.finished.is_set()
        await first
        await c.stop(follower)                          # closes the peer's files after the role's last write
        return finished_when_second_returned, c.logs(follower)
    finished, log = run(scenario, 3)
    assert finished
    assert "Error updating DB" not in log and "Traceback" not in log
