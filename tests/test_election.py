"""FastLeaderElection: zkref peers elect among themselves and together with real Java ZooKeeper 3.8 servers.

Each zkref peer is a QuorumCnxManager and a FastLeaderElection over an ElectionPeer, on real sockets on
127.0.0.1 and free ports, several in one event loop. After an election a peer keeps answering LOOKING peers
with the leader it knows, as a Java peer does while it follows or leads.
"""
from __future__ import annotations

import asyncio
import logging
import re
import socket
import struct
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from conftest import four_letter_word, free_port, wait_for, until, free_ports

from zkref.config import QuorumHierarchical, QuorumMaj
from zkref.log import MYID
from zkref.quorum.cnxmanager import QuorumCnxManager, build_initial_message
from zkref.quorum.election import (ElectionPeer, FastLeaderElection, MalformedNotification, Notification, ServerState,
                                   Vote, build_msg, election_view, parse_notification)


def server_lines(sids, observers=()) -> dict[str, str]:
    "zoo.cfg `server.N` lines on 127.0.0.1 with free, distinct quorum and election ports."
    sids = list(sids)
    ports = iter(free_ports(2 * len(sids)))
    return {f"server.{sid}": f"127.0.0.1:{next(ports)}:{next(ports)}" + (":observer" if sid in observers else "")
            for sid in sids}


@dataclass
class Node:
    "One zkref election peer: its QuorumPeer slice, connection manager and election."
    peer: ElectionPeer
    qcm: QuorumCnxManager
    fle: FastLeaderElection

    async def elect(self) -> Vote:
        "One LOOKING round, then remember the outcome as the current vote, as QuorumPeer.run does."
        MYID.set(str(self.peer.myid))   # this task stands for the peer's QuorumPeer thread
        vote = await self.fle.look_for_leader()
        self.peer.current_vote = vote
        return vote

    async def stop(self) -> None:
        await self.fle.shutdown()


class Ensemble:
    "zkref peers sharing one configuration; start some, elect, stop some."
    def __init__(self, qv, **fle_options):
        self.qv, self.view, self.fle_options = qv, election_view(qv), fle_options
        self.trace: list = []
        self.nodes: dict[int, Node] = {}

    async def start(self, sid: int, zxid: int = 0, epoch: int = 0) -> Node:
        learner = self.qv.all_members[sid].type
        peer = ElectionPeer(sid, self.qv, zxid, epoch, learner_type=learner)
        qcm = QuorumCnxManager(sid, self.view[sid], self.view)
        await qcm.start()
        fle = FastLeaderElection(peer, qcm, self.trace, **self.fle_options)
        fle.start()
        self.nodes[sid] = node = Node(peer, qcm, fle)
        return node

    async def elect(self, sids) -> dict[int, Vote]:
        votes = await asyncio.wait_for(asyncio.gather(*(self.nodes[s].elect() for s in sids)), 60)
        return dict(zip(sids, votes))

    def states(self) -> dict[int, str]:
        return {sid: n.peer.peer_state.name for sid, n in self.nodes.items()}

    async def stop(self, *sids) -> None:
        for sid in sids or list(self.nodes):
            node = self.nodes.pop(sid)
            await node.stop()


def run(scenario):
    "Run an async scenario; stop every peer it started even if it fails."
    async def wrapper():
        ensembles: list[Ensemble] = []
        try:
            return await scenario(ensembles)
        finally:
            for e in ensembles:
                await e.stop()
    return asyncio.run(wrapper())


def leaders(votes: dict[int, Vote]) -> set[int]:
    return {v.id for v in votes.values()}


# ---------------------------------------------------------------------------------------------------------
# The notification


def test_notification_layout():
    """A notification is int state, long leader, long zxid, long electionEpoch, long peerEpoch, int version 2,
    int config length and the config text: 44 bytes plus the config.

    Reference: Java FastLeaderElection.buildMsg, Notification.CURRENTVERSION
    """
    msg = build_msg(ServerState.FOLLOWING, 3, 0x100000002, 7, 1, b"version=0")
    assert msg == struct.pack(">iqqqqii", 1, 3, 0x100000002, 7, 1, 2, 9) + b"version=0"
    n = parse_notification(msg, 2)
    assert n == Notification(2, 3, 0x100000002, 7, ServerState.FOLLOWING, 2, 1, "version=0")


