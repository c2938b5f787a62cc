"""zkref's Leader with two Java ZooKeeper 3.8 followers (1 zkref + 2 Java).

zkref (sid 3) starts with a better history than the Java peers, so zkref's FastLeaderElection and the Java
peers' elect it; zkref then runs `Leader.lead()` on its quorum port and the Java servers follow it through
discovery, a SNAP sync and broadcast. Txns proposed by the zkref leader are read back with kazoo from the
Java followers (a client of a Java follower opens its session through the zkref leader: REQUEST
createSession → PROPOSAL → COMMIT).
"""
from __future__ import annotations

import asyncio
import dataclasses
import re
import threading
from pathlib import Path

import pytest

from conftest import four_letter_word, free_port, wait_for
from zab_helpers import LoopThreadNode, kazoo
from zkref.config import QuorumMaj
from zkref.jute import CreateTxn, TxnHeader
from zkref.log import MYID
from zkref.persistence import FileTxnSnapLog, load_epochs, write_long_to_file
from zkref.quorum.cnxmanager import QuorumCnxManager
from zkref.quorum.election import ElectionPeer, FastLeaderElection, ServerState, election_view
from zkref.quorum.leader import Leader
from zkref.quorum.zab import ZabPeer, make_zxid, trace_violations
from zkref.zkdatabase import ZKDatabase

pytestmark = pytest.mark.timeout(240)
TICK_MS = 1000


def seed(data_dir: Path) -> None:
    """A history at epoch 1 (one create at 0x100000001) so that zkref wins the election."""
    files = FileTxnSnapLog(data_dir, data_dir)
    db = ZKDatabase(files)
    db.take_snapshot()
    db.append(TxnHeader(client_id=0, cxid=0, zxid=make_zxid(1, 1), time=0, type=1),
              CreateTxn(path="/seeded", data=b"by zkref", acl=[], ephemeral=False, parent_cversion=1))
    db.commit()
    db.close()
    for name in ("acceptedEpoch", "currentEpoch"):
        write_long_to_file(files.snap_dir / name, 1)


class ZkrefLeaderNode(LoopThreadNode):
    """zkref server `myid`: election (QuorumCnxManager + FastLeaderElection) then Leader, on its own loop thread."""
    call_timeout = 90

    def __init__(self, data_dir: Path, qv, myid: int = 3):
        super().__init__(data_dir, qv, myid)
        self.leader = self.fle = self.task = self.peer = None

    def elect(self):
        async def go():
            MYID.set(str(self.myid))
            files = FileTxnSnapLog(self.data_dir, self.data_dir)
            db = ZKDatabase(files)
            await asyncio.to_thread(db.load_data_base)
            last = db.get_data_tree_last_processed_zxid()
            accepted, current = load_epochs(files.snap_dir, last)
            self.eperoot = ep = ElectionPeer(self.myid, self.qv, last, current)
            view = election_view(self.qv)
            qcm = QuorumCnxManager(self.myid, view[self.myid], view)
            await qcm.start()
            self.fle = FastLeaderElection(ep, qcm, [])
            self.fle.start()
            vote = await asyncio.wait_for(self.fle.look_for_leader(), 80)
            ep.current_vote = vote
            self.peer = ZabPeer(myid=self.myid, quorum_verifier=self.qv, txn_factory=files, zk_db=db,
                                tick_time=TICK_MS, init_limit=10, sync_limit=5, leader_id=vote.id,
                                accepted_epoch=accepted, current_epoch=current, zab_trace=[])
            # The election keeps answering on `ep`: the leader's new epoch must reach the vote it answers with,
            # as QuorumPeer.updateElectionVote does on Java's one QuorumPeer object (ZOOKEEPER-1732).
            self.peer.update_election_vote = lambda epoch: setattr(
                ep, "current_vote", dataclasses.replace(ep.current_vote, peer_epoch=epoch))
            return vote, ep.peer_state
        return self.call(go())

    def lead(self):
        async def go():
            self.leader = Leader(self.peer)
            self.task = self.loop.create_task(self.leader.run())
        self.call(go())

    def started(self):
        return self.call(_v(lambda: self.leader.started.is_set()))

    def propose_create(self, path: str, data: bytes):
        async def go():
            lead = self.leader
            p = lead.propose(lead.next_txn_header(0, 0, 1),
                             CreateTxn(path=path, data=data, acl=[], ephemeral=False, parent_cversion=1))
            return await asyncio.wait_for(p.done, 30)
        return self.call(go())

    def lead_ended(self):
        return self.call(_v(lambda: self.task.done()))

    def stop(self):
        async def go():
            if self.leader is not None:
                await self.leader.shutdown("test over")
                await asyncio.gather(self.task, return_exceptions=True)
            if self.fle is not None:
                await self.fle.shutdown()
            if self.peer is not None:
                self.peer.zk_db.close()
        try:
            self.call(go())
        finally:
            self.stop_loop()


