"""zkref's Follower as the third member of a Java ZooKeeper 3.8 ensemble (2 Java + 1 zkref).

The two Java servers elect a leader between themselves (2 of 3 is a quorum); zkref's Follower is then
pointed at the leader (its id read from `srvr`) and runs Zab on the real quorum port: discovery, sync by
SNAP / DIFF / TRUNC, and broadcast. Writes go through kazoo to the Java servers.
"""
from __future__ import annotations

import asyncio
import re
import threading
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from conftest import four_letter_word, free_port, wait_for
from zab_helpers import LoopThreadNode, const as _const, kazoo
from zkref.config import QuorumMaj
from zkref.jute import CreateTxn, TxnHeader
from zkref.log import MYID
from zkref.persistence import FileTxnSnapLog, load_epochs
from zkref.quorum.learner import Follower, Observer
from zkref.quorum.zab import ZabPeer, epoch_of, make_zxid, trace_violations
from zkref.zkdatabase import ZKDatabase

pytestmark = pytest.mark.timeout(240)
TICK_MS = 1000


class ZkrefFollower(LoopThreadNode):
    """A zkref Follower (server `myid`) on its own event loop thread, restartable from its data dir."""
    def __init__(self, data_dir: Path, qv, myid: int = 3):
        super().__init__(data_dir, qv, myid)
        self.peer = self.follower = self.task = None

    def start(self, leader_id: int, role=Follower):
        async def go():
            MYID.set(str(self.myid))
            files = FileTxnSnapLog(self.data_dir, self.data_dir)
            db = ZKDatabase(files)
            await asyncio.to_thread(db.load_data_base)
            accepted, current = load_epochs(files.snap_dir, db.get_data_tree_last_processed_zxid())
            self.peer = ZabPeer(myid=self.myid, quorum_verifier=self.qv, txn_factory=files, zk_db=db,
                                tick_time=TICK_MS, init_limit=10, sync_limit=5, leader_id=leader_id,
                                accepted_epoch=accepted, current_epoch=current, zab_trace=[])
            self.follower = role(self.peer)
            self.task = asyncio.get_running_loop().create_task(self.follower.run())
        self.call(go())
        return self

    def stop(self):
        if self.follower is None:
            return
        assert trace_violations(self.trace()) == []      # Zab.tla ShouldNotBeTriggered, as zkref saw it
        async def go():
            await self.follower.shutdown("test stop")
            await asyncio.gather(self.task, return_exceptions=True)
            self.peer.zk_db.close()
        self.call(go())
        self.follower = None

    def close(self):
        self.stop()
        self.stop_loop()

    # what the tests look at, read on the follower's loop
    def node(self, path):
        async def go():
            n = self.peer.zk_db.get_node(path)
            return None if n is None else bytes(n.data or b"")
        return self.call(go())

    def trace(self):
        async def go():
            return list(self.peer.zab_trace)
        return self.call(go())

    def broadcasting(self):
        return self.call(_const(self.peer.zab_state == "BROADCAST"))


@pytest.fixture
def ensemble(java_zk, tmp_path):
    """Two Java 3.8 servers (1, 2) configured for three; returns (java servers, qv, leader id)."""
    ports = {sid: (free_port(), free_port()) for sid in (1, 2, 3)}
    servers = {f"server.{sid}": f"127.0.0.1:{q}:{e}" for sid, (q, e) in ports.items()}
    javas = {}
    for sid in (1, 2):
        cfg = dict(servers, tickTime=TICK_MS, initLimit=10, syncLimit=5)
        javas[sid] = java_zk(cfg, name=f"java{sid}", myid=sid, wait=False)
    for j in javas.values():
        j.wait_serving(90)
    qv = QuorumMaj.from_properties(servers)
    leader = next(sid for sid, j in javas.items() if "Mode: leader" in four_letter_word(j.client_port, "srvr"))
    return javas, qv, leader


@pytest.fixture
def zkref_follower(tmp_path):
    made = []
    def make(qv):
        f = ZkrefFollower(tmp_path / "zkref3", qv)
        made.append(f)
        return f
    yield make
    for f in made:
        f.close()


def kinds(trace, *types):
    return [(e.kind, e.type) for e in trace if e.type in types]


def restored(data_dir: Path) -> ZKDatabase:
    db = ZKDatabase(FileTxnSnapLog(data_dir, data_dir))
    db.load_data_base()
    return db


