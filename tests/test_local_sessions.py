"""Local sessions on a quorum (`localSessionsEnabled=true`): the same client scenario on a three-server zkref
ensemble and on a Java 3.8 ensemble, with `localSessionsUpgradingEnabled` on and off, and the observations
compared. What is observed is what a user or operator sees: zxids (`srvr` on the leader, a node's czxid, counted
from the ensemble's first zxid), error codes, whether a session id is accepted on another server, `mntr`'s
`local_sessions` and `global_sessions`, ephemeral nodes seen from another server, and watches.
"""
from __future__ import annotations

import socket
import struct
import threading

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import EphemeralOnLocalSessionError

from conftest import Ensemble, WithObserver, four_letter_word, java_available, wait_for

pytestmark = pytest.mark.timeout(600)

KINDS = ["java", "zkref"] if java_available() else ["zkref"]


def mntr(port: int) -> dict[str, str]:
    out = four_letter_word(port, "mntr")
    return {k[3:]: v for k, v in (line.split("\t", 1) for line in out.splitlines() if "\t" in line)}


def zxid(port: int) -> int:
    "The server's last zxid, from `srvr`."
    out = four_letter_word(port, "srvr")
    return int(out.split("Zxid: ")[1].split()[0], 16) if "Zxid: " in out else -1


def reopen(port: int, session_id: int, passwd: bytes) -> bool:
    """Reconnect `session_id` on the server at `port` with a bare ConnectRequest; True if the server accepted it
    (its ConnectResponse carries the session id, not 0). The socket is dropped, the session lives on."""
    body = struct.pack(">iqiqi", 0, 0, 30000, session_id, len(passwd)) + passwd + b"\x00"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        (length,) = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))
        answer = s.recv(length, socket.MSG_WAITALL)
    (_, timeout, sid) = struct.unpack_from(">iiq", answer)
    return sid == session_id and timeout > 0


def handshake(port: int, timeout_ms: int) -> int:
    "Open a new session with a bare ConnectRequest, then drop the connection; the session id."
    body = struct.pack(">iqiqi", 0, 0, timeout_ms, 0, 16) + bytes(16) + b"\x00"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        (length,) = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))
        answer = s.recv(length, socket.MSG_WAITALL)
    return struct.unpack_from(">iiq", answer)[2]


def client(port: int) -> KazooClient:
    zk = KazooClient(hosts=f"127.0.0.1:{port}", timeout=30)
    zk.start(30)
    return zk


def close(zk: KazooClient) -> None:
    zk.stop()
    zk.close()


