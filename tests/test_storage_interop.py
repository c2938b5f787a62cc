"""Data directories shared with the real Java ZooKeeper 3.8: Java writes, zkref restores; zkref writes, Java
serves; both write the same bytes; both fail the same way on broken files.

The Java server and tools are Debian's zookeeper 3.8 package (tests/conftest.py). The workload is sent with
kazoo, the Python client users run.
"""
from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
from collections import namedtuple
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.protocol import serialization as kser
from kazoo.security import OPEN_ACL_UNSAFE, make_digest_acl

from conftest import JAVA_CLASSPATH, free_port, wait_for
from zkref.jute import (ACL, CreateContainerTxn, CreateSessionTxn, CreateTTLTxn, CreateTxn, DeleteTxn, ErrorTxn, Id,
                        MultiTxn, SetACLTxn, SetDataTxn, Txn, TxnDigest, TxnHeader)
from zkref.persistence import (FileSnap, FileTxnLog, FileTxnSnapLog, StorageOptions, frame_txn_entry, load_epochs,
                               marshall_txn_entry, parse_snapshot, read_snapshot_stream, snapshot_main, txnlog_main,
                               write_long_to_file)
from zkref.zkdatabase import ZKDatabase

pytestmark = [pytest.mark.java, pytest.mark.slow]

WORLD = [ACL(perms=31, id=Id(scheme="world", id="anyone"))]
ALICE = make_digest_acl("alice", "secret", all=True)


# --- kazoo helpers: containers and TTL nodes (kazoo has no API for them) -----------------------------

class _CreateContainer(kser.Create2):
    type = 19


class _CreateTTL(namedtuple("CreateTTL", "path data acl flags ttl")):
    type = 21

    def serialize(self):
        b = kser.Create2(self.path, self.data, self.acl, self.flags).serialize()
        b.extend(struct.pack(">q", self.ttl))
        return b

    deserialize = kser.Create2.deserialize


def _call(client: KazooClient, request):
    result = client.handler.async_result()
    client._call(request, result)
    return result.get(timeout=10)


def workload(c: KazooClient, suffix: str = "", big: bytes | None = None) -> None:
    "Nested paths, ephemerals, sequentials, containers, TTL nodes, digest ACLs, large data, deletes, multi."
    c.add_auth("digest", "alice:secret")
    c.create(f"/app{suffix}/a/b/c", b"deep", makepath=True)
    c.create(f"/app{suffix}/eph", b"mine", ephemeral=True)
    for _ in range(3):
        c.create(f"/app{suffix}/seq-", b"s", sequence=True)
    c.create(f"/app{suffix}/eseq-", b"es", ephemeral=True, sequence=True)
    _call(c, _CreateContainer(f"/cont{suffix}", b"", OPEN_ACL_UNSAFE, 4))
    c.create(f"/cont{suffix}/child", b"c")
    _call(c, _CreateTTL(f"/ttl{suffix}", b"t", OPEN_ACL_UNSAFE, 5, 3_600_000))
    c.create(f"/secret{suffix}", b"top", acl=[ALICE])
    c.create(f"/big{suffix}", os.urandom(400_000) if big is None else big)
    c.create(f"/utf{suffix}", "ünïcödé ✓".encode())
    c.set(f"/app{suffix}/a", b"changed")
    c.set(f"/app{suffix}/a", b"changed again")
    c.delete(f"/app{suffix}/a/b/c")
    t = c.transaction()
    t.create(f"/m1{suffix}", b"1")
    t.create(f"/m2{suffix}", b"2")
    t.set_data(f"/app{suffix}", b"via multi")
    t.commit()
    t = c.transaction()          # a failing multi is logged too (as error txns)
    t.create(f"/m3{suffix}", b"3")
    t.delete("/does-not-exist")
    t.commit()
    c.set_acls(f"/app{suffix}", [ALICE, OPEN_ACL_UNSAFE[0]])
    try:
        c.create(f"/app{suffix}/a", b"dup")   # a failed write consumes a zxid (an error txn)
    except Exception:
        pass