def test_follower_joins_java_ensemble_by_snap_and_replicates_writes(ensemble, zkref_follower, tmp_path):
    """A fresh zkref follower registers with a Java leader (FOLLOWERINFO → LEADERINFO → ACKEPOCH), is sent a
    SNAP, persists acceptedEpoch on LEADERINFO and currentEpoch after fsync and before the NEWLEADER ACK, then
    logs and applies every PROPOSAL/COMMIT: writes made through a Java server appear in zkref's tree and on
    its disk. Reference: Java Learner.registerWithLeader, Learner.syncWithLeader, Follower.processPacket;
    Zab.tla FollowerProcessNEWEPOCH, FollowerProcessNEWLEADER"""
    javas, qv, leader = ensemble
    with kazoo(javas[leader]) as zk:
        zk.create("/before", b"b1")
        f = zkref_follower(qv).start(leader)
        wait_for(lambda: f.broadcasting(), 60, what="zkref to reach BROADCAST")
        for i in range(5):
            zk.create(f"/after{i}", f"v{i}".encode())
        zk.set("/before", b"b2")
        last = zk.exists("/before").mzxid
    wait_for(lambda: f.node("/before") == b"b2", 30, what="the last write to reach zkref")
    assert [f.node(f"/after{i}") for i in range(5)] == [f"v{i}".encode() for i in range(5)]

    trace = f.trace()
    sent_recv = [(e.kind, e.type) for e in trace if e.kind != "step" and e.type != "PING"]
    assert sent_recv[:4] == [("send", "FOLLOWERINFO"), ("recv", "LEADERINFO"), ("send", "ACKEPOCH"), ("recv", "SNAP")]
    new_epoch = epoch_of(next(e.zxid for e in trace if e.type == "LEADERINFO"))
    # acceptedEpoch is on disk before ACKEPOCH goes out; currentEpoch before the NEWLEADER ack
    steps = [(e.kind, e.type) for e in trace if e.type in ("acceptedEpoch", "ACKEPOCH", "NEWLEADER", "currentEpoch", "ACK")]
    assert steps.index(("step", "acceptedEpoch")) < steps.index(("send", "ACKEPOCH"))
    i_nl = steps.index(("recv", "NEWLEADER"))
    assert steps[i_nl + 1:i_nl + 3] == [("step", "currentEpoch"), ("send", "ACK")]
    # every broadcast proposal was ACKed after its fsync (the session's close, proposed as the client left, may
    # still be on its way to the disk: wait for its ACK, then read the trace again)
    proposed = lambda t: {e.zxid for e in t if e.kind == "recv" and e.type == "PROPOSAL"}
    acked = lambda t: {e.zxid for e in t if e.kind == "send" and e.type == "ACK"}
    wait_for(lambda: proposed(t := f.trace()) <= acked(t), 30, what="an ACK for every PROPOSAL")
    trace = f.trace()
    assert len(proposed(trace)) >= 6 and proposed(trace) <= acked(trace)

    f.stop()
    snap_dir = tmp_path / "zkref3" / "version-2"
    assert (snap_dir / "acceptedEpoch").read_text().strip() == str(new_epoch)
    assert (snap_dir / "currentEpoch").read_text().strip() == str(new_epoch)
    db = restored(tmp_path / "zkref3")
    assert db.get_node("/before").data == b"b2" and db.get_node("/after4").data == b"v4"
    assert db.get_data_tree_last_processed_zxid() >= last   # (+1: the kazoo session's closeSession)
    assert any(p.name.startswith("snapshot.") for p in snap_dir.iterdir())   # the SNAP was persisted


def test_restarted_follower_syncs_by_diff(ensemble, zkref_follower, tmp_path):
    """A follower that restarts from its own disk and is only a few txns behind gets a DIFF (PROPOSAL+COMMIT
    pairs from the leader's committed log), not a SNAP. Reference: Java LearnerHandler.syncFollower (case 4),
    Learner.syncWithLeader (DIFF)"""
    javas, qv, leader = ensemble
    with kazoo(javas[leader]) as zk:
        zk.create("/a", b"1")
        f = zkref_follower(qv).start(leader)
        wait_for(lambda: f.broadcasting(), 60, what="first sync")
        wait_for(lambda: f.node("/a") == b"1", 30)
        f.stop()
        for i in range(3):
            zk.create(f"/missed{i}", b"m")
        f.start(leader)
        wait_for(lambda: f.broadcasting(), 60, what="second sync")
        zk.create("/live", b"l")
    wait_for(lambda: f.node("/live") == b"l", 30)
    assert all(f.node(f"/missed{i}") == b"m" for i in range(3))
    trace = f.trace()
    first_sync = next(e for e in trace if e.type in ("DIFF", "SNAP", "TRUNC") and e.kind == "recv")
    assert first_sync.type == "DIFF"
    f.stop()
    assert restored(tmp_path / "zkref3").get_node("/missed2") is not None