def run(kind: str | tuple[str, ...], root, upgrading: bool) -> dict:
    """One scenario: clients on the leader and both followers (all local sessions), a persistent create, a watch,
    an ephemeral create on a follower and on the leader, sessions moved to other servers, then every session
    closed. Observations are relative to the leader's zxid once the ensemble formed."""
    e = Ensemble(root, (kind,) * 3 if isinstance(kind, str) else kind, localSessionsEnabled="true",
                 localSessionsUpgradingEnabled="true" if upgrading else "false")
    e.start()
    seen: dict = {}
    try:
        leader = e.wait_formed()
        f1, f2 = (i for i in e.ids if i != leader)
        p_l, p1, p2 = e.client(leader), e.client(f1), e.client(f2)
        z0 = zxid(p_l)
        rel = lambda z: z - z0
        zk1, zk2, zkl = client(p1), client(p2), client(p_l)
        try:
            seen["zxid after three connects"] = rel(zxid(p_l))
            seen["session id's server"] = [zk.client_id[0] >> 56 == i for zk, i in ((zk1, f1), (zk2, f2), (zkl, leader))]
            seen["local_sessions"] = [mntr(p)["local_sessions"] for p in (p1, p2, p_l)]
            seen["global_sessions"] = mntr(p_l)["global_sessions"]
            zk1.create("/p", b"1")
            seen["czxid of the first create"] = rel(zk1.exists("/p").czxid)
            fired = threading.Event()
            zk2.sync("/p")                    # another session's write: a follower may not have applied it yet
            zk2.get("/p", watch=lambda ev: fired.set())
            zkl.set("/p", b"2")
            wait_for(fired.is_set, 30, what="the data watch of a local session on a follower")
            seen["watch fired"] = True
            for name, zk, port in (("follower", zk1, p1), ("leader", zkl, p_l)):
                try:
                    path = zk.create(f"/eph-{name}", b"", ephemeral=True)
                    stat = zk2.sync(path) and zk2.exists(path)
                    seen[f"ephemeral via {name}"] = ("ok", rel(stat.czxid), stat.ephemeralOwner == zk.client_id[0])
                except EphemeralOnLocalSessionError as err:
                    seen[f"ephemeral via {name}"] = ("error", type(err).__name__)
                # a Java leader applies a commit after sending it to the followers: wait until it has what the
                # server that answered the create has
                wait_for(lambda: zxid(p_l) >= zxid(port), 10, what="the leader to apply what its follower applied")
                seen[f"zxid after ephemeral via {name}"] = rel(zxid(p_l))
            seen["local_sessions after ephemerals"] = [mntr(p)["local_sessions"] for p in (p1, p2, p_l)]
            seen["global_sessions after ephemerals"] = mntr(p_l)["global_sessions"]
            seen["follower's session accepted on the other follower"] = reopen(p2, *zk1.client_id)
            seen["follower's session accepted on the leader"] = reopen(p_l, *zk1.client_id)
            seen["never-upgraded session accepted on another follower"] = reopen(p1, *zk2.client_id)
            seen["never-upgraded session accepted on its own server"] = reopen(p2, *zk2.client_id)
            seen["leader's session accepted on a follower"] = reopen(p1, *zkl.client_id)
        finally:
            for zk in (zk1, zkl):
                close(zk)
        wait_for(lambda: zk2.exists("/eph-follower") is None and zk2.exists("/eph-leader") is None, 30,
                 what="the closed sessions' ephemerals gone on the other follower")
        before = zxid(p_l)
        handshake(p2, 2000)                   # a local session on f2 whose client goes away without closing it
        seen["local_sessions with an abandoned session"] = mntr(p2)["local_sessions"]
        wait_for(lambda: mntr(p2)["local_sessions"] == "1", 30, what="the abandoned local session expired")
        seen["zxids used by a local session's expiry"] = zxid(p_l) - before
        close(zk2)
        wait_for(lambda: len({zxid(p) for p in (p1, p2, p_l)}) == 1, 30, what="all servers at the same zxid")
        seen["zxid after all closed"] = rel(zxid(p_l))
        seen["local_sessions after all closed"] = [mntr(p)["local_sessions"] for p in (p1, p2, p_l)]
        seen["global_sessions after all closed"] = mntr(p_l)["global_sessions"]
        assert e.modes() == ["follower", "follower", "leader"], "the ensemble changed roles during the test"
        return seen
    finally:
        e.stop_all()


@pytest.fixture(scope="module", params=[True, False], ids=["upgrading", "no-upgrading"])
def both(request, tmp_path_factory):
    "{kind: observations} for one setting of localSessionsUpgradingEnabled."
    seen = {kind: run(kind, tmp_path_factory.mktemp(f"{kind}-{request.param}"), request.param) for kind in KINDS}
    return dict(seen, upgrading=request.param)