async def _v(f):
    return f()


@pytest.fixture
def zkref_leads(java_zk, tmp_path):
    """Seed zkref (sid 3), start its election, start Java 1 and 2; returns (node, javas) with zkref leading."""
    ports = {sid: (free_port(), free_port()) for sid in (1, 2, 3)}
    assert len({p for pair in ports.values() for p in pair}) == 6
    servers = {f"server.{sid}": f"127.0.0.1:{q}:{e}" for sid, (q, e) in ports.items()}
    seed(tmp_path / "zkref3")
    node = ZkrefLeaderNode(tmp_path / "zkref3", QuorumMaj.from_properties(servers))
    javas = {}
    try:
        fut = asyncio.run_coroutine_threadsafe(_v(lambda: None), node.loop)
        fut.result(5)
        elected = threading.Thread(target=lambda: setattr(node, "outcome", node.elect()))
        elected.start()
        for sid in (1, 2):
            cfg = dict(servers, tickTime=TICK_MS, initLimit=10, syncLimit=5)
            javas[sid] = java_zk(cfg, name=f"java{sid}", myid=sid, wait=False)
        elected.join(90)
        vote, state = node.outcome
        assert vote.id == 3 and state == ServerState.LEADING
        node.lead()
        yield node, javas
    finally:
        node.stop()


def test_java_followers_sync_from_zkref_leader_and_apply_its_proposals(zkref_leads, tmp_path):
    """Two Java followers register with the zkref leader, are synced (SNAP: they have nothing), ACK
    NEWLEADER and serve; the leader then commits proposals with their ACKs (a quorum), and the Java followers
    apply them: kazoo reads zkref's writes from each Java server (after a `sync`, which the Java follower
    forwards and zkref answers with SYNC). The epoch is one more than any accepted epoch, and the leader writes
    acceptedEpoch then currentEpoch.
    Reference: Java LearnerHandler.run, Leader.getEpochToPropose / waitForEpochAck / waitForNewLeaderAck,
    Leader.processAck / tryToCommit, Leader.processSync; Zab.tla LeaderProcessCEPOCH, LeaderProcessACK"""
    node, javas = zkref_leads
    for j in javas.values():
        j.wait_serving(90)
        assert "Mode: follower" in four_letter_word(j.client_port, "srvr")
    wait_for(node.started, 30, what="the zkref leader to start serving")
    zxids = [node.propose_create(f"/from-zkref{i}", f"d{i}".encode()) for i in range(3)]
    assert zxids == [make_zxid(2, 1), make_zxid(2, 2), make_zxid(2, 3)]
    for j in javas.values():
        with kazoo(j) as zk:
            zk.sync("/")                           # REQUEST(sync) → the zkref leader answers SYNC
            wait_for(lambda: zk.exists("/from-zkref2"), 30, what="the Java follower to apply zkref's txns")
            assert zk.get("/seeded")[0] == b"by zkref"                 # came with the SNAP
            assert [zk.get(f"/from-zkref{i}")[0] for i in range(3)] == [b"d0", b"d1", b"d2"]
        # a SNAP: at 0x100000001 if it synced before the leader started serving, at 0x200000000 after
        assert re.search(r"Getting a snapshot from leader 0x(100000001|200000000)\b", j.logs())
    trace = node.call(_v(lambda: list(node.peer.zab_trace)))
    # a txn is committed only after a follower's ACK (the leader alone is not a quorum of 3)
    for z in zxids:
        acks = [i for i, e in enumerate(trace) if e.kind == "recv" and e.type == "ACK" and e.zxid == z]
        commits = [i for i, e in enumerate(trace) if e.kind == "send" and e.type == "COMMIT" and e.zxid == z]
        assert acks and commits and min(acks) < min(commits)
    snap_dir = tmp_path / "zkref3" / "version-2"
    assert (snap_dir / "acceptedEpoch").read_text().strip() == "2"
    assert (snap_dir / "currentEpoch").read_text().strip() == "2"
    steps = [e.type for e in trace if e.kind == "step" and e.type in ("acceptedEpoch", "currentEpoch")]
    assert steps == ["acceptedEpoch", "currentEpoch"]
    assert trace_violations(trace, node.qv.contains_quorum) == []     # Zab.tla ShouldNotBeTriggered