Node = namedtuple("Node", "data stat acl children")


def kazoo_tree(c: KazooClient) -> dict[str, Node]:
    "Every znode as a client sees it: data, the 11 Stat fields, ACLs, children."
    tree, todo = {}, ["/"]
    while todo:
        path = todo.pop()
        data, stat = c.get(path)
        acls, _ = c.get_acls(path)
        children = sorted(c.get_children(path))
        tree[path] = Node(data, tuple(stat), sorted((a.perms, a.id.scheme, a.id.id) for a in acls), children)
        todo += [(path.rstrip("/") + "/" + ch) for ch in children]
    return tree


def zkref_tree(db: ZKDatabase) -> dict[str, Node]:
    "The same view of a zkref DataTree."
    dt, tree, todo = db.data_tree, {}, ["/"]
    while todo:
        path = todo.pop()
        data, stat = dt.get_data(path)
        acls, _ = dt.get_acl(path)
        children, _ = dt.get_children(path)
        s = (stat.czxid, stat.mzxid, stat.ctime, stat.mtime, stat.version, stat.cversion, stat.aversion,
             stat.ephemeral_owner, stat.data_length, stat.num_children, stat.pzxid)
        tree[path] = Node(data or b"", s, sorted((a.perms, a.id.scheme, a.id.id) for a in acls), sorted(children))
        todo += [(path.rstrip("/") + "/" + ch) for ch in children]
    return tree


def connect(port: int) -> KazooClient:
    "A kazoo session, authenticated as alice (digest) so it can read /secret."
    c = KazooClient(hosts=f"127.0.0.1:{port}", timeout=10)
    c.start(timeout=15)
    c.add_auth("digest", "alice:secret")
    return c


def drop(c: KazooClient) -> None:
    "Abandon a client without closing its session (the server is gone or going)."
    try:
        c.stop()
    finally:
        c.close()


def java_tool(cls: str, *args) -> subprocess.CompletedProcess:
    cp = JAVA_CLASSPATH.replace("/usr/share/java/slf4j-log4j12.jar", "/usr/share/java/slf4j-nop.jar")
    return subprocess.run(["java", "-Dfile.encoding=UTF-8", "-cp", cp, cls, *map(str, args)], capture_output=True,
                          timeout=120, env={**os.environ, "TZ": "UTC"}, encoding="utf-8", errors="surrogateescape")


EXTENDED = {"zookeeper.extendedTypesEnabled": "true"}   # TTL nodes, as the Java servers below run


def restore(data_dir: Path) -> tuple[ZKDatabase, int]:
    db = ZKDatabase(FileTxnSnapLog(data_dir, data_dir), EXTENDED)
    return db, db.load_data_base()


# --- (1) Java writes, zkref restores -------------------------------------------------------------------

def test_zkref_restores_a_java_data_dir(java_zk, tmp_path):
    """zkref restores a Java server's data directory — newest snapshot plus the logs after it — to exactly
    the tree, data, stats, ACLs and sessions Java served. Reference: Java FileTxnSnapLog.restore,
    ZKDatabase.loadDataBase; ZooKeeper Admin Guide, "Data File Management"."""
    zk = java_zk({"extendedTypesEnabled": "true"})
    c = connect(zk.client_port)
    workload(c, "")
    zk.stop()
    drop(c)
    zk.start()                                        # Java snapshots at startup: snapshot + later logs
    c = connect(zk.client_port)
    workload(c, "2")
    keeper = connect(zk.client_port)                  # a session that is still open when the server stops
    keeper.create("/kept", b"", ephemeral=True)
    expected = kazoo_tree(c)
    sessions = {c.client_id[0]: c._session_timeout, keeper.client_id[0]: keeper._session_timeout}
    keeper_id = keeper.client_id[0]
    zk.stop()
    drop(c), drop(keeper)
    snaps = sorted(p.name for p in (zk.data_dir / "version-2").glob("snapshot.*"))
    assert len(snaps) >= 2

    db, zxid = restore(zk.data_dir)
    assert zkref_tree(db) == expected
    assert zxid >= max(max(n.stat[1], n.stat[10]) for n in expected.values())
    for sid, timeout in sessions.items():
        assert db.sessions_with_timeouts[sid] == timeout
    assert set(db.data_tree.get_ephemerals(keeper_id)) == {"/kept"}
    assert db.data_tree.digest_mismatches_count == 0