def test_local_sessions_take_no_zxid(both):
    """With localSessionsEnabled every new session is local to the server the client connected to: connecting
    makes no createSession txn (the leader's zxid does not move, a first create gets the next zxid), the session id
    still carries the server's id in its top byte, `mntr` counts it in `local_sessions` (not `global_sessions`),
    and closing a session that was never upgraded makes no closeSession txn.
    Reference: Java ZooKeeperServer.createSession, QuorumZooKeeperServer.setLocalSessionFlag,
    PrepRequestProcessor.pRequestHelper (createSession/closeSession of a local session), LocalSessionTracker,
    Admin Guide "localSessionsEnabled"."""
    z = both["zkref"]
    assert z["zxid after three connects"] == 0 and z["czxid of the first create"] == 1, z
    assert z["session id's server"] == [True, True, True]
    assert z["local_sessions"] == ["1", "1", "1"] and z["global_sessions"] == "0", z
    if "java" in both:
        assert z == both["java"]


def test_a_local_session_expires_on_its_server_without_a_txn(both):
    """A local session whose client goes away is expired by its own server's local tracker, after its timeout,
    and the expiry (a local closeSession) makes no txn.
    Reference: Java LocalSessionTracker (a SessionTrackerImpl), ZooKeeperServer.expire,
    QuorumZooKeeperServer.setLocalSessionFlag."""
    z = both["zkref"]
    assert z["local_sessions with an abandoned session"] == "2", z
    assert z["zxids used by a local session's expiry"] == 0, z
    if "java" in both:
        assert z == both["java"]


def test_ephemeral_create_upgrades_or_fails(both):
    """An ephemeral create on a local session (on a follower or on the leader) first upgrades the session to a
    global one — a createSession txn, then the create — when localSessionsUpgradingEnabled is on; the node is then
    seen on the other servers, owned by the session. With upgrading off the create fails with
    EPHEMERALONLOCALSESSION (-120). The upgraded session leaves `local_sessions` for `global_sessions`, and its
    close is a txn that removes its ephemerals everywhere.
    Reference: Java QuorumZooKeeperServer.checkUpgradeSession / makeUpgradeRequest, LeaderRequestProcessor,
    FollowerRequestProcessor, PrepRequestProcessor.validateCreateRequest, FinalRequestProcessor (error txn),
    Admin Guide "localSessionsUpgradingEnabled"."""
    z = both["zkref"]
    if z["ephemeral via follower"][0] == "ok":
        assert z["ephemeral via follower"] == ("ok", 4, True) and z["ephemeral via leader"] == ("ok", 6, True), z
        assert z["global_sessions after ephemerals"] == "2", z
    else:
        assert z["ephemeral via follower"] == ("error", "EphemeralOnLocalSessionError"), z
        assert z["ephemeral via leader"] == ("error", "EphemeralOnLocalSessionError"), z
    if "java" in both:
        assert z == both["java"]


def test_only_global_sessions_move(both):
    """A local session is known only to its server: reconnecting it on another server (follower or leader) is
    refused as expired, and a follower does not ask the leader about it; on its own server it is accepted. A
    session upgraded to global moves as usual.
    Reference: Java LearnerZooKeeperServer.revalidateSession, LeaderZooKeeperServer.checkIfValidGlobalSession,
    LeaderSessionTracker.touchSession."""
    z = both["zkref"]
    upgraded = z["ephemeral via follower"][0] == "ok"
    assert z["follower's session accepted on the other follower"] is upgraded, z
    assert z["follower's session accepted on the leader"] is upgraded, z
    assert z["never-upgraded session accepted on another follower"] is False, z
    assert z["never-upgraded session accepted on its own server"] is True, z
    if "java" in both:
        assert z == both["java"]