def test_zkref_leader_steps_down_without_a_quorum(zkref_leads):
    """When both Java followers stop, the leader loses its synced quorum within syncLimit ticks and shuts
    down with Java's reason. Reference: Java Leader.lead ("Not sufficient followers synced, only synced with
    sids: [ … ]"); Zab.tla (a leader needs a quorum to stay)"""
    node, javas = zkref_leads
    for j in javas.values():
        j.wait_serving(90)
    wait_for(node.started, 30)
    for j in javas.values():
        j.stop()
    wait_for(node.lead_ended, 60, what="the zkref leader to step down")
    reason = node.call(_v(lambda: node.leader.shutdown_reason))
    assert re.fullmatch(r"Not sufficient followers synced, only synced with sids: \[ \[3\] \]", reason)


def test_clients_of_java_followers_write_through_the_zkref_leader(zkref_leads):
    """Writes made by clients of the Java followers are forwarded as REQUEST to the zkref leader, prepared
    by chapter 11's PrepRequestProcessor (errors included), proposed with their digest, committed and
    answered by the Java follower: creates, sets, deletes, NodeExists / BadVersion errors, an ephemeral
    node removed when its session closes, all visible from the other Java follower, and no digest mismatch
    in Java's logs. Reference: Java Leader.submitLearnerRequest, LeaderZooKeeperServer, PrepRequestProcessor,
    FollowerRequestProcessor / CommitProcessor (the follower's side)"""
    from kazoo.exceptions import BadVersionError, NodeExistsError
    node, javas = zkref_leads
    for j in javas.values():
        j.wait_serving(90)
    wait_for(node.started, 30)
    a, b = javas.values()
    with kazoo(a) as za, kazoo(b) as zb:
        za.create("/w", b"one")
        za.create("/w/child", b"c", ephemeral=True)
        with pytest.raises(NodeExistsError):
            za.create("/w", b"again")
        za.set("/w", b"two", version=0)
        with pytest.raises(BadVersionError):
            za.set("/w", b"three", version=0)
        zb.create("/z", b"from b")
        zb.delete("/z")
        zb.sync("/")
        assert zb.get("/w")[0] == b"two" and zb.exists("/w/child") and not zb.exists("/z")
        owner = zb.exists("/w/child").ephemeralOwner
    assert owner != 0
    with kazoo(b) as zb:                       # the first session closed: its ephemeral went with it
        wait_for(lambda: zb.exists("/w/child") is None, 30, what="the ephemeral to go")
        assert zb.get("/w")[0] == b"two"
    node_tree = node.call(_v(lambda: (node.peer.zk_db.get_node("/w").data, node.peer.zk_db.get_node("/w/child"))))
    assert node_tree == (b"two", None)
    digests = node.call(_v(lambda: [(p.header.type, p.digest) for p in node.peer.zk_db.committed_log
                                    if p.header.client_id != 0]))
    assert len(digests) >= 8
    # every client txn went out with its TxnDigest, except error txns (Java's PrepRequestProcessor gives those none)
    assert all((d is None) == (t == -1) for t, d in digests)
    for j in javas.values():                   # Java: DataTree.compareDigest / reportDigestMismatch
        assert "Digests are not matching" not in j.logs() and "First digest mismatch" not in j.logs()