def test_notification_legacy_and_malformed_forms():
    """The receiver accepts the 28-byte form (peerEpoch taken from the zxid) and the 40-byte form (no version),
    skips messages shorter than 28 bytes or with an impossible config length, and ignores unknown states.

    Reference: Java FastLeaderElection.Messenger.WorkerReceiver.run
    """
    n28 = parse_notification(struct.pack(">iqqq", 0, 2, 0x300000001, 4), 2)
    assert (n28.peer_epoch, n28.version, n28.config) == (3, 0, None)
    n40 = parse_notification(struct.pack(">iqqqqi", 0, 2, 5, 4, 1, 1), 2)   # the 3.4 form: version not read
    assert (n40.peer_epoch, n40.version) == (1, 0)
    with pytest.raises(MalformedNotification, match="Got a short response from server 2: 27"):
        parse_notification(bytes(27), 2)
    with pytest.raises(MalformedNotification, match=re.escape("Invalid configLength in notification message! "
                                                              "sid=2, capacity=44, version=2, configLength=99")):
        parse_notification(struct.pack(">iqqqqii", 0, 2, 5, 4, 1, 2, 99), 2)
    with pytest.raises(MalformedNotification, match="partial / malformed"):
        parse_notification(struct.pack(">iqqqqii", 0, 2, 5, 4, 1, 2, 10) + b"short", 2)
    assert parse_notification(struct.pack(">iqqqqii", 9, 2, 5, 4, 1, 2, 0), 2) is None


def test_vote_equality_out_of_election():
    """Votes of peers out of the election (FOLLOWING/LEADING) are equal when leader and peerEpoch agree, even
    with different zxids or rounds; while either is LOOKING every field must agree.

    Reference: Java Vote.equals
    """
    f = Vote(2, 0x100000003, 1, 1, ServerState.FOLLOWING, 2)
    assert f == Vote(2, 0x100000009, 5, 1, ServerState.LEADING, 2)
    assert f != Vote(2, 0x100000003, 1, 2, ServerState.LEADING, 2)
    assert Vote(2, 5, 1, 1) != Vote(2, 5, 2, 1)
    assert f == Vote(2, 1, 1, 9, ServerState.LEADING, 0)   # one side without a version: the leader id only


longs = st.integers(-(1 << 63), (1 << 63) - 1)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(list(ServerState)), longs, longs, longs, longs, st.text(max_size=200))
def test_notification_round_trip(state, leader, zxid, election_epoch, peer_epoch, config):
    """Whatever the fields, a notification decodes to what was encoded (any long, any config text).

    Reference: Java FastLeaderElection.buildMsg and WorkerReceiver.run
    """
    n = parse_notification(build_msg(state, leader, zxid, election_epoch, peer_epoch, config.encode()), 5)
    assert (n.state, n.leader, n.zxid, n.election_epoch, n.peer_epoch, n.config) == \
        (state, leader, zxid, election_epoch, peer_epoch, config)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=120))
def test_notification_decoder_never_crashes(data):
    """Any bytes decode to a notification, to None (unknown state) or to MalformedNotification — nothing else.

    Reference: Java FastLeaderElection.WorkerReceiver.run (short / partial / malformed messages skipped)
    """
    try:
        parse_notification(data, 5)
    except MalformedNotification:
        pass


# ---------------------------------------------------------------------------------------------------------
# Elections among zkref peers


@pytest.mark.parametrize("n", [3, 5])
def test_peers_elect_exactly_one_leader(n):
    """All peers of a fresh ensemble (zxid 0, epoch 0) elect the same leader, the highest sid; exactly one
    LEADING, the rest FOLLOWING.

    Reference: Java FastLeaderElection.lookForLeader; Zab.tla (at most one leader per epoch)
    """
    async def scenario(ensembles):
        e = Ensemble(QuorumMaj.from_properties(server_lines(range(1, n + 1))))
        ensembles.append(e)
        for sid in range(1, n + 1):
            await e.start(sid)
        return await e.elect(list(range(1, n + 1))), e.states()
    votes, states = run(scenario)
    assert leaders(votes) == {n}
    assert sorted(states.values()) == ["FOLLOWING"] * (n - 1) + ["LEADING"] and states[n] == "LEADING"