def test_follower_ahead_of_the_leader_is_truncated(ensemble, zkref_follower, tmp_path):
    """A follower whose log holds txns the leader never committed (same epoch, past the leader's
    maxCommittedLog) is told TRUNC and drops them from its tree and its log.
    Reference: Java LearnerHandler.syncFollower (case 3), Learner.syncWithLeader (TRUNC), ZKDatabase.truncateLog"""
    javas, qv, leader = ensemble
    with kazoo(javas[leader]) as zk:
        f = zkref_follower(qv).start(leader)
        wait_for(lambda: f.broadcasting(), 60, what="first sync")
        zk.create("/kept", b"k")          # logged by zkref through PROPOSAL, so its log holds this zxid
        wait_for(lambda: f.node("/kept") == b"k", 30)
        last = zk.exists("/kept").mzxid
        f.stop()
        # forge two txns the leader never proposed, right after its last zxid
        files = FileTxnSnapLog(tmp_path / "zkref3", tmp_path / "zkref3")
        for i, z in enumerate((last + 1, last + 2)):
            files.append(TxnHeader(client_id=0, cxid=i, zxid=z, time=0, type=1),
                         CreateTxn(path=f"/ghost{i}", data=b"", acl=[], ephemeral=False, parent_cversion=2 + i))
        files.commit()
        files.close()
        assert restored(tmp_path / "zkref3").get_node("/ghost1") is not None
        f.start(leader)
        wait_for(lambda: f.broadcasting(), 60, what="sync after forging")
        zk.create("/after", b"a")
    wait_for(lambda: f.node("/after") == b"a", 30)
    assert f.node("/ghost0") is None and f.node("/ghost1") is None
    trunc = next(e for e in f.trace() if e.kind == "recv" and e.type in ("DIFF", "SNAP", "TRUNC"))
    assert (trunc.type, trunc.zxid) == ("TRUNC", last)
    f.stop()
    db = restored(tmp_path / "zkref3")
    assert db.get_node("/ghost0") is None and db.get_node("/after").data == b"a"


def test_zkref_acks_complete_the_quorum(ensemble, zkref_follower):
    """With the Java follower stopped, the Java leader and zkref are 2 of 3: writes still commit, which
    they only can if zkref's ACKs (sent after fsync) are counted by the leader, and zkref answers PINGs
    within syncLimit so the leader keeps leading. Reference: Java Leader.processAck / tryToCommit,
    SendAckRequestProcessor, Learner.ping; Zab.tla LeaderProcessACK"""
    javas, qv, leader = ensemble
    other = next(sid for sid in javas if sid != leader)
    f = zkref_follower(qv).start(leader)
    wait_for(lambda: f.broadcasting(), 60, what="zkref to sync")
    javas[other].stop()
    with kazoo(javas[leader]) as zk:
        for i in range(3):
            zk.create(f"/q{i}", b"x")
        assert zk.get("/q2")[0] == b"x"
    wait_for(lambda: f.node("/q2") == b"x", 30)
    assert "Mode: leader" in four_letter_word(javas[leader].client_port, "srvr")
    assert "transaction timeout" not in javas[leader].logs()
    assert re.search(r"Follower sid: 3 : info : ", javas[leader].logs())