# --- (2) zkref writes, Java serves -----------------------------------------------------------------

class TxnWriter:
    "Writes txns the way zkref's server does: apply to the tree, remember, log, commit in batches."

    def __init__(self, data_dir: Path):
        self.db = ZKDatabase(FileTxnSnapLog(data_dir, data_dir, StorageOptions(prealloc_size=1 << 20)), EXTENDED)
        self.zxid = self.db.load_data_base()
        self.session = 0x100000a1b2c0000
        self.time = 1764168000000

    def txn(self, type_: int, txn, session: int | None = None):
        self.zxid += 1
        self.time += 7
        header = TxnHeader(client_id=self.session if session is None else session, cxid=self.zxid & 0xFFFF, zxid=self.zxid,
                           time=self.time, type=type_)
        if type_ == -10:
            self.db.sessions_with_timeouts[header.client_id] = txn.time_out
        elif type_ == -11:
            self.db.sessions_with_timeouts.pop(header.client_id, None)
        rc = self.db.process_txn(header, txn)
        digest = TxnDigest(version=2, tree_digest=self.db.data_tree.get_tree_digest())
        self.db.add_committed_proposal(header, txn, digest)
        self.db.append(header, txn, digest)
        return rc

    def parent_cversion(self, path: str) -> int:
        parent = path.rsplit("/", 1)[0] or "/"
        return self.db.data_tree.get_node(parent).stat.cversion + 1

    def create(self, path, data=b"", acl=WORLD, ephemeral=False, session=None):
        return self.txn(1, CreateTxn(path=path, data=data, acl=acl, ephemeral=ephemeral,
                                     parent_cversion=self.parent_cversion(path)), session)


def zkref_workload(w: TxnWriter) -> None:
    w.txn(-10, CreateSessionTxn(time_out=30000))
    w.create("/app", b"root of app")
    w.create("/app/a", b"a")
    w.create("/app/a/b", b"b" * 1000)
    w.create("/app/eph", b"mine", ephemeral=True, session=w.session)
    for i in range(3):
        cv = w.parent_cversion("/app/seq-")
        w.txn(1, CreateTxn(path=f"/app/seq-{cv - 1:010d}", data=b"s", acl=WORLD, parent_cversion=cv))
    w.txn(19, CreateContainerTxn(path="/cont", data=b"", acl=WORLD, parent_cversion=w.parent_cversion("/cont")))
    w.create("/cont/child", b"c")
    w.txn(21, CreateTTLTxn(path="/ttl", data=b"t", acl=WORLD, parent_cversion=w.parent_cversion("/ttl"), ttl=3_600_000))
    digest_acl = [ACL(perms=31, id=Id(scheme="digest", id="alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E="))]
    w.create("/secret", b"top", acl=digest_acl)
    w.db.commit()
    w.db.roll_log()
    w.db.take_snapshot()                       # a snapshot in the middle: restore needs snapshot + logs
    w.create("/big", bytes(range(256)) * 1500)
    w.txn(5, SetDataTxn(path="/app/a", data=b"changed", version=1))
    w.txn(2, DeleteTxn(path="/app/a/b"))
    w.txn(7, SetACLTxn(path="/app", acl=digest_acl + WORLD, version=1))
    w.txn(-1, ErrorTxn(err=-110))              # a failed write still takes a zxid
    sub = [Txn(type=1, data=CreateTxn(path="/m1", data=b"1", acl=WORLD, parent_cversion=w.parent_cversion("/m1")).to_bytes()),
           Txn(type=1, data=CreateTxn(path="/m2", data=b"2", acl=WORLD, parent_cversion=w.parent_cversion("/m1") + 1).to_bytes())]
    w.txn(14, MultiTxn(txns=sub))
    w.create("/utf", "ünïcödé ✓".encode())
    w.db.commit()
    w.db.close()