CLIENT_SCRIPT = """
import sys, time
from kazoo.client import KazooClient
zk = KazooClient(hosts=sys.argv[1], timeout=4.0)
zk.start(timeout=30)
zk.create("/owned-by-killed-client", b"", ephemeral=True)
print(hex(zk.client_id[0]), flush=True)
time.sleep(600)
"""


def test_sessions_of_java_followers_live_and_expire_on_the_zkref_leader(zkref_leads, tmp_path):
    """Global sessions belong to the leader: a Java follower's client that stays connected keeps its
    session alive through the touches in the follower's PING replies, and one that is killed (no close) is
    expired by the zkref leader's session tracker, whose closeSession removes its ephemeral everywhere.
    Reference: Java LearnerHandler (PING touches) → Leader.touch, SessionTrackerImpl expiry,
    ZooKeeperServer.expire; Learner.ping (touch table)"""
    import subprocess
    import sys
    import time as _time
    node, javas = zkref_leads
    for j in javas.values():
        j.wait_serving(90)
    wait_for(node.started, 30)
    a, b = javas.values()
    with kazoo(a, timeout_s=4) as alive:
        alive.create("/kept-alive", b"", ephemeral=True)
        sid = alive.client_id[0]
        start = _time.monotonic()
        touched = lambda: [e.time for e in node.call(_v(lambda: list(node.peer.zab_trace)))
                           if e.kind == "recv" and e.type == "PING" and f"0x{sid & (2**64 - 1):x}:" in e.text]
        # the leader hears of the session at least until three session timeouts have passed
        wait_for(lambda: (lambda t: len(t) >= 3 and t[-1] - t[0] > 3 * alive._session_timeout / 1000)(touched()),
                 60, what="touches of the live session spanning three timeouts")
        assert alive.exists("/kept-alive") is not None
        proc = subprocess.Popen([sys.executable, "-c", CLIENT_SCRIPT, f"127.0.0.1:{b.client_port}"],
                                stdout=subprocess.PIPE, text=True)
        try:
            killed_sid = int(proc.stdout.readline().strip(), 16)
            alive.sync("/owned-by-killed-client")   # written through another follower: no read-your-writes without sync
            assert alive.exists("/owned-by-killed-client") is not None
        finally:
            proc.kill()
            proc.wait(10)
        wait_for(lambda: alive.exists("/owned-by-killed-client") is None, 60, what="the killed client's session to expire")
    expired = node.call(_v(lambda: [(p.header.type, p.header.client_id) for p in node.peer.zk_db.committed_log]))
    assert (-11, killed_sid if killed_sid < 2**63 else killed_sid - 2**64) in expired


def test_restarted_java_follower_gets_a_diff_from_the_zkref_leader(zkref_leads):
    """A Java follower that restarts a few txns behind is synced by DIFF: the zkref leader sends the missing
    committed proposals as PROPOSAL/COMMIT pairs, then NEWLEADER, and Java logs "Getting a diff from the
    leader" and serves the missed writes. Reference: Java LearnerHandler.syncFollower (committed log case),
    queueCommittedProposals; Learner.syncWithLeader (DIFF)"""
    node, javas = zkref_leads
    for j in javas.values():
        j.wait_serving(90)
    wait_for(node.started, 30)
    a, b = javas.values()
    with kazoo(a) as za:
        za.create("/before-restart", b"1")
    b.stop()
    with kazoo(a) as za:
        for i in range(3):
            za.create(f"/missed{i}", b"m")
    before = b.logs().count("Getting a diff from the leader")
    b.start(wait=False)
    b.wait_serving(90)
    wait_for(lambda: b.logs().count("Getting a diff from the leader") > before, 30, what="a DIFF sync")
    with kazoo(b) as zb:
        zb.sync("/")
        assert [zb.get(f"/missed{i}")[0] for i in range(3)] == [b"m"] * 3
    trace = node.call(_v(lambda: list(node.peer.zab_trace)))
    assert trace_violations(trace, node.qv.contains_quorum) == []