def test_zkref_quorum_peer_with_zab_roles_follows_java_after_its_own_election(java_zk, tmp_path):
    """A full zkref QuorumPeer (sid 3, FastLeaderElection then the Zab roles) joins a running Java 3.8
    ensemble: its election learns the Java leader, FOLLOWING runs Follower.followLeader against it, and
    writes made through Java reach zkref; when the Java leader stops, zkref and the other Java server elect a
    new leader (zkref, with the higher sid and the same zxid) in a new epoch, and a client of the Java server
    writes through it. Reference: Java QuorumPeer.run (FOLLOWING → followLeader, then
    LOOKING), FastLeaderElection; Zab.tla GlobalPrimaryOrder"""
    from zkref.quorum.learner import zab_roles
    from zkref.quorum.peer import QuorumPeer
    from zkref.quorum.election import ServerState
    ports = {sid: (free_port(), free_port()) for sid in (1, 2, 3)}
    servers = {f"server.{sid}": f"127.0.0.1:{q}:{e}" for sid, (q, e) in ports.items()}
    javas = {sid: java_zk(dict(servers, tickTime=TICK_MS, initLimit=10, syncLimit=5), name=f"java{sid}", myid=sid,
                          wait=False) for sid in (1, 2)}
    for j in javas.values():
        j.wait_serving(90)
    leader = next(sid for sid, j in javas.items() if "Mode: leader" in four_letter_word(j.client_port, "srvr"))

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    call = lambda coro, t=90: asyncio.run_coroutine_threadsafe(coro, loop).result(t)
    peer = QuorumPeer([])
    peer.myid, peer.quorum_verifier = 3, QuorumMaj.from_properties(servers)
    peer.tick_time, peer.init_limit, peer.sync_limit = TICK_MS, 10, 5
    peer.txn_factory = FileTxnSnapLog(tmp_path / "zkref3", tmp_path / "zkref3")
    peer.zk_db = ZKDatabase(peer.txn_factory)
    peer.role_factories = zab_roles()
    peer.zab_trace = []                     # the roles record their packets here
    try:
        call(peer.start())
        is_following = lambda: call(_const(isinstance(peer.role, Follower) and peer.zab_state.name == "BROADCAST"))
        wait_for(is_following, 60, what="zkref to follow the Java leader")
        assert call(_const(peer.role.leader_sid)) == leader
        with kazoo(javas[leader]) as zk:
            zk.create("/through-java", b"1")
        node = lambda path: call(_const(peer.zk_db.get_node(path) is not None))
        wait_for(lambda: node("/through-java"), 30)
        first_epoch = call(_const(peer.current_epoch))

        javas[leader].stop()
        other = next(sid for sid in javas if sid != leader)
        wait_for(lambda: "Mode:" in four_letter_word(javas[other].client_port, "srvr")
                 and call(_const(peer.role is not None and peer.zab_state.name == "BROADCAST")), 90,
                 what="a new leader between zkref and the remaining Java server")
        with kazoo(javas[other]) as zk:       # if zkref leads now, this write goes through its pipeline
            zk.create("/after-failover", b"2")
            assert zk.exists("/through-java")
        wait_for(lambda: node("/after-failover"), 30)
        assert call(_const(peer.current_epoch)) > first_epoch
        state = call(_const(peer.peer_state))
        assert state in (ServerState.LEADING, ServerState.FOLLOWING)
        assert trace_violations(call(_const(list(peer.zab_trace))), peer.quorum_verifier.contains_quorum) == []
    finally:
        call(peer.shutdown())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def test_zkref_observer_is_informed_by_a_java_leader(java_zk, tmp_path):
    """zkref as an observer (server.3=…:observer) of a Java ensemble: it registers with OBSERVERINFO, syncs,
    and receives committed txns as INFORM from the Java leader, never acking; writes made through Java
    appear in its tree and its log. Reference: Java Observer.observeLeader / processPacket, Leader.inform"""
    ports = {sid: (free_port(), free_port()) for sid in (1, 2, 3)}
    servers = {f"server.{sid}": f"127.0.0.1:{q}:{e}" + (":observer" if sid == 3 else "") for sid, (q, e) in ports.items()}
    javas = {sid: java_zk(dict(servers, tickTime=TICK_MS, initLimit=10, syncLimit=5), name=f"java{sid}", myid=sid,
                          wait=False) for sid in (1, 2)}
    for j in javas.values():
        j.wait_serving(90)
    leader = next(sid for sid, j in javas.items() if "Mode: leader" in four_letter_word(j.client_port, "srvr"))
    f = ZkrefFollower(tmp_path / "zkref3", QuorumMaj.from_properties(servers))
    try:
        f.start(leader, Observer)
        wait_for(lambda: f.broadcasting(), 60, what="the observer to sync")
        with kazoo(javas[leader]) as zk:
            for i in range(3):
                zk.create(f"/obs{i}", b"o")
        wait_for(lambda: f.node("/obs2") == b"o", 30)
        trace = f.trace()
        assert trace[0].type == "OBSERVERINFO"
        informs = [e.zxid for e in trace if e.kind == "recv" and e.type == "INFORM"]
        assert len(informs) >= 3
        assert not any(e.kind == "send" and e.type == "ACK" and e.zxid in informs for e in trace)
        assert not any(e.kind == "recv" and e.type in ("PROPOSAL", "COMMIT") for e in trace)
    finally:
        f.close()
    assert restored(tmp_path / "zkref3").get_node("/obs2") is not None


