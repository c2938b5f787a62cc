"""The same scripted workload against the real Java ZooKeeper 3.8 (`java_zk`) and against zkref gives the
same replies: xids, zxids, error codes, response records (stats modulo times and session ids), children
order, multi results, watch events and their order."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from kazoo.security import make_digest_acl

from test_standalone_server import RawClient, kazoo
from zkref.jute import (ACL, Id, CheckVersionRequest, CreateTTLRequest, Create2Response, CreateRequest, CreateResponse,
                        DeleteRequest, ExistsRequest, ExistsResponse, GetACLRequest, GetACLResponse,
                        GetAllChildrenNumberRequest, GetAllChildrenNumberResponse, GetChildren2Request,
                        GetChildren2Response, GetChildrenRequest, GetChildrenResponse, GetDataRequest,
                        GetDataResponse, GetEphemeralsRequest, GetEphemeralsResponse, SetACLRequest,
                        SetACLResponse, SetDataRequest, SetDataResponse, Stat, SyncRequest, SyncResponse,
                        WhoAmIResponse, AddWatchRequest, RemoveWatchesRequest, CheckWatchesRequest, ErrorResponse)
from zkref.proto import OPEN_ACL_UNSAFE, MultiOperationRecord, MultiResponse, OpCode, generate_digest

pytestmark = pytest.mark.java

RESPONSES = {OpCode.create: CreateResponse, OpCode.create2: Create2Response, OpCode.exists: ExistsResponse,
             OpCode.getData: GetDataResponse, OpCode.setData: SetDataResponse, OpCode.getACL: GetACLResponse,
             OpCode.setACL: SetACLResponse, OpCode.getChildren: GetChildrenResponse, OpCode.sync: SyncResponse,
             OpCode.getChildren2: GetChildren2Response, OpCode.multi: MultiResponse, OpCode.multiRead: MultiResponse,
             OpCode.getAllChildrenNumber: GetAllChildrenNumberResponse, OpCode.getEphemerals: GetEphemeralsResponse,
             OpCode.whoAmI: WhoAmIResponse, OpCode.addWatch: ErrorResponse,
             OpCode.createContainer: Create2Response, OpCode.createTTL: Create2Response}

CONFIG = {"tickTime": 2000, "4lw.commands.whitelist": "*", "extendedTypesEnabled": "true"}


def normalize(obj, sessions: dict[int, str]):
    "A comparable form of a response: times dropped, session ids named."
    if isinstance(obj, Stat):
        d = dataclasses.asdict(obj)
        d["ctime"] = d["mtime"] = "t"
        d["ephemeral_owner"] = sessions.get(d["ephemeral_owner"], d["ephemeral_owner"])
        return d
    if dataclasses.is_dataclass(obj):
        return {f.name: normalize(getattr(obj, f.name), sessions) for f in dataclasses.fields(obj)}
    if isinstance(obj, list):
        return [normalize(x, sessions) for x in obj]
    return obj


def multi(*ops):
    return MultiOperationRecord(list(ops))


def workload(port: int) -> list:
    "Run the script against one server; the normalized transcript."
    a, b = RawClient(port, timeout_ms=30000), RawClient(port, timeout_ms=30000)
    sessions = {a.session_id: "A", b.session_id: "B"}
    out = [("connect", a.connect.time_out, a.connect.protocol_version, len(a.connect_bytes))]
    acl_alice = [ACL(perms=31, id=Id(scheme="digest", id=generate_digest("alice:pw")))]

    def step(client, name, op, record=None):
        h, body = client.call(op, record)
        rec = None
        if h.err == 0 and op in RESPONSES:
            rec = RESPONSES[op].from_bytes(body)
        out.append((name, h.xid, h.zxid, h.err, normalize(rec, sessions), [normalize(e, sessions) for e in b.events]))
        b.events.clear()

    step(b, "watch data missing", OpCode.getData, GetDataRequest(path="/p", watch=True))
    step(b, "watch exists missing", OpCode.exists, ExistsRequest(path="/p", watch=True))
    step(a, "create /p", OpCode.create, CreateRequest(path="/p", data=b"x", acl=OPEN_ACL_UNSAFE, flags=0))
    step(a, "create /p again", OpCode.create, CreateRequest(path="/p", data=b"x", acl=OPEN_ACL_UNSAFE, flags=0))
    step(b, "watch data /p", OpCode.getData, GetDataRequest(path="/p", watch=True))
    step(b, "watch children /p", OpCode.getChildren, GetChildrenRequest(path="/p", watch=True))
    step(a, "create2 /p/c1", OpCode.create2, CreateRequest(path="/p/c1", data=b"12345", acl=OPEN_ACL_UNSAFE, flags=0))
    for i in range(3):
        step(a, f"sequential {i}", OpCode.create, CreateRequest(path="/p/s-", data=b"", acl=OPEN_ACL_UNSAFE, flags=2))
    step(a, "ephemeral", OpCode.create2, CreateRequest(path="/p/e", data=b"", acl=OPEN_ACL_UNSAFE, flags=1))
    step(a, "ephemeral seq", OpCode.create2, CreateRequest(path="/p/es-", data=b"", acl=OPEN_ACL_UNSAFE, flags=3))
    step(a, "under ephemeral", OpCode.create, CreateRequest(path="/p/e/x", data=b"", acl=OPEN_ACL_UNSAFE, flags=0))
    step(a, "no parent", OpCode.create, CreateRequest(path="/q/r", data=b"", acl=OPEN_ACL_UNSAFE, flags=0))
    step(a, "empty acl", OpCode.create, CreateRequest(path="/p/z", data=b"", acl=[], flags=0))
    step(a, "auth acl, no auth", OpCode.create, CreateRequest(path="/p/z", data=b"", acl=[ACL(perms=31, id=Id(scheme="auth", id=""))], flags=0))
    step(a, "container", OpCode.createContainer, CreateRequest(path="/ctr", data=b"c", acl=OPEN_ACL_UNSAFE, flags=4))
    step(a, "ttl", OpCode.createTTL, CreateTTLRequest(path="/ttl", data=b"t", acl=OPEN_ACL_UNSAFE, flags=5, ttl=60000))
    step(a, "ttl sequential", OpCode.createTTL, CreateTTLRequest(path="/ttl-", data=b"", acl=OPEN_ACL_UNSAFE, flags=6, ttl=60000))
    step(a, "ttl bad mode", OpCode.createTTL, CreateTTLRequest(path="/ttl2", data=b"", acl=OPEN_ACL_UNSAFE, flags=0, ttl=5))
    step(a, "ttl zero", OpCode.createTTL, CreateTTLRequest(path="/ttl3", data=b"", acl=OPEN_ACL_UNSAFE, flags=5, ttl=0))
    step(a, "ttl via create", OpCode.create, CreateRequest(path="/ttl4", data=b"", acl=OPEN_ACL_UNSAFE, flags=5))
    step(a, "exists ttl", OpCode.exists, ExistsRequest(path="/ttl", watch=False))
    step(a, "setData v0", OpCode.setData, SetDataRequest(path="/p", data=b"y", version=0))
    step(a, "setData v0 again", OpCode.setData, SetDataRequest(path="/p", data=b"z", version=0))
    step(a, "getChildren2", OpCode.getChildren2, GetChildren2Request(path="/p", watch=False))
    step(b, "watch exists /p/e", OpCode.exists, ExistsRequest(path="/p/e", watch=True))
    step(a, "delete /p/c1", OpCode.delete, DeleteRequest(path="/p/c1", version=-1))
    step(a, "delete non-empty", OpCode.delete, DeleteRequest(path="/p", version=-1))
    step(a, "delete bad version", OpCode.delete, DeleteRequest(path="/p/s-0000000001", version=5))
    step(a, "exists /p", OpCode.exists, ExistsRequest(path="/p", watch=False))
    step(a, "getACL /p", OpCode.getACL, GetACLRequest(path="/p"))
    step(a, "create protected", OpCode.create, CreateRequest(path="/prot", data=b"s", acl=acl_alice, flags=0))
    step(a, "read protected", OpCode.getData, GetDataRequest(path="/prot", watch=False))
    step(a, "getACL protected", OpCode.getACL, GetACLRequest(path="/prot"))
    step(a, "setACL /p", OpCode.setACL, SetACLRequest(path="/p", acl=OPEN_ACL_UNSAFE, version=0))
    step(a, "setACL /p stale", OpCode.setACL, SetACLRequest(path="/p", acl=OPEN_ACL_UNSAFE, version=0))
    step(a, "multi ok", OpCode.multi, multi(
        (OpCode.create, CreateRequest(path="/m", data=b"", acl=OPEN_ACL_UNSAFE, flags=0)),
        # (a create2 inside a multi answers create2 since ZOOKEEPER-4026 in 3.8.2; Debian's 3.8.0 answers create)
        (OpCode.create, CreateRequest(path="/m/a", data=b"a", acl=OPEN_ACL_UNSAFE, flags=0)),
        (OpCode.setData, SetDataRequest(path="/m", data=b"m", version=-1)),
        (OpCode.check, CheckVersionRequest(path="/m", version=1)),
        (OpCode.delete, DeleteRequest(path="/m/a", version=-1))))
    step(a, "multi fails", OpCode.multi, multi(
        (OpCode.create, CreateRequest(path="/n", data=b"", acl=OPEN_ACL_UNSAFE, flags=0)),
        (OpCode.check, CheckVersionRequest(path="/m", version=7)),
        (OpCode.delete, DeleteRequest(path="/m", version=-1))))
    step(a, "multi not there", OpCode.exists, ExistsRequest(path="/n", watch=False))
    step(a, "multiRead", OpCode.multiRead, multi(
        (OpCode.getData, GetDataRequest(path="/m")), (OpCode.getChildren, GetChildrenRequest(path="/p")),
        (OpCode.getData, GetDataRequest(path="/missing"))))
    step(a, "sync", OpCode.sync, SyncRequest(path="/p"))
    step(a, "getAllChildrenNumber", OpCode.getAllChildrenNumber, GetAllChildrenNumberRequest(path="/"))
    step(a, "getEphemerals", OpCode.getEphemerals, GetEphemeralsRequest(prefix_path="/p/e"))
    step(a, "config node", OpCode.getData, GetDataRequest(path="/zookeeper/config", watch=False))
    step(a, "set config node", OpCode.setData, SetDataRequest(path="/zookeeper/config", data=b"x", version=-1))
    step(a, "delete /zookeeper", OpCode.delete, DeleteRequest(path="/zookeeper", version=-1))
    step(b, "addWatch recursive", OpCode.addWatch, AddWatchRequest(path="/m", mode=1))
    step(a, "create /m/deep", OpCode.create, CreateRequest(path="/m/deep", data=b"", acl=OPEN_ACL_UNSAFE, flags=0))
    step(a, "set /m/deep", OpCode.setData, SetDataRequest(path="/m/deep", data=b"d", version=-1))
    step(b, "checkWatches", OpCode.checkWatches, CheckWatchesRequest(path="/m", type=3))
    step(b, "removeWatches", OpCode.removeWatches, RemoveWatchesRequest(path="/m", type=3))
    step(b, "removeWatches again", OpCode.removeWatches, RemoveWatchesRequest(path="/m", type=3))
    step(a, "closeSession", OpCode.closeSession)
    step(b, "after close", OpCode.exists, ExistsRequest(path="/p/e", watch=False))
    step(b, "children after close", OpCode.getChildren, GetChildrenRequest(path="/p", watch=False))
    a.close(); b.close()
    return out


def test_same_replies_as_java(java_zk, zkref_zk):  # noqa: F811
    """Every step of a workload covering every request type, error path and watch kind gets the same
    reply from zkref as from Java ZooKeeper 3.8: same xid, same zxid, same error code, same record (times
    and session ids aside), and the watcher session sees the same events in the same order.
    Reference: Java FinalRequestProcessor / PrepRequestProcessor (the Java server itself is the oracle)."""
    java = java_zk(dict(CONFIG))
    ours = zkref_zk(dict(CONFIG))
    expected, got = workload(java.client_port), workload(ours.client_port)
    for e, g in zip(expected, got):
        assert g == e, f"step {e[0]!r} differs:\n java: {e}\nzkref: {g}"
    assert len(got) == len(expected)


def logged_txns(data_dir) -> list:
    "Every txn in a data directory's log, normalized: (zxid, type, session, cxid, txn record, has a digest)."
    from zkref.persistence import FileTxnLog
    out, sessions = [], {}
    with FileTxnLog(Path(data_dir) / "version-2").read(1) as it:
        for e in it:
            sessions.setdefault(e.header.client_id, f"S{len(sessions)}")
            txn = normalize(e.txn, {})
            if isinstance(txn, dict) and "txns" in txn:      # a multi: decode each sub-txn's bytes
                txn = [(t["type"], t["data"]) for t in txn["txns"]]
            out.append((e.header.zxid, e.header.type, sessions[e.header.client_id], e.header.cxid, txn,
                        e.digest is not None))       # the digest value covers times, so only its presence
    return out


def test_same_transaction_log_as_java(java_zk, zkref_zk):  # noqa: F811
    """After the same workload the two transaction logs hold the same transactions: same zxids, types
    (failed writes as `error` txns), cxids, txn records (ephemeral paths in closeSession, parent cversions,
    multi sub-txns), and a TxnDigest where Java writes one (its value covers ctime/mtime, so it differs;
    test_standalone_durability checks that Java accepts zkref's digests). Reference: Java FileTxnLog, PrepRequestProcessor,
    precalculateDigest."""
    java, ours = java_zk(dict(CONFIG)), zkref_zk(dict(CONFIG))
    workload(java.client_port)
    workload(ours.client_port)
    java.stop(); ours.stop()
    expected, got = logged_txns(java.data_dir), logged_txns(ours.data_dir)
    assert len(got) == len(expected) > 30
    for e, g in zip(expected, got):
        assert g == e, f"txn differs:\n java: {e}\nzkref: {g}"


def test_kazoo_workload_same_as_java(java_zk, zkref_zk):  # noqa: F811
    """kazoo sees the same data, stats (modulo times), children and watch events from both servers.
    Reference: the Java server as oracle."""
    def run(server) -> list:
        k = kazoo(server)
        events, out = [], []
        k.ensure_path("/k")
        k.get_children("/k", watch=lambda e: events.append(("child", e.type, e.path)))
        for i in range(5):
            out.append(k.create("/k/n-", str(i).encode(), sequence=True))
        k.get("/k/n-0000000002", watch=lambda e: events.append(("data", e.type, e.path)))
        k.set("/k/n-0000000002", b"new")
        k.delete("/k/n-0000000003")
        st = k.exists("/k")
        out.append((st.version, st.cversion, st.numChildren, st.dataLength, st.aversion))
        out.append(k.get_children("/k"))
        d, st = k.get("/k/n-0000000002")
        out.append((d, st.version, st.dataLength))
        k.add_auth("digest", "u:p")
        k.create("/k/acl", b"", acl=[make_digest_acl("u", "p", all=True)])
        out.append([(a.perms, a.id.scheme, a.id.id) for a in k.get_acls("/k/acl")[0]])
        k.stop(); k.close()
        return [out, events]
    assert run(zkref_zk(dict(CONFIG))) == run(java_zk(dict(CONFIG)))


def set_watches_script(port: int) -> list:
    "A client re-registers its watches after a reconnect (setWatches2 with xid -8); the events it gets."
    from zkref.jute import SetWatches2
    a, b = RawClient(port, timeout_ms=30000), RawClient(port, timeout_ms=30000)
    b.call(OpCode.create, CreateRequest(path="/sw", data=b"1", acl=OPEN_ACL_UNSAFE, flags=0))
    b.call(OpCode.create, CreateRequest(path="/sw/kid", data=b"", acl=OPEN_ACL_UNSAFE, flags=0))
    h, _ = b.call(OpCode.exists, ExistsRequest(path="/sw", watch=False))
    seen = h.zxid
    a.close()
    b.call(OpCode.setData, SetDataRequest(path="/sw", data=b"2", version=-1))          # changed while away
    b.call(OpCode.delete, DeleteRequest(path="/sw/kid", version=-1))
    a2 = RawClient(port, session_id=a.session_id, passwd=a.passwd)
    h, body = a2.call(OpCode.setWatches2, SetWatches2(relative_zxid=seen, data_watches=["/sw", "/gone"],
                                                       exist_watches=["/later"], child_watches=["/sw", "/"],
                                                       persistent_watches=["/p"], persistent_recursive_watches=[]),
                      xid=-8)
    out = [("setWatches2", h.xid, h.err, body)]
    b.call(OpCode.create, CreateRequest(path="/later", data=b"", acl=OPEN_ACL_UNSAFE, flags=0))
    b.call(OpCode.create, CreateRequest(path="/p", data=b"", acl=OPEN_ACL_UNSAFE, flags=0))
    h, _ = a2.call(OpCode.exists, ExistsRequest(path="/", watch=False))
    out.append(sorted((e.type, e.state, e.path) for e in a2.events))
    a2.close(); b.close()
    return out


def test_set_watches_after_reconnect_same_as_java(java_zk, zkref_zk):  # noqa: F811
    """After a reconnect, setWatches2 fires at once the watches whose nodes changed (or vanished) since the
    client's last zxid, and registers the rest, persistent ones included — the same events as Java.
    Reference: Java DataTree.setWatches; ClientCnxn SET_WATCHES_XID."""
    assert set_watches_script(zkref_zk(dict(CONFIG)).client_port) == set_watches_script(java_zk(dict(CONFIG)).client_port)


def test_enforced_auth_same_as_java(java_zk, zkref_zk):  # noqa: F811
    """With enforce.auth.enabled=true and schemes=digest both servers answer an unauthenticated request the
    same way, and accept it after `auth digest`. Reference: Java AuthenticationHelper."""
    from zkref.jute import AuthPacket

    def script(port):
        out = []
        c = RawClient(port)
        out.append(c.call(OpCode.getData, GetDataRequest(path="/", watch=False))[0].err)
        try:
            c.read_frame()
            out.append("open")
        except (EOFError, OSError):
            out.append("closed")
        c2 = RawClient(port)
        out.append(c2.call(OpCode.auth, AuthPacket(type=0, scheme="digest", auth=b"u:p"), xid=-4)[0].err)
        out.append(c2.call(OpCode.exists, ExistsRequest(path="/", watch=False))[0].err)
        return out
    cfg = dict(CONFIG, **{"enforce.auth.enabled": "true", "enforce.auth.schemes": "digest"})
    assert script(zkref_zk(dict(cfg)).client_port) == script(java_zk(dict(cfg)).client_port) == [-124, "closed", 0, 0]


def test_four_letter_word_formats_same_as_java(java_zk, zkref_zk):  # noqa: F811
    """srvr, stat, cons, conf, wchs, dump, ruok, isro, gtmk and a refused word (mntr) have Java's layout (keys, order, separators),
    values aside. Reference: ZooKeeper Administrator's Guide, "The Four Letter Words"."""
    from conftest import four_letter_word
    import re

    def shape(port: int) -> dict:
        c = RawClient(port)
        c.call(OpCode.create, CreateRequest(path="/e", data=b"", acl=OPEN_ACL_UNSAFE, flags=1))
        c.call(OpCode.getData, GetDataRequest(path="/e", watch=True))
        out = {}
        for w in ("srvr", "stat", "cons", "conf", "wchs", "dump", "ruok", "isro", "gtmk", "envi", "mntr"):
            text = four_letter_word(port, w)
            lines = [re.sub(r"[0-9a-fx./:-]+", "#", line.split("\t")[0].split("=")[0]) for line in text.splitlines()
                     if not line.startswith("Zookeeper version")][:30]
            if w == "dump":   # how many expiry buckets the connections fall in depends on timing
                lines = [l for i, l in enumerate(lines) if i == 0 or l != lines[i - 1]]
                kept, skip_blank = [], False   # ... nor when each bucket is its `… expire at …` line and a blank
                for l in lines:                # one (Java's connections fell in two buckets once, in CI): one of a run
                    if skip_blank and l == "":
                        skip_blank = False
                        continue
                    skip_blank = False
                    if l.startswith("# #pir#") and kept[-2:] == [l, ""]:
                        skip_blank = True
                        continue
                    kept.append(l)
                lines = kept
            out[w] = sorted(lines) if w in ("stat", "cons") else lines   # connections come in no fixed order
        c.close()
        return out
    cfg = dict(CONFIG, **{"4lw.commands.whitelist": "srvr,stat,cons,conf,wchs,dump,ruok,isro,gtmk,envi"})
    ours, java = shape(zkref_zk(dict(cfg)).client_port), shape(java_zk(dict(cfg)).client_port)
    for w in java:
        assert ours[w] == java[w], f"{w}:\n java: {java[w]}\nzkref: {ours[w]}"
