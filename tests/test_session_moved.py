"""Session ownership on a quorum (`SessionMovedException`, code -118): the same scenario on a three-server Java
3.8 ensemble and a zkref ensemble, compared.

A client opens a session on one server with a raw socket, then reconnects the same session id and password on
another server while its first connection stays open — the state a client is in when it gave up on a slow
server and moved on. The old connection then sends a read, a sync, a ping, a write or a multi. What each does is
decided by who *owns* the session: the leader records the owner (the learner whose REVALIDATE it accepted,
itself for its own clients) and its `PrepRequestProcessor` refuses a request from anyone else with
SESSIONMOVED, which the serving server's `FinalRequestProcessor` turns into a closed connection, no reply.
A follower answers reads and pings itself without asking the leader, so they (and a sync, which the leader
answers without Prep) are still answered on an old follower connection; on the leader, whose Prep checks every
request, even a ping closes it. What is observed: the answer or a closed
connection, the zxids a refused write takes, whether the session lives on at its new server with its
ephemeral nodes, and that kazoo still moves between servers.
"""
from __future__ import annotations

import socket

import pytest
from kazoo.client import KazooClient

from conftest import Ensemble, four_letter_word, java_available, wait_for
from test_differential_ensemble import Waker
from test_standalone_server import RawClient
from zkref.jute import CreateRequest, GetDataRequest, GetDataResponse, SetDataRequest, SyncRequest
from zkref.proto import OPEN_ACL_UNSAFE, MultiOperationRecord, OpCode

pytestmark = pytest.mark.timeout(600)

EPHEMERAL = 1


def zxid(port: int) -> int:
    "The server's last zxid, from `srvr`."
    out = four_letter_word(port, "srvr")
    return int(out.split("Zxid: ")[1].split()[0], 16) if "Zxid: " in out else -1


def outcome(c: RawClient, op: int, record) -> str:
    "Send one request on `c`: `ok`, the error code's name-free number, or `closed` if the server hung up."
    c.sock.settimeout(20)
    try:
        h, _ = c.call(op, record, -2 if op == OpCode.ping else None)
    except (EOFError, ConnectionResetError, BrokenPipeError):
        return "closed"
    except socket.timeout:
        return "no answer"
    return "ok" if h.err == 0 else str(h.err)


def settle(fn, want, timeout: float = 15.0):
    "fn() once it equals `want` (waiting at most `timeout`), else its last value."
    try:
        wait_for(lambda: fn() == want, timeout, 0.1)
    except TimeoutError:
        pass
    return fn()


def kazoo_port(zk: KazooClient) -> int | None:
    "The client port kazoo is connected to, if it is connected."
    try:
        return zk._connection._socket.getpeername()[1] if zk.connected else None
    except (AttributeError, OSError):
        return None


def moved(old_port: int, new_port: int) -> tuple[RawClient, RawClient]:
    "A session opened on `old_port`, reconnected on `new_port`; both connections left open."
    old = RawClient(old_port, timeout_ms=30000)
    new = RawClient(new_port, timeout_ms=30000, session_id=old.session_id, passwd=old.passwd)
    assert new.session_id == old.session_id, "the new server refused the session"
    return old, new