def test_clients_of_a_zkref_follower_in_a_java_ensemble(java_zk, tmp_path):
    """A zkref QuorumPeer following a Java 3.8 leader serves clients on its own client port: sessions are
    created through the leader (REQUEST createSession), writes are forwarded and answered when the leader's
    COMMIT arrives (errors included), reads are served locally in session order, a watch set on zkref fires
    for a write made through Java, `sync` is answered after the leader's SYNC, and an ephemeral made through
    zkref vanishes everywhere when its session closes.
    Reference: Java FollowerZooKeeperServer, FollowerRequestProcessor, CommitProcessor, Learner.request,
    LearnerSessionTracker (touch table in PING), Follower.processPacket (SYNC)"""
    import threading as _t
    from kazoo.exceptions import NodeExistsError, NoNodeError
    from zkref.quorum.learner import zab_roles
    from zkref.quorum.peer import QuorumPeer
    from zkref.server.cnxn import ServerCnxnFactory
    ports = {sid: (free_port(), free_port()) for sid in (1, 2, 3)}
    servers = {f"server.{sid}": f"127.0.0.1:{q}:{e}" for sid, (q, e) in ports.items()}
    javas = {sid: java_zk(dict(servers, tickTime=TICK_MS, initLimit=10, syncLimit=5), name=f"java{sid}", myid=sid,
                          wait=False) for sid in (1, 2)}
    for j in javas.values():
        j.wait_serving(90)
    leader = next(sid for sid, j in javas.items() if "Mode: leader" in four_letter_word(j.client_port, "srvr"))
    loop = asyncio.new_event_loop()
    thread = _t.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    call = lambda coro, t=90: asyncio.run_coroutine_threadsafe(coro, loop).result(t)
    client_port = free_port()
    peer = QuorumPeer([])
    peer.myid, peer.quorum_verifier = 3, QuorumMaj.from_properties(servers)
    peer.tick_time, peer.init_limit, peer.sync_limit = TICK_MS, 10, 5
    peer.txn_factory = FileTxnSnapLog(tmp_path / "zkref3", tmp_path / "zkref3")
    peer.zk_db = ZKDatabase(peer.txn_factory)
    peer.role_factories = zab_roles()
    peer.zab_trace = []
    try:
        async def setup():
            f = ServerCnxnFactory()
            await f.configure(("127.0.0.1", client_port))
            peer.cnxn_factory = f
            await peer.start()
        call(setup())
        wait_for(lambda: call(_const(isinstance(peer.role, Follower) and peer.zab_state.name == "BROADCAST")), 60,
                 what="zkref to follow")
        fired = _t.Event()
        zr = KazooClient(hosts=f"127.0.0.1:{client_port}", timeout=10)
        zr.start(timeout=30)
        try:
            assert zr.client_id[0] >> 56 == 3                       # the session id carries zkref's myid
            assert "Mode: follower" in four_letter_word(client_port, "srvr")
            zr.create("/via-zkref", b"1")
            with pytest.raises(NodeExistsError):
                zr.create("/via-zkref", b"again")
            with pytest.raises(NoNodeError):
                zr.set("/missing", b"x")
            zr.create("/eph", b"e", ephemeral=True)
            assert zr.get("/via-zkref")[0] == b"1"                  # read-your-writes on the follower
            zr.get("/via-zkref", watch=lambda event: fired.set())
            with kazoo(javas[leader]) as zj:
                assert zj.get("/via-zkref")[0] == b"1" and zj.exists("/eph")
                zj.set("/via-zkref", b"2")
            assert fired.wait(30)                                   # the watch on zkref fired for Java's write
            zr.sync("/")
            assert zr.get("/via-zkref")[0] == b"2"
        finally:
            zr.stop()
            zr.close()
        with kazoo(javas[leader]) as zj:
            wait_for(lambda: zj.exists("/eph") is None, 30, what="the ephemeral to go with its session")
        assert trace_violations(call(_const(list(peer.zab_trace)))) == []
        assert any(e.kind == "send" and e.type == "REQUEST" for e in call(_const(list(peer.zab_trace))))
    finally:
        call(peer.shutdown())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