@pytest.mark.parametrize("history, winner", [
    ({1: (0x200000001, 2), 2: (0x100000009, 1), 3: (0x100000009, 1)}, 1),   # peerEpoch first
    ({1: (0x100000005, 1), 2: (0x100000009, 1), 3: (0x100000002, 1)}, 2),   # then zxid
    ({1: (0x100000009, 1), 2: (0x100000009, 1), 3: (0x100000001, 1)}, 2),   # then sid
])
def test_highest_epoch_zxid_sid_wins(history, winner):
    """The leader is the peer with the greatest (peerEpoch, zxid, sid), compared in that order.

    Reference: Java FastLeaderElection.totalOrderPredicate
    """
    async def scenario(ensembles):
        e = Ensemble(QuorumMaj.from_properties(server_lines(history)))
        ensembles.append(e)
        for sid, (zxid, epoch) in history.items():
            await e.start(sid, zxid, epoch)
        return await e.elect(list(history))
    votes = run(scenario)
    assert leaders(votes) == {winner}
    zxid, epoch = history[winner]
    assert all((v.zxid, v.peer_epoch) == (zxid, epoch) for v in votes.values())


def test_reelection_after_the_leader_stops():
    """When the leader stops, the remaining quorum goes LOOKING again, starts a new round (logical clock 2) and
    elects the best remaining peer.

    Reference: Java QuorumPeer.run (LOOKING after leaving FOLLOWING), FastLeaderElection.lookForLeader
    """
    async def scenario(ensembles):
        e = Ensemble(QuorumMaj.from_properties(server_lines([1, 2, 3])))
        ensembles.append(e)
        for sid in (1, 2, 3):
            await e.start(sid)
        first = await e.elect([1, 2, 3])
        await e.stop(3)
        for sid in (1, 2):   # what a follower does when its leader goes away
            e.nodes[sid].peer.peer_state = ServerState.LOOKING
        second = await e.elect([1, 2])
        return first, second, e.states(), {s: n.fle.logicalclock for s, n in e.nodes.items()}
    first, second, states, clocks = run(scenario)
    assert leaders(first) == {3} and leaders(second) == {2}
    assert states == {1: "FOLLOWING", 2: "LEADING"} and clocks == {1: 2, 2: 2}
    assert all(v.election_epoch == 2 for v in second.values())


def test_late_peer_joins_the_existing_leader():
    """A peer that starts after a leader was elected learns it from the FOLLOWING/LEADING answers of the others
    and follows it — even if its own history is better — without disturbing the ensemble.

    Reference: Java FastLeaderElection.receivedFollowingNotification (outofelection), checkLeader
    """
    async def scenario(ensembles):
        e = Ensemble(QuorumMaj.from_properties(server_lines([1, 2, 3])))
        ensembles.append(e)
        await e.start(1); await e.start(2)
        first = await e.elect([1, 2])
        await e.start(3, zxid=0x100000009, epoch=1)
        late = await e.elect([3])
        return first, late, e.states()
    first, late, states = run(scenario)
    assert leaders(first) == {2} and late[3].id == 2
    assert states == {1: "FOLLOWING", 2: "LEADING", 3: "FOLLOWING"}


def test_minority_never_elects_and_backs_off():
    """Two peers of five cannot form a quorum: they stay LOOKING, re-sending on each timeout with the wait
    doubling up to maxNotificationInterval.

    Reference: Java FastLeaderElection.lookForLeader (notTimeout back-off), QuorumMaj.containsQuorum
    """
    async def scenario(ensembles):
        e = Ensemble(QuorumMaj.from_properties(server_lines(range(1, 6))),
                     min_notification_interval_ms=20, max_notification_interval_ms=80)
        ensembles.append(e)
        for sid in (4, 5):
            await e.start(sid)
        tasks = [asyncio.ensure_future(e.nodes[s].elect()) for s in (4, 5)]
        await until(lambda: sum(ev.kind == "timeout" for ev in e.trace) >= 8, 30, "several notification timeouts")
        done = [t.done() for t in tasks]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return done, e.states()
    caplog_lines = []
    handler = logging.Handler()
    handler.emit = lambda r: caplog_lines.append((MYID.get(), r.getMessage()))
    log = logging.getLogger("FastLeaderElection")
    log.addHandler(handler)
    old_level = log.level
    log.setLevel(logging.INFO)
    try:
        done, states = run(scenario)
    finally:
        log.removeHandler(handler)
        log.setLevel(old_level)
    assert done == [False, False] and states == {4: "LOOKING", 5: "LOOKING"}
    for sid in ("4", "5"):
        waits = [int(m.split(": ")[1].split()[0]) for who, m in caplog_lines
                 if who == sid and m.startswith("Notification time out")]
        assert waits[:4] == [40, 80, 80, 80]