def run_observer(kind: str, root) -> dict:
    "A client of the observer: connect, persistent create, ephemeral create (upgrade), close."
    e = WithObserver(root, (kind,) * 4, localSessionsEnabled="true", localSessionsUpgradingEnabled="true")
    e.start()
    seen: dict = {}
    try:
        want = ["follower", "follower", "leader", "observer"]
        wait_for(lambda: e.modes() == want, 90, 0.2, what=f"a leader, 2 followers and the observer ({e.modes()})")
        leader = next(i for i in e.ids if e.mode(i) == "leader")
        p_l, p_o = e.client(leader), e.client(4)
        z0 = zxid(p_l)
        zk = client(p_o)
        try:
            seen["session id's server"] = zk.client_id[0] >> 56
            seen["local_sessions"] = mntr(p_o)["local_sessions"]
            seen["zxid after connecting"] = zxid(p_l) - z0
            zk.create("/p", b"")
            seen["czxid of a persistent create"] = zk.exists("/p").czxid - z0
            zk.create("/e", b"", ephemeral=True)
            seen["czxid of an ephemeral create"] = zk.exists("/e").czxid - z0
            seen["local_sessions after the upgrade"] = mntr(p_o)["local_sessions"]
            seen["moves to the leader"] = reopen(p_l, *zk.client_id)
        finally:
            close(zk)
        wait_for(lambda: len({zxid(e.client(i)) for i in e.ids}) == 1, 30, what="all servers at the same zxid")
        seen["zxid after closing"] = zxid(p_l) - z0
        return seen
    finally:
        e.stop_all()


def test_local_sessions_on_an_observer(tmp_path):
    """An observer makes local sessions as a follower does (Java's ObserverRequestProcessor keeps a local
    session's createSession and closeSession, and upgrades before an ephemeral create), on zkref as on Java 3.8.
    Reference: Java ObserverRequestProcessor.run / processRequest, LearnerSessionTracker."""
    seen = {kind: run_observer(kind, tmp_path / kind) for kind in KINDS}
    z = seen["zkref"]
    assert z["session id's server"] == 4 and z["local_sessions"] == "1" and z["zxid after connecting"] == 0, z
    assert z["czxid of a persistent create"] == 1 and z["czxid of an ephemeral create"] == 3, z
    assert z["local_sessions after the upgrade"] == "0" and z["moves to the leader"] is True, z
    assert z["zxid after closing"] == 4, z
    if "java" in seen:
        assert z == seen["java"]


@pytest.mark.skipif(not java_available(), reason="needs the Java ZooKeeper 3.8 package")
@pytest.mark.parametrize("kinds", [("java", "zkref", "zkref"), ("zkref", "java", "java")], ids=["1java", "2java"])
def test_mixed_ensembles_see_what_java_sees(both, kinds, tmp_path):
    """Java and zkref servers in one ensemble with local sessions: whichever kind leads and whichever follows,
    the scenario's observations are those of an all-Java ensemble (a zkref learner's upgrade request or
    REVALIDATE reaches a Java leader, and a Java learner's reaches a zkref one, with the same results).
    Reference: Java LeaderZooKeeperServer.submitLearnerRequest, Learner.validateSession,
    LeaderSessionTracker.checkSession (another server's local session)."""
    assert run(kinds, tmp_path, both["upgrading"]) == both["java"]


@pytest.mark.parametrize("local", [False, True])
def test_learner_touch_table_takes_any_session_without_local_sessions(local):
    """A learner does not judge the sessions its clients touch: without local sessions every touch goes into the
    touch table the next PING reply carries (the leader ignores the ones it does not know) — even a session
    whose createSession commit has not reached this learner yet. With local sessions on, a touch of a session
    that is neither local here, nor global, nor being upgraded is refused.
    Reference: Java LearnerSessionTracker.touchSession."""
    import asyncio
    from zkref.quorum.learner_zk_server import LearnerSessionTracker

    async def scenario():
        t = LearnerSessionTracker(2, {0x100: 30000}, local, lambda s: None, 2000)
        unknown = (3 << 56) + 7                   # another server's session, not committed here (yet)
        seen = (t.touch_session(0x100, 30000), t.touch_session(unknown, 5000), sorted(t.snapshot()))
        t.shutdown()
        return seen, unknown
    (global_touch, unknown_touch, table), unknown = asyncio.run(scenario())
    assert global_touch
    if local:
        assert not unknown_touch and table == [0x100]
    else:
        assert unknown_touch and table == [0x100, unknown]