def run(kinds: tuple[str, ...], root) -> dict:
    e = Ensemble(root, kinds)
    e.start()
    seen: dict = {}
    opened: list[RawClient] = []
    waker = None
    try:
        leader = e.wait_formed()
        fa, fb = (i for i in e.ids if i != leader)
        pa, pb, pl = e.client(fa), e.client(fb), e.client(leader)
        # Debian's Java 3.8.0 can leave a CommitProcessor asleep with a request queued (ZOOKEEPER-4537; see
        # test_differential_ensemble.py) until another request reaches that server, and the raw sessions here send
        # one request at a time without pings: sessions of the Waker's own ping the Java servers (only those)
        java = [e.client(i) for i in e.ids if e.kinds[i] == "java"]
        waker = Waker(java, 0.2) if java else None

        # 1. follower A -> follower B; the old connection on A reads, syncs, then writes
        old = RawClient(pa, timeout_ms=30000)
        opened.append(old)
        seen["ephemeral via A"] = outcome(old, OpCode.create, CreateRequest("/eph-a", b"a", OPEN_ACL_UNSAFE, EPHEMERAL))
        new = RawClient(pb, timeout_ms=30000, session_id=old.session_id, passwd=old.passwd)
        opened.append(new)
        sid = old.session_id
        seen["reconnected on B"] = new.session_id == sid
        seen["old follower connection: read"] = outcome(old, OpCode.getData, GetDataRequest("/eph-a", False))
        seen["old follower connection: sync"] = outcome(old, OpCode.sync, SyncRequest("/"))
        wait_for(lambda: zxid(pl) >= zxid(pa), 10, what="the leader to apply what follower A applied")   # Java's may lag
        before = zxid(pl)
        seen["old follower connection: write"] = outcome(old, OpCode.create, CreateRequest("/x", b"", OPEN_ACL_UNSAFE, 0))
        seen["zxids the refused write took"] = settle(lambda: zxid(pl) - before, 1)
        new.call(OpCode.sync, SyncRequest("/eph-a"))   # made through A: B need not have it without a sync
        h, body = new.call(OpCode.getData, GetDataRequest("/eph-a", False))
        seen["B reads the ephemeral made via A"] = (h.err, h.err == 0 and GetDataResponse.from_bytes(body).stat.ephemeral_owner == sid)
        seen["ephemeral via B"] = outcome(new, OpCode.create, CreateRequest("/eph-b", b"b", OPEN_ACL_UNSAFE, EPHEMERAL))
        seen["/x created"] = outcome(new, OpCode.exists, GetDataRequest("/x", False))

        # 2. follower A -> follower B; the old connection sends a multi
        old2, new2 = moved(pa, pb)
        opened += [old2, new2]
        seen["old follower connection: multi"] = outcome(
            old2, OpCode.multi, MultiOperationRecord([(OpCode.create, CreateRequest("/m", b"", OPEN_ACL_UNSAFE, 0))]))
        seen["/m created"] = outcome(new2, OpCode.exists, GetDataRequest("/m", False))

        # 3. leader -> follower A; the old connection on the leader reads
        old3, new3 = moved(pl, pa)
        opened += [old3, new3]
        seen["old leader connection: read"] = outcome(old3, OpCode.getData, GetDataRequest("/", False))
        old3b, new3b = moved(pl, pb)
        opened += [old3b, new3b]
        seen["old leader connection: ping"] = outcome(old3b, OpCode.ping, None)

        # 4. follower A -> leader; the old connection on A reads, then writes
        old4, new4 = moved(pa, pl)
        opened += [old4, new4]
        seen["old follower connection (moved to the leader): read"] = outcome(old4, OpCode.getData,
                                                                             GetDataRequest("/", False))
        seen["old follower connection (moved to the leader): ping"] = outcome(old4, OpCode.ping, None)
        seen["old follower connection (moved to the leader): write"] = outcome(
            old4, OpCode.setData, SetDataRequest("/", b"w", -1))

        # the new connections live on, with their ephemerals
        seen["new connections answer"] = [outcome(c, OpCode.exists, GetDataRequest("/eph-a", False))
                                          for c in (new, new2, new3, new3b, new4)]
        seen["new connection of case 1 writes"] = outcome(new, OpCode.setData, SetDataRequest("/eph-b", b"2", -1))
        seen["servers logging a moved session"] = sorted(
            "leader" if i == leader else "follower" for i in e.ids
            if any(w in e.log(i) for w in ("Session moved", "SessionMoved", "session moved")))

        # 5. kazoo moves between servers as before: its server stops, it reconnects elsewhere, same session
        zk = KazooClient(hosts=f"127.0.0.1:{pa},127.0.0.1:{pb}", randomize_hosts=False, timeout=30)
        zk.start(30)
        try:
            zk.create("/k", b"", ephemeral=True)
            session = zk.client_id[0]
            on_a = kazoo_port(zk) == pa
            e.stop(fa)
            wait_for(lambda: kazoo_port(zk) == pb, 60, 0.2, what="kazoo reconnected to B")
            zk.set("/k", b"after the move")
            stat = zk.exists("/k")
            seen["kazoo moved"] = (on_a, zk.client_id[0] == session, stat.ephemeralOwner == session,
                                   zk.get("/k")[0])
        finally:
            zk.stop()
            zk.close()
    finally:
        for c in opened:
            c.close()
        if waker is not None:
            waker.close()
        e.stop_all()
    return seen


EXPECTED = {
    "ephemeral via A": "ok",
    "reconnected on B": True,
    "old follower connection: read": "ok",
    "old follower connection: sync": "ok",
    "old follower connection: write": "closed",
    "zxids the refused write took": 1,
    "B reads the ephemeral made via A": (0, True),
    "ephemeral via B": "ok",
    "/x created": "-101",
    "old follower connection: multi": "closed",
    "/m created": "-101",
    "old leader connection: read": "closed",
    "old leader connection: ping": "closed",
    "old follower connection (moved to the leader): read": "ok",
    "old follower connection (moved to the leader): ping": "ok",
    "old follower connection (moved to the leader): write": "closed",
    "new connections answer": ["ok"] * 5,
    "new connection of case 1 writes": "ok",
    "servers logging a moved session": [],
    "kazoo moved": (True, True, True, b"after the move"),
}


@pytest.mark.skipif(not java_available(), reason="needs the Java ZooKeeper 3.8 package")
def test_session_moved_java_reference(tmp_path):
    """Java 3.8's own answers to requests on a moved session's old connection: a follower answers reads and
    syncs itself, a write or multi is refused by the leader (an error txn, one zxid) and the old connection
    closed; on the leader even a read is refused. The session, its ephemerals and its new connection live on.
    Reference: Java SessionTrackerImpl.checkSession, Leader.revalidateSession, FinalRequestProcessor
    (SessionMovedException → sendCloseSession, ZOOKEEPER-710)."""
    assert run(("java",) * 3, tmp_path) == EXPECTED


def test_session_moved_zkref(tmp_path):
    """zkref gives the answers Java 3.8 gives (EXPECTED, checked against Java by the test above): the leader
    owns each global session's owner record, refuses a moved session's old connection with SESSIONMOVED, and
    the serving server closes that connection without a reply.
    Reference: Java SessionTrackerImpl.checkSession / setOwner, LeaderZooKeeperServer.revalidateSession,
    PrepRequestProcessor, FinalRequestProcessor."""
    assert run(("zkref",) * 3, tmp_path) == EXPECTED


@pytest.mark.skipif(not java_available(), reason="needs the Java ZooKeeper 3.8 package")
@pytest.mark.parametrize("kinds", [("zkref", "java", "zkref"), ("zkref", "zkref", "java")])
def test_session_moved_mixed(kinds, tmp_path):
    """Mixed ensembles (one Java server, two zkref; the highest id usually leads, so a zkref leader with a Java
    follower, then a Java leader with zkref followers) answer as an all-Java one.
    Reference: Java SessionTrackerImpl.checkSession, Leader.revalidateSession, FinalRequestProcessor."""
    assert run(kinds, tmp_path) == EXPECTED
