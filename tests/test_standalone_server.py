"""The standalone server (`python -m zkref zoo.cfg`) driven by real clients over real sockets: kazoo, and a
small raw-socket client for the requests kazoo 2.11 cannot send (addWatch, removeWatches, whoAmI, TTL…).

This module also holds the helpers the other `test_standalone_*` files import: `RawClient` and `kazoo`. The
server process (`ZkrefServer`) and the `zkref_zk` fixture are conftest's.
"""
from __future__ import annotations

import signal
import socket
import threading

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import (BadVersionError, NoAuthError, NodeExistsError, NoNodeError, NotEmptyError,
                              RolledBackError)
from kazoo.security import make_digest_acl, OPEN_ACL_UNSAFE as K_OPEN_ACL

from conftest import ZkrefServer, four_letter_word, wait_for
from zkref.jute import (ACL, Id, AddWatchRequest, CheckWatchesRequest, ConnectRequest, ConnectResponse,
                        CreateRequest, CreateTTLRequest, Create2Response, GetAllChildrenNumberRequest,
                        GetAllChildrenNumberResponse, GetDataRequest, GetEphemeralsRequest, GetEphemeralsResponse,
                        RemoveWatchesRequest, ReplyHeader, SetDataRequest, WatcherEvent, WhoAmIResponse,
                        DeleteRequest, ExistsRequest, OutputArchive)
from zkref.proto import OPEN_ACL_UNSAFE, OpCode, encode_request, frame, generate_passwd