def test_java_serves_a_zkref_data_dir_and_reads_its_files(java_zk, tmp_path):
    """A data directory written by zkref (snapshot + logs, txns applied through DataTree/ZKDatabase) is loaded
    by the Java server, which serves the same tree and finds no digest mismatch; Java's SnapshotFormatter and
    TxnLogToolkit read every file without complaint. Reference: Java FileTxnSnapLog.restore,
    SnapshotFormatter, TxnLogToolkit; DataTree.compareDigest."""
    data = tmp_path / "zkdata"
    w = TxnWriter(data)
    zkref_workload(w)
    expected = zkref_tree(w.db)

    for f in sorted((data / "version-2").iterdir()):
        if f.name.startswith("snapshot."):
            r = java_tool("org.apache.zookeeper.server.SnapshotFormatter", f)
            assert r.returncode == 0 and r.stdout.startswith("ZNode Details"), r.stderr
            assert "Exception" not in r.stderr
        elif f.name.startswith("log."):
            r = java_tool("org.apache.zookeeper.server.persistence.TxnLogToolkit", f)
            assert r.returncode == 0 and "EOF reached after" in r.stdout, r.stdout + r.stderr
            assert "CRC ERROR" not in r.stdout and "Exception" not in r.stderr

    zk = java_zk({"dataDir": str(data), "extendedTypesEnabled": "true"})
    c = connect(zk.client_port)
    served = kazoo_tree(c)
    drop(c)
    zk.stop()
    assert served == expected
    logs = zk.logs()
    assert "Digests are not matching" not in logs and "digest mismatch" not in logs.lower()
    assert "highest zxid is 0x" + format(w.zxid, "x") in logs


def test_toolkit_twins_print_what_java_prints(java_zk, tmp_path):
    """txnlog_main and snapshot_main print byte for byte what zkTxnLogToolkit.sh and zkSnapShotToolkit.sh print
    (UTC, en_US, UTF-8 output; znode data here is text, since Java and Python replace malformed UTF-8
    differently). Reference: Java TxnLogToolkit.dump, SnapshotFormatter.printDetails."""
    zk = java_zk({"extendedTypesEnabled": "true"})
    c = connect(zk.client_port)
    workload(c, big=b"0123456789abcdef" * 1000)
    zk.stop()
    drop(c)
    zk.start()
    zk.stop()
    files = sorted((zk.data_dir / "version-2").iterdir())
    os.environ["TZ"] = "UTC"
    try:
        import time as _t
        _t.tzset()
        for f in files:
            out = io.StringIO()
            if f.name.startswith("log."):
                assert txnlog_main([str(f)], stdout=out) == 0
                assert out.getvalue() == java_tool("org.apache.zookeeper.server.persistence.TxnLogToolkit", f).stdout
            elif f.name.startswith("snapshot."):
                for flags in ([], ["-d"]):
                    out = io.StringIO()
                    assert snapshot_main(flags + [str(f)], stdout=out) == 0
                    java = java_tool("org.apache.zookeeper.server.SnapshotFormatter", *flags, f).stdout
                    assert out.getvalue() == java, f"{f.name} {flags}"
    finally:
        _t.tzset()


# --- (3) byte level --------------------------------------------------------------------------------