def test_shutdown_ends_a_waiting_election():
    """shutdown() stops a peer that is still LOOKING: look_for_leader returns None (no leader) and the peer's
    connections and tasks are gone.

    Reference: Java FastLeaderElection.shutdown, lookForLeader (loop ends when stop is set)
    """
    async def scenario(ensembles):
        e = Ensemble(QuorumMaj.from_properties(server_lines([1, 2, 3])), min_notification_interval_ms=30000)
        ensembles.append(e)
        node = await e.start(1)
        task = asyncio.ensure_future(node.fle.look_for_leader())
        await until(lambda: any(ev.kind == "round" for ev in e.trace), what="the round to start")
        await e.stop(1)
        result = await asyncio.wait_for(task, 10)
        left = [t.get_name() for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return result, left
    result, left = run(scenario)
    assert result is None and left == []


def test_hierarchical_quorum_needs_a_majority_of_groups():
    """With group.1=1:2, group.2=3:4, group.3=5, peers {1,2,3} — a plain majority of five — are no quorum (only
    group 1 has a majority); adding 5 gives groups 1 and 3, and a leader is elected.

    Reference: Java QuorumHierarchical.containsQuorum; ZooKeeper Administrator's Guide, "group.x", "weight.x"
    """
    async def scenario(ensembles):
        props = server_lines(range(1, 6)) | {"group.1": "1:2", "group.2": "3:4", "group.3": "5"}
        e = Ensemble(QuorumHierarchical.from_properties(props), min_notification_interval_ms=50,
                     max_notification_interval_ms=200)
        ensembles.append(e)
        for sid in (1, 2, 3):
            await e.start(sid)
        tasks = {s: asyncio.ensure_future(e.nodes[s].elect()) for s in (1, 2, 3)}
        await until(lambda: sum(ev.kind == "timeout" for ev in e.trace) >= 6, 30, "timeouts without a quorum")
        stuck = e.states()
        await e.start(5)
        tasks[5] = asyncio.ensure_future(e.nodes[5].elect())
        votes = dict(zip(tasks, await asyncio.wait_for(asyncio.gather(*tasks.values()), 60)))
        return stuck, votes, e.states()
    stuck, votes, states = run(scenario)
    assert set(stuck.values()) == {"LOOKING"}
    assert leaders(votes) == {5} and states[5] == "LEADING"


def test_weight_zero_voter_is_never_elected():
    """A server of weight 0 is never proposed by others, even with the best history: the others elect among
    themselves and it then follows their leader.

    Reference: Java FastLeaderElection.totalOrderPredicate (getWeight(newId) == 0)
    """
    async def scenario(ensembles):
        props = server_lines([1, 2, 3]) | {"group.1": "1:2:3", "weight.3": "0"}
        e = Ensemble(QuorumHierarchical.from_properties(props))
        ensembles.append(e)
        await e.start(1); await e.start(2); await e.start(3, zxid=0x100000009, epoch=1)
        return await e.elect([1, 2, 3]), e.states()
    votes, states = run(scenario)
    assert leaders(votes) == {2}
    assert states == {1: "FOLLOWING", 2: "LEADING", 3: "FOLLOWING"}


def test_observer_learns_the_leader_but_never_votes():
    """An observer (server.4=…:observer), even with the best history, is never elected and its notifications are
    not counted; it learns the leader from the voters' answers and goes OBSERVING.

    Reference: Java FastLeaderElection.getInitId, learningState, WorkerReceiver (non-voter answered at once)
    """
    async def scenario(ensembles):
        e = Ensemble(QuorumMaj.from_properties(server_lines([1, 2, 3, 4], observers=[4])))
        ensembles.append(e)
        for sid in (1, 2, 3):
            await e.start(sid)
        await e.start(4, zxid=0x500000000, epoch=5)
        return await e.elect([1, 2, 3, 4]), e.states(), e.trace
    votes, states, trace = run(scenario)
    assert leaders(votes) == {3}
    assert states == {1: "FOLLOWING", 2: "FOLLOWING", 3: "LEADING", 4: "OBSERVING"}
    # the observer's own proposal is Long.MIN_VALUE: it can never win
    assert {ev.leader for ev in trace if ev.kind == "round" and ev.myid == 4} == {-(1 << 63)}


def test_election_survives_bad_input_on_the_election_port(caplog):
    """Garbage on the election port — an unknown protocol version, an oversized frame, a short notification, an
    impossible config length, an unknown state — is logged with Java's lines and dropped; a stranger (sid 99,
    in no configuration) gets our current vote back; the election still elects the right leader.

    Reference: Java QuorumCnxManager.handleConnection, RecvWorker.run; FastLeaderElection.WorkerReceiver.run
    """
    caplog.set_level(logging.INFO)

    async def scenario(ensembles):
        e = Ensemble(QuorumMaj.from_properties(server_lines([1, 2, 3])))
        ensembles.append(e)
        target = await e.start(1)
        host, port = target.qcm.election_addrs[0]

        async def send(payload):
            r, w = await asyncio.open_connection(host, port)
            w.write(payload)
            await w.drain()
            return r, w

        hello = build_initial_message(99, [("127.0.0.1", 1)])
        frame = lambda b: struct.pack(">i", len(b)) + b
        junk = [struct.pack(">q", -3) + b"x" * 20,
                hello + struct.pack(">i", 600 * 1024)]
        conns = [await send(j) for j in junk]
        stranger = await send(hello + frame(bytes(10))
                              + frame(struct.pack(">iqqqqii", 0, 1, 0, 1, 0, 2, 1000))
                              + frame(struct.pack(">iqqqqii", 7, 1, 0, 1, 0, 2, 0))
                              + frame(build_msg(ServerState.LOOKING, 99, 0, 1, 0, b"version=0")))
        answer = await asyncio.wait_for(stranger[0].readexactly(48), 10)
        await e.start(2); await e.start(3)
        votes = await e.elect([1, 2, 3])
        for _, w in conns + [stranger]:
            w.close()
        return votes, answer
    votes, answer = run(scenario)
    assert leaders(votes) == {3}
    state, leader = struct.unpack_from(">iq", answer, 4)
    assert (state, leader) == (0, 1)   # server 1's current vote, for itself, while LOOKING
    for line in ["Initial message parsing error!", "Got unrecognized protocol version -3",
                 f"Received packet with invalid packet: {600 * 1024}", "Got a short response from server 99: 10",
                 "Invalid configLength in notification message! sid=99"]:
        assert any(line in r.getMessage() for r in caplog.records), line


# ---------------------------------------------------------------------------------------------------------
# Together with Java ZooKeeper 3.8

JAVA_STATE = re.compile(r"\] - (LEADING|FOLLOWING|OBSERVING)$", re.M)


def java_config(props: dict[str, str]) -> dict:
    "A Java peer's zoo.cfg settings: the shared server lines and a client port none of them uses."
    used = {int(p) for line in props.values() for p in line.split(":")[1:3]}
    client_port = next(p for p in free_ports(8) if p not in used)
    return {"initLimit": 5, "syncLimit": 2, "tickTime": 500, "electionPortBindRetry": 3,
            "4lw.commands.whitelist": "*", "clientPort": client_port, **props}


def java_first_decision(server) -> str | None:
    m = JAVA_STATE.search(server.logs())
    return m.group(1) if m else None


def java_leader_quorum_port(server) -> int | None:
    "The quorum port a Java follower dials: the port of the leader it chose."
    m = re.search(r"(?:Failed connect to|connecting to) [^ ]*?/127\.0\.0\.1:(\d+)", server.logs())
    return int(m.group(1)) if m else None


def quorum_port(props, sid) -> int:
    return int(props[f"server.{sid}"].split(":")[1])


@pytest.mark.java
@pytest.mark.slow
def test_two_java_peers_and_one_zkref_peer_agree(java_zk):
    """Two Java 3.8 peers (sids 2, 3) and a zkref peer (sid 1) elect the same leader: the Java peer `srvr` calls
    leader is the one zkref follows, and the other Java peer is its follower. (Which of 2 and 3 wins depends
    on start-up timing: once 1 and 2 agree and finalizeWait passes without news, 2 leads — Java does the same.)

    Reference: Java FastLeaderElection (wire compatibility); ZooKeeper Administrator's Guide, "srvr"
    """
    props = server_lines([1, 2, 3])

    async def scenario(ensembles):
        e = Ensemble(QuorumMaj.from_properties(props))
        ensembles.append(e)
        await e.start(1)
        task = asyncio.ensure_future(e.nodes[1].elect())
        javas = {sid: java_zk(java_config(props), name=f"java{sid}", myid=sid, wait=False) for sid in (2, 3)}
        vote = await asyncio.wait_for(task, 90)
        loop = asyncio.get_running_loop()
        modes = {}
        for sid, j in javas.items():
            await loop.run_in_executor(None, j.wait_serving, 60)
            modes[sid] = re.search(r"Mode: (\w+)", four_letter_word(j.client_port, "srvr")).group(1)
        return vote, e.states(), modes
    vote, states, modes = run(scenario)
    assert states == {1: "FOLLOWING"} and vote.id in (2, 3)
    assert modes[vote.id] == "leader" and sorted(modes.values()) == ["follower", "leader"]


@pytest.mark.java
@pytest.mark.slow
def test_one_java_peer_and_two_zkref_peers_agree(java_zk):
    """A Java 3.8 peer (sid 1) and two zkref peers (sids 2, 3) elect the same leader, one of the zkref peers:
    zkref decides LEADING/FOLLOWING and Java's first decision is FOLLOWING, dialling that leader's quorum
    port. (Java then fails to sync with zkref, which has no Zab yet: only the first election is checked.)

    Reference: Java FastLeaderElection (wire compatibility), QuorumPeer.run ("FOLLOWING"), Learner.connectToLeader
    """
    props = server_lines([1, 2, 3])

    async def scenario(ensembles):
        java = java_zk(java_config(props), name="java1", myid=1, wait=False)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, lambda: wait_for(lambda: "New election" in java.logs(), 60, what="Java LOOKING"))
        e = Ensemble(QuorumMaj.from_properties(props))
        ensembles.append(e)
        await e.start(2); await e.start(3)
        votes = await e.elect([2, 3])
        await loop.run_in_executor(None, lambda: wait_for(lambda: java_leader_quorum_port(java), 60,
                                                          what="Java to dial its leader"))
        return votes, e.states(), java_first_decision(java), java_leader_quorum_port(java)
    votes, states, java_state, java_dials = run(scenario)
    (leader,) = leaders(votes)
    assert leader in (2, 3) and states[leader] == "LEADING" and sorted(states.values()) == ["FOLLOWING", "LEADING"]
    assert java_state == "FOLLOWING" and java_dials == quorum_port(props, leader)


@pytest.mark.java
@pytest.mark.slow
def test_zkref_peer_joins_a_running_java_ensemble(java_zk):
    """A zkref peer (sid 3, better history) that starts after two Java peers elected a leader learns and follows
    that leader (Java's sid 2) from their FOLLOWING/LEADING answers.

    Reference: Java FastLeaderElection.receivedFollowingNotification, checkLeader
    """
    props = server_lines([1, 2, 3])

    async def scenario(ensembles):
        javas = [java_zk(java_config(props), name=f"java{sid}", myid=sid, wait=False) for sid in (1, 2)]
        loop = asyncio.get_running_loop()
        for j in javas:
            await loop.run_in_executor(None, j.wait_serving, 60)
        e = Ensemble(QuorumMaj.from_properties(props))
        ensembles.append(e)
        await e.start(3, zxid=0x100000009, epoch=1)
        return await e.elect([3]), e.states()
    votes, states = run(scenario)
    assert votes[3].id == 2 and states == {3: "FOLLOWING"}