# --------------------------------------------------------------------------------------------- helpers
class RawClient:
    "A minimal ZooKeeper client on a plain socket: the handshake, requests, and watch events."

    def __init__(self, port: int, timeout_ms: int = 10000, session_id: int = 0, passwd: bytes = bytes(16),
                 read_only: bool | None = False, timeout_s: float = 10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self.events: list[WatcherEvent] = []
        self.xid = 0
        body = ConnectRequest(protocol_version=0, last_zxid_seen=0, time_out=timeout_ms, session_id=session_id,
                              passwd=passwd).to_bytes()
        if read_only is not None:
            body += bytes([1 if read_only else 0])
        self.sock.sendall(frame(body))
        self.connect_bytes = self.read_frame()
        self.connect = ConnectResponse.from_bytes(self.connect_bytes)
        self.session_id, self.passwd = self.connect.session_id, self.connect.passwd

    def read_exactly(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise EOFError(f"connection closed after {len(out)} of {n} bytes")
            out += chunk
        return out

    def read_frame(self) -> bytes:
        n = int.from_bytes(self.read_exactly(4), "big")
        return self.read_exactly(n)

    def send(self, op: int, record=None, xid: int | None = None) -> int:
        if xid is None:
            self.xid += 1
            xid = self.xid
        self.sock.sendall(encode_request(xid, op, record))
        return xid

    def reply(self) -> tuple[ReplyHeader, bytes]:
        "The next reply (watch events met on the way are kept in `events`)."
        while True:
            b = self.read_frame()
            h = ReplyHeader.from_bytes(b)
            if h.xid == -1:
                self.events.append(WatcherEvent.from_bytes(b[16:]))
                continue
            return h, b[16:]

    def call(self, op: int, record=None, xid: int | None = None) -> tuple[ReplyHeader, bytes]:
        sent = self.send(op, record, xid)
        h, body = self.reply()
        assert h.xid == sent, (h, sent)
        return h, body

    def wait_event(self, timeout: float = 10.0) -> WatcherEvent:
        "The next watch event (from the buffer, or read from the socket)."
        if self.events:
            return self.events.pop(0)
        self.sock.settimeout(timeout)
        b = self.read_frame()
        h = ReplyHeader.from_bytes(b)
        assert h.xid == -1, h
        return WatcherEvent.from_bytes(b[16:])

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def kazoo(server, **kw) -> KazooClient:
    client = KazooClient(hosts=server.hosts if hasattr(server, "hosts") else f"127.0.0.1:{server.client_port}",
                         timeout=kw.pop("timeout", 10.0), **kw)
    client.start(timeout=15)
    return client


@pytest.fixture
def server(zkref_zk):
    return zkref_zk({"4lw.commands.whitelist": "*", "extendedTypesEnabled": "true",
                     "znode.container.checkIntervalMs": "200"})


@pytest.fixture
def zk(server):
    client = kazoo(server)
    yield client
    client.stop()
    client.close()


# ----------------------------------------------------------------------------------------------- tests
def test_crud_and_stat(zk):
    """create/get/set/delete/exists/getChildren behave as ZooKeeper's: versions count data changes, the
    parent's cversion counts child changes, BadVersion and NotEmpty are reported, and every reply's zxid
    grows. Reference: ZooKeeper Programmer's Guide, "ZooKeeper Stat Structure"."""
    assert zk.create("/a", b"one") == "/a"
    data, stat = zk.get("/a")
    assert data == b"one" and stat.version == 0 and stat.dataLength == 3 and stat.czxid == stat.mzxid
    stat2 = zk.set("/a", b"two")
    assert stat2.version == 1 and stat2.mzxid > stat.mzxid and stat2.czxid == stat.czxid
    with pytest.raises(BadVersionError):
        zk.set("/a", b"three", version=0)
    zk.create("/a/b", b"")
    zk.create("/a/c", b"")
    assert sorted(zk.get_children("/a")) == ["b", "c"]
    with pytest.raises(NotEmptyError):
        zk.delete("/a")
    with pytest.raises(NodeExistsError):
        zk.create("/a/b")
    zk.delete("/a/b")
    parent = zk.exists("/a")
    assert parent.numChildren == 1 and parent.cversion == 3      # 2 creates + 1 delete
    zk.delete("/a", recursive=True)
    assert zk.exists("/a") is None
    with pytest.raises(NoNodeError):
        zk.get("/a")
    assert set(zk.get_children("/")) == {"zookeeper"}


def test_create_modes(zk, server):
    """Every create mode: ephemeral nodes carry the session as ephemeralOwner, sequential names take the
    parent's child-creation count as a 10-digit suffix, containers and TTL nodes show ephemeralOwner 0 and
    are deleted by the ContainerManager once empty (containers) or expired (TTL).
    Reference: Java CreateMode, PrepRequestProcessor.pRequest2TxnCreate, ContainerManager."""
    zk.create("/p", b"")
    e = zk.create("/p/e", b"", ephemeral=True)
    assert zk.exists(e).ephemeralOwner == zk.client_id[0]
    s1 = zk.create("/p/s-", b"", sequence=True)
    s2 = zk.create("/p/es-", b"", sequence=True, ephemeral=True)
    assert s1 == "/p/s-0000000001" and s2 == "/p/es-0000000002"
    raw = RawClient(server.client_port)
    h, body = raw.call(OpCode.createContainer, CreateRequest(path="/ctr", data=b"", acl=OPEN_ACL_UNSAFE, flags=4))
    assert h.err == 0 and Create2Response.from_bytes(body).stat.ephemeral_owner == 0
    raw.call(OpCode.create, CreateRequest(path="/ctr/child", data=b"", acl=OPEN_ACL_UNSAFE, flags=0))
    h, body = raw.call(OpCode.createTTL, CreateTTLRequest(path="/ttl", data=b"x", acl=OPEN_ACL_UNSAFE, flags=5, ttl=300))
    assert h.err == 0 and Create2Response.from_bytes(body).stat.ephemeral_owner == 0
    h, _ = raw.call(OpCode.createTTL, CreateTTLRequest(path="/ttl2", data=b"x", acl=OPEN_ACL_UNSAFE, flags=0, ttl=300))
    assert h.err == -8                                      # a TTL with a non-TTL mode: BadArguments
    raw.call(OpCode.delete, DeleteRequest(path="/ctr/child", version=-1))
    wait_for(lambda: zk.exists("/ctr") is None and zk.exists("/ttl") is None, 20, what="container and TTL cleanup")
    assert "Attempting to delete candidate container: /ctr" in server.logs()
    raw.close()


def test_ttl_needs_extended_types(zkref_zk):
    """Without zookeeper.extendedTypesEnabled a createTTL answers Unimplemented (-6).
    Reference: Java PrepRequestProcessor.validateCreateRequest."""
    srv = zkref_zk()
    raw = RawClient(srv.client_port)
    h, _ = raw.call(OpCode.createTTL, CreateTTLRequest(path="/t", data=b"", acl=OPEN_ACL_UNSAFE, flags=5, ttl=100))
    assert h.err == -6
    raw.close()


def test_one_shot_watches(zk, server):
    """Data, exist and child watches fire once, with the event type ZooKeeper defines, before the reply
    of the write that triggered them. Reference: ZooKeeper Programmer's Guide, "ZooKeeper Watches"."""
    events = []
    zk.create("/w", b"")
    zk.get("/w", watch=lambda e: events.append(("data", e.type, e.path)))
    zk.exists("/w/new", watch=lambda e: events.append(("exists", e.type, e.path)))
    zk.get_children("/w", watch=lambda e: events.append(("child", e.type, e.path)))
    zk.create("/w/new", b"")
    zk.set("/w", b"x")
    zk.set("/w", b"y")                                     # the data watch already fired: no second event
    wait_for(lambda: len(events) >= 3, 10, what="three watch events")
    assert sorted(events) == [("child", "CHILD", "/w"), ("data", "CHANGED", "/w"), ("exists", "CREATED", "/w/new")]
    raw = RawClient(server.client_port)
    raw.call(OpCode.getData, GetDataRequest(path="/w", watch=True))
    zk.delete("/w/new")
    zk.delete("/w")
    assert raw.wait_event().type == 2                      # NodeDeleted
    raw.close()


def test_persistent_and_recursive_watches(zk, server):
    """addWatch(PERSISTENT) keeps firing for the node (data and children events); PERSISTENT_RECURSIVE
    fires for every node below (no child events); checkWatches/removeWatches answer NoWatcher (-121) when
    there is nothing to remove. Reference: ZooKeeper 3.6+ Programmer's Guide, "Persistent, Recursive
    Watches"; Java FinalRequestProcessor addWatch/removeWatches."""
    raw = RawClient(server.client_port)
    h, body = raw.call(OpCode.addWatch, AddWatchRequest(path="/pw", mode=0))
    assert h.err == 0 and body == b"\x00\x00\x00\x00"      # ErrorResponse{0}
    raw.call(OpCode.addWatch, AddWatchRequest(path="/rw", mode=1))
    zk.create("/pw", b"")
    zk.set("/pw", b"1")
    zk.set("/pw", b"2")
    zk.create("/pw/c", b"")
    got = [(e.type, e.path) for e in (raw.wait_event() for _ in range(4))]
    assert got == [(1, "/pw"), (3, "/pw"), (3, "/pw"), (4, "/pw")]
    zk.create("/rw", b"")
    zk.create("/rw/a", b"")
    zk.create("/rw/a/b", b"")
    zk.set("/rw/a/b", b"z")
    got = [(e.type, e.path) for e in (raw.wait_event() for _ in range(4))]
    assert got == [(1, "/rw"), (1, "/rw/a"), (1, "/rw/a/b"), (3, "/rw/a/b")]
    h, _ = raw.call(OpCode.checkWatches, CheckWatchesRequest(path="/pw", type=3))
    assert h.err == 0
    h, _ = raw.call(OpCode.removeWatches, RemoveWatchesRequest(path="/pw", type=3))
    assert h.err == 0
    h, _ = raw.call(OpCode.removeWatches, RemoveWatchesRequest(path="/pw", type=3))
    assert h.err == -121
    zk.set("/pw", b"3")
    h, _ = raw.call(OpCode.exists, ExistsRequest(path="/pw", watch=False))
    assert h.err == 0 and not raw.events                    # removed: no more events for /pw
    raw.close()


def test_transactions(zk):
    """A multi is all or nothing: on failure no op is applied and each op reports its result — 0 before the
    failing op, the error for it, RuntimeInconsistency after. Reference: Java MultiResponse, ZooKeeper
    Programmer's Guide "multi"."""
    t = zk.transaction()
    t.create("/t1", b"a")
    t.create("/t1/x", b"b")
    t.set_data("/t1", b"c")
    t.check("/t1", 1)
    results = t.commit()
    assert results[0] == "/t1" and results[1] == "/t1/x" and results[2].version == 1 and results[3] is True
    t = zk.transaction()
    t.create("/t2", b"")
    t.delete("/nonexistent")
    t.create("/t3", b"")
    results = t.commit()
    assert isinstance(results[0], RolledBackError) and isinstance(results[1], NoNodeError)
    assert type(results[2]).__name__ == "RuntimeInconsistency"
    assert zk.exists("/t2") is None and zk.exists("/t3") is None


def test_digest_acls(server):
    """A node with a digest ACL is readable only by a session authenticated as that user; getACL without
    ADMIN masks the digest; bad credentials in an ACL-less scheme are refused with AuthFailed.
    Reference: ZooKeeper Programmer's Guide, "Builtin ACL Schemes"; Java FinalRequestProcessor getACL."""
    alice = kazoo(server, auth_data=[("digest", "alice:secret")])
    bob = kazoo(server)
    acl = make_digest_acl("alice", "secret", all=True)
    alice.create("/secret", b"s3", acl=[acl])
    assert alice.get("/secret")[0] == b"s3"
    with pytest.raises(NoAuthError):
        bob.get("/secret")
    with pytest.raises(NoAuthError):
        bob.set("/secret", b"x")
    read_acl = make_digest_acl("alice", "secret", read=True)
    alice.create("/readable", b"", acl=[read_acl, make_digest_acl("bob", "pw", read=True)])
    bob.add_auth("digest", "bob:pw")
    acls, _ = bob.get_acls("/readable")
    assert {a.id.id for a in acls} == {"alice:x", "bob:x"}      # no ADMIN: digests masked
    alice.create("/mine", b"", acl=[make_digest_acl("alice", "secret", all=True)])
    alice.set_acls("/mine", K_OPEN_ACL)
    assert bob.get("/mine")[0] == b""
    for c in (alice, bob):
        c.stop(); c.close()


def test_session_expiry_removes_ephemerals_and_fires_watches(zk, server):
    """A session whose client stops talking expires after its timeout: its ephemerals are deleted, and
    other sessions' watches on them fire; the expired session cannot be re-opened (timeOut 0 in the
    ConnectResponse). Reference: ZooKeeper Programmer's Guide, "ZooKeeper Sessions"; Java SessionTrackerImpl."""
    doomed = RawClient(server.client_port, timeout_ms=4000)
    assert doomed.connect.time_out == 4000
    doomed.call(OpCode.create, CreateRequest(path="/eph", data=b"", acl=OPEN_ACL_UNSAFE, flags=1))
    events = []
    zk.exists("/eph", watch=lambda e: events.append((e.type, e.path)))
    sid, pw = doomed.session_id, doomed.passwd
    doomed.sock.close()                                      # gone, no closeSession
    wait_for(lambda: events, 15, what="the ephemeral's deletion")
    assert events == [("DELETED", "/eph")]
    assert f"Expiring session 0x{sid:x}, timeout of 4000ms exceeded" in server.logs()
    again = RawClient(server.client_port, session_id=sid, passwd=pw)
    assert again.connect.time_out == 0 and again.connect.session_id == 0
    with pytest.raises((EOFError, OSError)):
        again.read_frame()


def test_reconnect_same_session(zk, server):
    """A client that reconnects with its session id and password within the timeout keeps its session and
    ephemerals; a wrong password gets an invalid-session answer and a close.
    Reference: Java ZooKeeperServer.reopenSession, generatePasswd."""
    c = RawClient(server.client_port, timeout_ms=10000)
    c.call(OpCode.create, CreateRequest(path="/mine", data=b"", acl=OPEN_ACL_UNSAFE, flags=1))
    c.sock.close()
    c2 = RawClient(server.client_port, session_id=c.session_id, passwd=c.passwd)
    assert c2.connect.session_id == c.session_id and c2.connect.time_out == 10000
    assert c2.connect.passwd == generate_passwd(c.session_id)
    assert zk.exists("/mine").ephemeralOwner == c.session_id
    bad = RawClient(server.client_port, session_id=c.session_id, passwd=bytes(16))
    assert bad.connect.time_out == 0
    assert "Incorrect password" in server.logs()
    assert zk.exists("/mine") is not None
    # as in Java, the attempt closed c2's connection before checking the password; the session lives on
    c3 = RawClient(server.client_port, session_id=c.session_id, passwd=c.passwd)
    assert c3.connect.session_id == c.session_id
    h, _ = c3.call(OpCode.closeSession)
    assert h.err == 0
    assert zk.exists("/mine") is None
    # kazoo too: after the server is killed and restarted, kazoo re-opens the same session, whose
    # ephemeral survived (sessions are in the log and the snapshot)
    k = kazoo(server)
    sid = k.client_id[0]
    k.create("/k-eph", b"", ephemeral=True)
    server.kill()
    server.start()
    wait_for(lambda: k.connected and k.exists("/k-eph") is not None, 20, what="kazoo to reconnect")
    assert k.client_id[0] == sid and k.exists("/k-eph").ephemeralOwner == sid
    k.stop(); k.close()


def test_session_timeout_negotiation(server):
    """The session timeout is clamped to [2, 20] ticks (4000..40000 ms with tickTime=2000), and an old
    client that sends no readOnly byte gets none back. Reference: Java ZooKeeperServer.processConnectRequest."""
    assert RawClient(server.client_port, timeout_ms=100).connect.time_out == 4000
    assert RawClient(server.client_port, timeout_ms=10 ** 6).connect.time_out == 40000
    old = RawClient(server.client_port, read_only=None)
    assert len(old.connect_bytes) == 36                       # no trailing readOnly byte
    new = RawClient(server.client_port)
    assert len(new.connect_bytes) == 37 and new.connect_bytes[-1] == 0


def test_whoami_ephemerals_children_number(zk, server):
    """whoAmI lists the connection's auth ids, getEphemerals the session's ephemerals (by prefix), and
    getAllChildrenNumber counts all descendants. Reference: Java FinalRequestProcessor."""
    raw = RawClient(server.client_port)
    h, body = raw.call(OpCode.whoAmI)
    assert h.err == 0 and [(i.auth_scheme, i.user) for i in WhoAmIResponse.from_bytes(body).client_info] == [("ip", "127.0.0.1")]
    for p in ("/x1", "/x2", "/y1"):
        raw.call(OpCode.create, CreateRequest(path=p, data=b"", acl=OPEN_ACL_UNSAFE, flags=1))
    h, body = raw.call(OpCode.getEphemerals, GetEphemeralsRequest(prefix_path="/x"))
    assert sorted(GetEphemeralsResponse.from_bytes(body).ephemerals) == ["/x1", "/x2"]
    zk.create("/n/a/b", b"", makepath=True)
    h, body = raw.call(OpCode.getAllChildrenNumber, GetAllChildrenNumberRequest(path="/n"))
    assert GetAllChildrenNumberResponse.from_bytes(body).total_number == 2
    raw.close()


def test_recipes(zk, server):
    """kazoo's recipes — Lock, Election, Counter, Queue, Barrier, DataWatch, ChildrenWatch — work against
    zkref (they exercise sequential ephemerals, watches and versioned sets). Reference: ZooKeeper Recipes
    and Solutions."""
    other = kazoo(server)
    lock1, lock2 = zk.Lock("/lock", "one"), other.Lock("/lock", "two")
    assert lock1.acquire(timeout=5)
    assert not lock2.acquire(blocking=False)
    got = threading.Event()
    t = threading.Thread(target=lambda: (lock2.acquire(timeout=10) and got.set()))
    t.start()
    lock1.release()
    t.join(15)
    assert got.is_set()
    lock2.release()
    counter = zk.Counter("/counter")
    counter += 5
    counter -= 2
    assert counter.value == 3
    q = zk.Queue("/queue")
    q.put(b"first"); q.put(b"second")
    assert other.Queue("/queue").get() == b"first" and q.get() == b"second"
    barrier = zk.Barrier("/barrier")
    barrier.create()
    assert not barrier.wait(0.2)
    barrier.remove()
    assert barrier.wait(1)
    seen = []
    zk.ensure_path("/dw")
    zk.DataWatch("/dw", lambda data, stat: seen.append(data))
    other.set("/dw", b"v1")
    wait_for(lambda: b"v1" in seen, 10, what="DataWatch")
    kids = []
    zk.ChildrenWatch("/dw", lambda children: kids.append(sorted(children)))
    other.create("/dw/k")
    wait_for(lambda: ["k"] in kids, 10, what="ChildrenWatch")
    leaders = []
    election = zk.Election("/election", "me")
    t = threading.Thread(target=lambda: election.run(leaders.append, "led"))
    t.start()
    wait_for(lambda: leaders == ["led"], 10, what="election")
    t.join(5)
    assert other.Election("/election").contenders() == []
    other.stop(); other.close()


def test_four_letter_words(zkref_zk):
    """Only whitelisted four-letter words run (srvr always); others answer Java's refusal text; srvr has
    Java's format. Reference: ZooKeeper Administrator's Guide, "The Four Letter Words"."""
    srv = zkref_zk()
    out = four_letter_word(srv.client_port, "srvr")
    lines = out.splitlines()
    assert lines[0].startswith("Zookeeper version: ") and "Mode: standalone" in lines and lines[-1].startswith("Node count: ")
    assert four_letter_word(srv.client_port, "ruok") == "ruok is not executed because it is not in the whitelist.\n"
    assert four_letter_word(srv.client_port, "stat").startswith("stat is not executed")


def test_sigterm_exits_zero_and_keeps_writes(zkref_zk):
    """SIGTERM shuts the server down cleanly with exit code 0; the first boot wrote snapshot.0 and the
    acknowledged writes are there after a restart. Reference: Java ZooKeeperServerMain.runFromConfig,
    ZooKeeperServer.loadData."""
    srv = zkref_zk()
    assert (srv.data_dir / "version-2" / "snapshot.0").exists()
    c = kazoo(srv)
    c.create("/kept", b"v")
    c.stop(); c.close()
    assert srv.stop(signal.SIGTERM) == 0
    srv.start()
    c = kazoo(srv)
    assert c.get("/kept")[0] == b"v"
    c.stop(); c.close()


def test_pipelined_requests_answered_in_order_under_throttling(zkref_zk):
    """Hundreds of requests sent back to back on one connection are all answered, in request order, even
    when more are in flight than zookeeper.globalOutstandingLimit (the connection stops reading, then
    resumes). Reference: Java ZooKeeperServer.processPacket / ServerCnxn.incrOutstandingAndCheckThrottle;
    ZooKeeper Programmer's Guide, "Ordering guarantees"."""
    srv = zkref_zk({"globalOutstandingLimit": 10})
    c = RawClient(srv.client_port)
    c.call(OpCode.create, CreateRequest(path="/q", data=b"", acl=OPEN_ACL_UNSAFE, flags=0))
    batch = b""
    n = 600
    for i in range(n):
        c.xid += 1
        if i % 3 == 0:
            batch += encode_request(c.xid, OpCode.create, CreateRequest(path=f"/q/n{i}", data=b"x", acl=OPEN_ACL_UNSAFE, flags=0))
        elif i % 3 == 1:
            batch += encode_request(c.xid, OpCode.getData, GetDataRequest(path=f"/q/n{i - 1}", watch=False))
        else:
            batch += encode_request(c.xid, OpCode.setData, SetDataRequest(path=f"/q/n{i - 2}", data=b"y", version=0))
    c.sock.sendall(batch)
    xids, errs, zxids = [], [], []
    for _ in range(n):
        h, _ = c.reply()
        xids.append(h.xid); errs.append(h.err); zxids.append(h.zxid)
    assert xids == list(range(2, n + 2))
    assert set(errs) == {0}
    assert zxids == sorted(zxids)
    c.close()


def test_group_commit(zkref_zk):
    """Writes that arrive together share an fsync (group commit): 300 pipelined creates take far fewer
    log commits than creates, and every one is acknowledged. Reference: Java SyncRequestProcessor
    (toFlush batching)."""
    srv = zkref_zk({"4lw.commands.whitelist": "mntr"})
    c = RawClient(srv.client_port)
    n = 300
    c.sock.sendall(b"".join(encode_request(i + 1, OpCode.create, CreateRequest(path=f"/g{i}", data=b"", acl=OPEN_ACL_UNSAFE, flags=0))
                            for i in range(n)))
    assert [c.reply()[0].err for _ in range(n)] == [0] * n
    mntr = dict(line.split("\t", 1) for line in four_letter_word(srv.client_port, "mntr").splitlines())
    commits = int(mntr["zk_cnt_fsynctime"])
    assert 1 <= commits < n // 3, commits
    c.close()


def test_restored_sessions_expire_after_restart(zkref_zk):
    """Sessions are restored from disk on restart and tracked with their timeouts, so an ephemeral whose
    client never comes back is deleted once the session expires. Reference: Java ZooKeeperServer.loadData,
    SessionTrackerImpl constructor (sessionsWithTimeout)."""
    srv = zkref_zk()
    c = RawClient(srv.client_port, timeout_ms=8000)
    c.call(OpCode.create, CreateRequest(path="/left-behind", data=b"", acl=OPEN_ACL_UNSAFE, flags=1))
    srv.kill()
    c.close()
    srv.start()
    k = kazoo(srv)
    assert k.exists("/left-behind") is not None
    wait_for(lambda: k.exists("/left-behind") is None, 30, what="the restored session to expire")
    assert f"Expiring session 0x{c.session_id:x}" in srv.logs()
    k.stop(); k.close()


def test_whitelisted_four_letter_words(server, zk):
    """With `4lw.commands.whitelist=*` the other words answer in Java's formats: stat lists clients, cons
    one line per connection with the session, wchs/wchc/wchp the watches, dump sessions and ephemerals, conf
    the configuration, ruok imok. Reference: ZooKeeper Administrator's Guide, "The Four Letter Words"."""
    zk.create("/fw", b"", ephemeral=True)
    zk.get("/fw", watch=lambda e: None)
    port, sid = server.client_port, zk.client_id[0]
    assert four_letter_word(port, "ruok") == "imok"
    assert "Clients:\n /127.0.0.1:" in four_letter_word(port, "stat")
    cons = four_letter_word(port, "cons")
    assert f",sid=0x{sid:x},lop=" in cons and "queued=0," in cons
    assert four_letter_word(port, "wchs") == "1 connections watching 1 paths\nTotal watches:1\n"
    assert four_letter_word(port, "wchc") == f"0x{sid:x}\n\t/fw\n\n"
    assert four_letter_word(port, "wchp") == f"/fw\n\t0x{sid:x}\n\n"
    dump = four_letter_word(port, "dump")
    assert dump.startswith("SessionTracker dump:\nSession Sets (") and f"0x{sid:x}:\n\t/fw\n" in dump
    conf = four_letter_word(port, "conf")
    assert f"clientPort={port}\n" in conf and "maxSessionTimeout=40000\n" in conf and conf.endswith("serverId=0\n")
    assert four_letter_word(port, "isro") == "rw"
    mntr = dict(line.split("\t", 1) for line in four_letter_word(port, "mntr").splitlines())
    assert mntr["zk_server_state"] == "standalone" and mntr["zk_version"].startswith("3.8")
    assert int(mntr["zk_ephemerals_count"]) == 1 and int(mntr["zk_watch_count"]) == 1
    assert int(mntr["zk_znode_count"]) == 6 and int(mntr["zk_global_sessions"]) >= 1
    assert {"zk_avg_latency", "zk_cnt_fsynctime", "zk_p99_readlatency", "zk_open_file_descriptor_count"} <= set(mntr)
    assert int(mntr["zk_cnt_fsynctime"]) >= 1 and int(mntr["zk_cnt_readlatency"]) >= 1


def test_super_digest(zkref_zk):
    """A session authenticated with the password of zookeeper.DigestAuthenticationProvider.superDigest is the
    superuser: it passes every ACL check. Reference: ZooKeeper Administrator's Guide, "Authentication &
    Authorization Options" (zookeeper.DigestAuthenticationProvider.superDigest)."""
    from zkref.proto import generate_digest
    srv = zkref_zk({"DigestAuthenticationProvider.superDigest": generate_digest("super:adminpw")})
    owner = kazoo(srv, auth_data=[("digest", "alice:pw")])
    owner.create("/locked", b"s", acl=[make_digest_acl("alice", "pw", all=True)])
    admin = kazoo(srv, auth_data=[("digest", "super:adminpw")])
    assert admin.get("/locked")[0] == b"s"
    admin.set_acls("/locked", K_OPEN_ACL)
    stranger = kazoo(srv)
    assert stranger.get("/locked")[0] == b"s"
    for c in (owner, admin, stranger):
        c.stop(); c.close()


def test_trace_mask_and_digest_log(server, zk):
    """gtmk prints the trace mask (306 by default), stmk sets it from the 8 bytes after the word, and hash
    lists the tree digest every 128 zxids as `zxid: digest`. Reference: Java GetTraceMaskCommand,
    SetTraceMaskCommand, DigestCommand."""
    import socket as _s
    port = server.client_port
    assert four_letter_word(port, "gtmk") == "306"
    with _s.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"stmk" + (0x3FF).to_bytes(8, "big"))
        assert s.recv(100) == b"1023"
    assert four_letter_word(port, "gtmk") == "1023"
    for i in range(130):
        zk.create(f"/h{i}", b"")
    lines = four_letter_word(port, "hash").splitlines()
    assert lines and all(":" in l for l in lines) and lines[0].startswith("80: ")


def test_jvm_flags_reach_the_standalone_server(tmp_path):
    """`-D` flags in `SERVER_JVMFLAGS` apply to a standalone server too (a JVM's system properties are seen by
    both roads of initializeAndRun): with `-Dzookeeper.4lw.commands.whitelist=srvr`, `ruok` is refused with
    Java's text while `srvr` answers.

    Reference: zkServer.sh (passes $SERVER_JVMFLAGS to java); Java FourLetterCommands.isEnabled
    """
    server = ZkrefServer(tmp_path, env={"SERVER_JVMFLAGS": "-Xmx64m -Dzookeeper.4lw.commands.whitelist=srvr"}).start()
    try:
        assert four_letter_word(server.client_port, "ruok") == "ruok is not executed because it is not in the whitelist.\n"
        assert "Mode: standalone" in four_letter_word(server.client_port, "srvr")
    finally:
        server.stop()