def test_same_txns_make_the_same_log_bytes(java_zk):
    """The txns of a Java log, appended by zkref's FileTxnLog, give the same file header and the same records,
    byte for byte. Reference: Java FileTxnLog.append, Util.marshallTxnEntry."""
    zk = java_zk({"extendedTypesEnabled": "true"})
    c = connect(zk.client_port)
    workload(c)
    drop(c)
    zk.stop()
    java_log = sorted((zk.data_dir / "version-2").glob("log.*"))[0]
    ours_dir = zk.workdir / "ours"
    ours_dir.mkdir()
    entries = list(FileTxnLog(java_log.parent).read(0))
    assert len(entries) > 20
    w = FileTxnLog(ours_dir)
    for e in entries:
        w.append(e.header, e.txn, e.digest)
    w.commit()
    w.close()
    ours = (ours_dir / java_log.name).read_bytes()
    theirs = java_log.read_bytes()
    size = 16 + sum(len(frame_txn_entry(marshall_txn_entry(e.header, e.txn, e.digest))) for e in entries)
    assert ours[:size] == theirs[:size]
    assert ours[size:size + 64] == theirs[size:size + 64] == bytes(64)
    pos = 16
    for e in entries:     # record by record, to name the first difference if there is one
        rec = frame_txn_entry(marshall_txn_entry(e.header, e.txn, e.digest))
        assert theirs[pos:pos + len(rec)] == rec, f"zxid {e.header.zxid:#x}"
        pos += len(rec)


def test_same_state_makes_the_same_snapshot(java_zk):
    """Restoring Java's snapshot.0 + log and snapshotting gives the snapshot Java itself writes at its next
    start: the same header, sessions, ACL cache, nodes (in Java's HashSet order), seals and digest.
    Reference: Java FileSnap.serialize, SerializeUtils.serializeSnapshot, DataTree.serialize."""
    zk = java_zk({"extendedTypesEnabled": "true"})
    c = connect(zk.client_port)
    workload(c)
    keeper = connect(zk.client_port)
    keeper.create("/kept", b"k", ephemeral=True)
    zk.stop()
    drop(c), drop(keeper)
    before = zk.workdir / "before"
    shutil.copytree(zk.data_dir, before)
    zk.start()
    zk.stop()
    java_snaps = sorted((zk.data_dir / "version-2").glob("snapshot.*"), key=lambda p: int(p.name.split(".")[1], 16))
    java_snap = java_snaps[-1]

    db, zxid = restore(before)
    ours = db.take_snapshot()
    assert ours.name == java_snap.name
    theirs_raw, ours_raw = parse_snapshot(java_snap.read_bytes()), parse_snapshot(ours.read_bytes())
    assert sorted(ours_raw.sessions) == sorted(theirs_raw.sessions)
    assert sorted(ours_raw.acls, key=lambda a: a[0]) == sorted(theirs_raw.acls, key=lambda a: a[0])
    assert {n.path: n for n in ours_raw.nodes} == {n.path: n for n in theirs_raw.nodes}
    assert ours_raw.zxid_digest == theirs_raw.zxid_digest
    assert [n.path for n in ours_raw.nodes] == [n.path for n in theirs_raw.nodes]
    assert ours_raw.acls == theirs_raw.acls and ours_raw.sessions == theirs_raw.sessions
    assert ours.read_bytes() == java_snap.read_bytes()


# --- faults ----------------------------------------------------------------------------------------