def test_java_observer_is_informed_by_the_zkref_leader(java_zk, tmp_path):
    """A Java 3.8 observer (server.1=…:observer) of an ensemble led by zkref registers with OBSERVERINFO, is
    synced, and applies committed txns sent as INFORM; its ACKs never count and its clients' writes go
    through the zkref leader. Reference: Java Leader.inform, LearnerHandler (OBSERVERINFO),
    Observer.processPacket, ObserverRequestProcessor"""
    ports = {sid: (free_port(), free_port()) for sid in (1, 2, 3)}
    servers = {f"server.{sid}": f"127.0.0.1:{q}:{e}" + (":observer" if sid == 1 else "") for sid, (q, e) in ports.items()}
    seed(tmp_path / "zkref3")
    node = ZkrefLeaderNode(tmp_path / "zkref3", QuorumMaj.from_properties(servers))
    try:
        elected = threading.Thread(target=lambda: setattr(node, "outcome", node.elect()))
        elected.start()
        javas = {}
        for sid in (1, 2):
            cfg = dict(servers, tickTime=TICK_MS, initLimit=10, syncLimit=5)
            if sid == 1:
                cfg["peerType"] = "observer"
            javas[sid] = java_zk(cfg, name=f"java{sid}", myid=sid, wait=False)
        elected.join(90)
        vote, state = node.outcome
        assert vote.id == 3 and state == ServerState.LEADING
        node.lead()
        for j in javas.values():
            j.wait_serving(90)
        assert "Mode: observer" in four_letter_word(javas[1].client_port, "srvr")
        wait_for(node.started, 30)
        node.propose_create("/for-the-observer", b"i")
        with kazoo(javas[1]) as zo:
            wait_for(lambda: zo.exists("/for-the-observer"), 30, what="the observer to apply an INFORM")
            zo.create("/from-an-observer-client", b"o")
        with kazoo(javas[2]) as zf:
            zf.sync("/")
            assert zf.get("/from-an-observer-client")[0] == b"o"
        trace = node.call(_v(lambda: list(node.peer.zab_trace)))
        assert any(e.kind == "send" and e.type == "INFORM" and e.peer == 1 for e in trace)
        assert not any(e.kind == "send" and e.type in ("PROPOSAL", "COMMIT") and e.peer == 1 and
                       (e.zxid >> 32) == 2 for e in trace)
        assert trace_violations(trace, node.qv.contains_quorum) == []
    finally:
        node.stop()


def test_late_java_peer_finds_and_follows_the_zkref_leader(java_zk, tmp_path):
    """A Java 3.8 peer that starts after zkref (leader) and one Java follower are serving learns the
    leader from their LEADING/FOLLOWING answers and follows zkref: it registers, syncs and serves zkref's
    txns. Reference: Java FastLeaderElection.receivedFollowingNotification / checkLeader, LearnerHandler.run"""
    ports = {sid: (free_port(), free_port()) for sid in (1, 2, 3)}
    servers = {f"server.{sid}": f"127.0.0.1:{q}:{e}" for sid, (q, e) in ports.items()}
    seed(tmp_path / "zkref3")
    node = ZkrefLeaderNode(tmp_path / "zkref3", QuorumMaj.from_properties(servers))
    cfg = lambda: dict(servers, tickTime=TICK_MS, initLimit=10, syncLimit=5)
    try:
        elected = threading.Thread(target=lambda: setattr(node, "outcome", node.elect()))
        elected.start()
        first = java_zk(cfg(), name="java1", myid=1, wait=False)
        elected.join(90)
        assert node.outcome[0].id == 3
        node.lead()
        first.wait_serving(90)
        wait_for(node.started, 30)
        # Java Leader.lead: once started, the leader answers LOOKING peers with the new epoch, so its LEADING
        # vote and a follower's FOLLOWING vote agree and a late peer can follow on them alone (ZOOKEEPER-1732)
        assert node.call(_v(lambda: node.eperoot.current_vote.peer_epoch)) == 2
        node.propose_create("/before-late-join", b"x")
        late = java_zk(cfg(), name="java2", myid=2, wait=False)
        late.wait_serving(90)
        assert "Mode: follower" in four_letter_word(late.client_port, "srvr")
        with kazoo(late) as zk:
            zk.sync("/")
            assert zk.get("/before-late-join")[0] == b"x"
            assert zk.get("/seeded")[0] == b"by zkref"
    finally:
        node.stop()