def _tear(log: Path, zeroed: bool) -> int:
    "Damage the last record of `log`: cut it in half, or zero its second half. Returns the last whole zxid."
    entries = list(FileTxnLog(log.parent).read(0))
    last = entries[-1]
    with FileTxnLog(log.parent).read(last.header.zxid) as itr:
        end = itr.position
    size = len(frame_txn_entry(marshall_txn_entry(last.header, last.txn, last.digest)))
    start = end - size
    if zeroed:
        raw = bytearray(log.read_bytes())
        raw[start + size // 2:end] = bytes(end - start - size // 2)
        log.write_bytes(bytes(raw))
    else:
        os.truncate(log, start + size // 2)
    return entries[-2].header.zxid


@pytest.mark.parametrize("zeroed", [False, True], ids=["partial-record", "zeroed-tail"])
def test_torn_tail_restores_like_java(java_zk, tmp_path, zeroed):
    """A log whose last record was torn (cut short, or its end never written) restores to the last whole
    record, in zkref and in Java alike. Reference: Java Util.readTxnBytes, FileTxnIterator.next."""
    data = tmp_path / "zkdata"
    w = TxnWriter(data)
    zkref_workload(w)
    log = sorted((data / "version-2").glob("log.*"), key=lambda p: int(p.name.split(".")[1], 16))[-1]
    last_whole = _tear(log, zeroed)
    db, zxid = restore(data)
    assert zxid == last_whole
    expected = zkref_tree(db)
    zk = java_zk({"dataDir": str(data), "extendedTypesEnabled": "true"})
    c = connect(zk.client_port)
    served = kazoo_tree(c)
    drop(c)
    zk.stop()
    assert served == expected


@pytest.mark.parametrize("damage", ["bad-checksum", "no-seal"])
def test_bad_newest_snapshot_falls_back_like_java(java_zk, tmp_path, damage):
    """A newest snapshot with a wrong checksum, or without its final seal, is skipped for an older valid one
    plus the logs, by zkref and by Java. Reference: Java FileSnap.deserialize, SnapStream.isValidSnapshot."""
    data = tmp_path / "zkdata"
    w = TxnWriter(data)
    zkref_workload(w)
    good = zkref_tree(restore(data)[0])
    snap = max((data / "version-2").glob("snapshot.*"), key=lambda p: int(p.name.split(".")[1], 16))
    assert snap.name != "snapshot.0"
    raw = bytearray(snap.read_bytes())
    if damage == "bad-checksum":
        raw[200] ^= 0x01
    else:
        raw = raw[:-30]
    snap.write_bytes(bytes(raw))
    db, _ = restore(data)
    assert zkref_tree(db) == good
    zk = java_zk({"dataDir": str(data), "extendedTypesEnabled": "true"})
    c = connect(zk.client_port)
    served = kazoo_tree(c)
    drop(c)
    zk.stop()
    assert served == good


def _quorum_config(data: Path) -> dict:
    return {"dataDir": str(data), "standaloneEnabled": "false", "initLimit": 5, "syncLimit": 2,
            "server.1": f"127.0.0.1:{free_port()}:{free_port()}"}


@pytest.mark.parametrize("accepted,current,message", [
    ("1", "2", "The accepted epoch, 1 is less than the current epoch, 2"),
    ("garbage", "0", "Found garbage in {dir}/acceptedEpoch"),
    ("0", "", "Found null in {dir}/currentEpoch"),
])
def test_bad_epoch_files_fail_like_java(java_zk, tmp_path, accepted, current, message):
    """acceptedEpoch < currentEpoch, or an epoch file that is not a number, stops a quorum peer with Java's
    message. Reference: Java QuorumPeer.loadDataBase, readLongFromFile."""
    data = tmp_path / "zkdata"
    vdir = data / "version-2"
    vdir.mkdir(parents=True)
    (vdir / "acceptedEpoch").write_text(accepted)
    (vdir / "currentEpoch").write_text(current)
    expected = message.format(dir=vdir)
    with pytest.raises(OSError) as e:
        load_epochs(vdir, 0)
    assert str(e.value) == expected
    zk = java_zk(_quorum_config(data), myid=1, wait=False)
    wait_for(lambda: zk.proc.poll() is not None, 60, what="the Java peer to exit")
    assert expected in zk.logs()
    assert zk.proc.returncode != 0


# --- compressed snapshots --------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["gz", "snappy"])
def test_compressed_snapshots_both_ways(java_zk, tmp_path, method):
    """Snapshots compressed with zookeeper.snapshot.compression.method=gz|snappy (snapshot.<zxid>.gz /
    .snappy, snappy-java's stream format) written by Java are restored by zkref, and zkref's are read by Java's
    SnapshotFormatter and server. snappy needs a Python snappy package (python-snappy). Reference: Java
    SnapStream.getInputStream/getOutputStream, isValidSnapshot."""
    if method == "snappy":
        pytest.importorskip("snappy", reason="python-snappy is not installed: .snappy snapshots are unsupported")
    zk = java_zk({"extendedTypesEnabled": "true", "snapshot.compression.method": method})
    c = connect(zk.client_port)
    workload(c)
    zk.stop()
    drop(c)
    zk.start()                                   # the startup snapshot is compressed
    c = connect(zk.client_port)
    expected = kazoo_tree(c)
    drop(c)
    zk.stop()
    assert list((zk.data_dir / "version-2").glob(f"snapshot.*.{method}"))
    db, _ = restore(zk.data_dir)
    assert zkref_tree(db) == expected

    data = tmp_path / "zkdata"
    opts = StorageOptions.from_properties({"zookeeper.snapshot.compression.method": method,
                                           "zookeeper.preAllocSize": "1024"})
    w = TxnWriter(data)
    w.db.snap_log.options = w.db.snap_log.txn_log.options = w.db.snap_log.snap_log.options = opts
    zkref_workload(w)
    ours = [p for p in (data / "version-2").glob(f"snapshot.*.{method}")]
    assert ours
    for f in ours:
        r = java_tool("org.apache.zookeeper.server.SnapshotFormatter", f)
        assert r.returncode == 0 and r.stdout.startswith("ZNode Details"), r.stderr
    expected = zkref_tree(w.db)
    zk2 = java_zk({"dataDir": str(data), "extendedTypesEnabled": "true"}, name="java2")
    c = connect(zk2.client_port)
    served = kazoo_tree(c)
    drop(c)
    zk2.stop()
    assert served == expected


def test_chop_mode_matches_java(java_zk, tmp_path):
    """zkTxnLogToolkit.sh -c -z <zxid> copies a log up to that zxid into <file>.chopped<zxid>: zkref writes the
    same file and prints the same lines, including "nothing chopped" cases. Reference: Java
    TxnLogToolkit.chop, LogChopper.chop."""
    zk = java_zk({"extendedTypesEnabled": "true"})
    c = connect(zk.client_port)
    workload(c, big=b"b" * 1000)
    drop(c)
    zk.stop()
    log = sorted((zk.data_dir / "version-2").glob("log.*"))[0]
    last = list(FileTxnLog(log.parent).read(0))[-1].header.zxid
    for zxid in ("0x5", "7", str(last), "0x999"):
        ours_dir, java_dir = tmp_path / f"ours{zxid}", tmp_path / f"java{zxid}"
        ours_dir.mkdir(), java_dir.mkdir()
        shutil.copy(log, ours_dir / log.name), shutil.copy(log, java_dir / log.name)
        out = io.StringIO()
        assert txnlog_main(["-c", "-z", zxid, str(ours_dir / log.name)], stdout=out, stderr=io.StringIO()) == 0
        java = java_tool("org.apache.zookeeper.server.persistence.TxnLogToolkit", "-c", "-z", zxid, java_dir / log.name)
        assert out.getvalue() == java.stdout, zxid
        chopped = f"{log.name}.chopped{int(zxid, 0)}"
        assert (ours_dir / chopped).read_bytes() == (java_dir / chopped).read_bytes(), zxid


def test_epoch_files_round_trip_with_a_java_quorum_peer(java_zk, tmp_path):
    """Epoch files written by zkref are accepted by a Java quorum peer, which leads a new epoch and rewrites
    them; zkref reads Java's files back, and restores the peer's data dir to the tree it served.
    Reference: Java QuorumPeer.loadDataBase, writeLongToFile, Leader.lead (new epoch)."""
    data = tmp_path / "zkdata"
    w = TxnWriter(data)
    w.zxid = 3 << 32                                   # txns of epoch 3
    zkref_workload(w)
    vdir = data / "version-2"
    write_long_to_file(vdir / "acceptedEpoch", 3)
    write_long_to_file(vdir / "currentEpoch", 3)
    zk = java_zk(dict(_quorum_config(data), extendedTypesEnabled="true"), myid=1)
    c = connect(zk.client_port)
    served = kazoo_tree(c)
    drop(c)
    zk.stop()
    assert served == zkref_tree(w.db)
    assert (vdir / "currentEpoch").read_bytes() == b"4" and (vdir / "acceptedEpoch").read_bytes() == b"4"
    db, zxid = restore(data)
    assert zxid >> 32 in (3, 4)
    assert load_epochs(vdir, zxid) == (4, 4)
    assert zkref_tree(db) == served
