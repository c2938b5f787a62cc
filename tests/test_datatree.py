"""zkref.datatree against Java ZooKeeper 3.8's DataTree: paths, stats, txns, watches, ACLs, quotas, digest, snapshots.

The Java-interop tests run a scripted workload with kazoo against the real Java server (Debian's zookeeper
3.8), read the transaction log and the snapshot that server wrote, replay the log through
`DataTree.process_txn`, and compare every stat, child order, digest and snapshot byte with Java's.
"""
from __future__ import annotations

import dataclasses
import io
import logging
import pathlib
import struct
import zlib
from collections import namedtuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import JavaZooKeeper, four_letter_word, free_port, java_available
from zkref.datatree import (CONFIG_NODE, CONTAINER_EPHEMERAL_OWNER, Code, DataNode, DataTree, DigestCalculator,
                            EphemeralType, EventType, IllegalArgumentError, JavaHashSet, KeeperState, NoNodeError,
                            NodeExistsError, OpCode, PathTrie, Perms, QuotaExceededError, Quotas,
                            ReferenceCountedACLCache, ServerWatcher, StatsTrack, WatchedEvent, WatcherMode,
                            WatcherType, WatchManager, create_stat, open_acl_unsafe, read_acl_unsafe,
                            java_string_hash, validate_path)
from zkref.datatree_snapshots import ZxidDigest
from zkref.datatree_txns import ProcessTxnResult, sequential_suffix
from zkref.jute import (ACL, CheckVersionTxn, CloseSessionTxn, CreateContainerTxn, CreateSessionTxn, CreateTTLTxn,
                        CreateTxn, DeleteTxn, ErrorTxn, FileHeader, Id, InputArchive, MultiTxn, OutputArchive,
                        SetACLTxn, SetDataTxn, Stat, StatPersisted, Txn, TxnDigest, TxnHeader)
from zkref.log import configure_logging

SESSION = 0x1000000ABC
OPEN = open_acl_unsafe


# --- helpers -----------------------------------------------------------------------------------------------

class Tx:
    "Applies txns to a tree with increasing zxids, as a leader would hand them out."
    def __init__(self, tree: DataTree | None = None, zxid: int = 0, session: int = SESSION):
        self.tree, self.zxid, self.session, self.cxid = tree or DataTree(), zxid, session, 0

    def __call__(self, op: int, record, session: int | None = None, digest: TxnDigest | None = None):
        self.zxid += 1
        self.cxid += 1
        header = TxnHeader(client_id=self.session if session is None else session, cxid=self.cxid,
                           zxid=self.zxid, time=1_000_000 + self.zxid, type=op)
        return self.tree.process_txn(header, record, digest)

    def create(self, path, data=b"", ephemeral=False, acl=None, parent_cversion=-1, op=OpCode.create, session=None):
        return self(op, CreateTxn(path=path, data=data, acl=acl if acl is not None else OPEN(),
                                  ephemeral=ephemeral, parent_cversion=parent_cversion), session)


class Recorder:
    "A watcher (a fake connection) that records the events it is given."
    def __init__(self, session_id: int = 0x42):
        self.session_id, self.events = session_id, []

    def process(self, event: WatchedEvent):
        self.events.append((event.type, event.path))


def capture_log():
    buf = io.StringIO()
    return buf, configure_logging("DEBUG", stream=buf)


# --- PathUtils.validatePath ----------------------------------------------------------------------------------

@pytest.mark.parametrize("path, sequential, message", [
    (None, False, "Path cannot be null"),
    (None, True, "Path must start with / character"),
    ("", False, "Path length must be > 0"),
    ("a/b", False, "Path must start with / character"),
    ("/a/", False, "Path must not end with / character"),
    ("/a//b", False, 'Invalid path string "/a//b" caused by empty node name specified @3'),
    ("/a/./b", False, 'Invalid path string "/a/./b" caused by relative paths not allowed @3'),
    ("/a/../b", False, 'Invalid path string "/a/../b" caused by relative paths not allowed @4'),
    ("/..", False, 'Invalid path string "/.." caused by relative paths not allowed @2'),
    ("/a\x00b", False, 'Invalid path string "/a\x00b" caused by null character not allowed @2'),
    ("/a\x1fb", False, 'Invalid path string "/a\x1fb" caused by invalid character @2'),
    ("/a\x85", False, 'Invalid path string "/a\x85" caused by invalid character @2'),
    ("/a\ue000", False, 'Invalid path string "/a\ue000" caused by invalid character @2'),
    ("/x\U0001F600", False, 'Invalid path string "/x\U0001F600" caused by invalid character @2'),
    ("/a/", True, None),
])
def test_validate_path_rejects_with_javas_messages(path, sequential, message):
    """validatePath rejects null, empty, relative, double-slash, trailing-slash paths and forbidden characters
    (counted in UTF-16 code units) with Java's IllegalArgumentException text; a sequential path is checked with
    "1" appended.

    Reference: Java PathUtils.validatePath(String, boolean)
    """
    if message is None:   # "/a/" + "1" = "/a/1" is legal: sequential creates may end in "/"
        validate_path(path, sequential)
        return
    with pytest.raises(IllegalArgumentError) as e:
        validate_path(path, sequential)
    assert str(e.value) == message
    assert isinstance(e.value, ValueError)


@pytest.mark.parametrize("path", ["/", "/a", "/a/b..c", "/a/.b", "/..a", "/zookeeper/quota", "/é/ü"])
def test_validate_path_accepts_legal_paths(path):
    """Dots are fine inside names, and non-ASCII letters are fine; only "." and ".." components are relative.

    Reference: Java PathUtils.validatePath(String)
    """
    validate_path(path)


# --- EphemeralType, DataNode.copyStat, sequential suffix ------------------------------------------------------

def test_ephemeral_type_encodings():
    """Containers are Long.MIN_VALUE; TTL owners are 0xFF00.. | ttl (ttl in (0, 2^40)) and only decode as TTL when
    extended types are enabled; a nonzero other owner is a session.

    Reference: Java EphemeralType.get, EphemeralType.TTL.toEphemeralOwner
    """
    assert CONTAINER_EPHEMERAL_OWNER == -(1 << 63)
    owner = EphemeralType.TTL.to_ephemeral_owner(1000)
    assert owner & 0xFFFFFFFFFFFFFFFF == 0xFF000000000003E8
    assert EphemeralType.get(owner, extended_types_enabled=True) is EphemeralType.TTL
    assert EphemeralType.get(owner, extended_types_enabled=False) is EphemeralType.NORMAL
    assert EphemeralType.get(CONTAINER_EPHEMERAL_OWNER) is EphemeralType.CONTAINER
    assert EphemeralType.get(0) is EphemeralType.VOID and EphemeralType.get(SESSION) is EphemeralType.NORMAL
    for bad in (0, -1, 1 << 40):
        with pytest.raises(IllegalArgumentError, match="ttl must be positive and cannot be larger than: 1099511627775"):
            EphemeralType.TTL.to_ephemeral_owner(bad)
    with pytest.raises(IllegalArgumentError, match=r"Invalid ephemeralOwner. \[ff01000000000001\]"):
        EphemeralType.get(0xFF01000000000001, extended_types_enabled=True)


def test_copy_stat_cversion_counts_deletes_and_hides_container_and_ttl_owner():
    """The client's cversion is 2 * persisted cversion - numChildren; ephemeralOwner reads 0 for container and TTL
    nodes.

    Reference: Java DataNode.copyStat, DataNode.getClientEphemeralOwner
    """
    node = DataNode(b"abc", -1, create_stat(7, 99, CONTAINER_EPHEMERAL_OWNER))
    node.stat.cversion = 4
    node.add_child("a")
    s = node.copy_stat()
    assert (s.cversion, s.num_children, s.data_length, s.ephemeral_owner) == (7, 1, 3, 0)
    ttl = DataNode(None, -1, create_stat(1, 1, EphemeralType.TTL.to_ephemeral_owner(5)))
    assert ttl.copy_stat(extended_types_enabled=True).ephemeral_owner == 0
    assert ttl.copy_stat(extended_types_enabled=True).data_length == 0
    eph = DataNode(b"", -1, create_stat(1, 1, SESSION))
    assert eph.copy_stat().ephemeral_owner == SESSION


def test_sequential_suffix_is_parent_cversion_zero_padded_to_ten():
    """A sequential node's suffix is String.format("%010d", parent's persisted cversion).

    Reference: Java PrepRequestProcessor.pRequest2TxnCreate
    """
    assert sequential_suffix(0) == "0000000000"
    assert sequential_suffix(42) == "0000000042"
    assert sequential_suffix(2**31 - 1) == "2147483647"
    assert sequential_suffix(-5) == "-000000005"


# --- the initial tree ----------------------------------------------------------------------------------------

def test_new_tree_has_root_zookeeper_quota_and_read_only_config():
    """A new DataTree has "", "/", /zookeeper, /zookeeper/quota and /zookeeper/config (READ_ACL_UNSAFE, aversion
    -1, ACL index 1), so the znode count is 5 and the approximate data size 44.

    Reference: Java DataTree() constructor, DataTree.addConfigNode, DataTree.getNodeCount
    """
    t = DataTree()
    assert t.node_count() == 5 and t.approximate_data_size() == 44 == t.cached_approximate_data_size()
    assert t.get_children("/")[0] == ["zookeeper"]
    assert sorted(t.get_children("/zookeeper")[0]) == ["config", "quota"]
    acl, stat = t.get_acl(CONFIG_NODE)
    assert acl == read_acl_unsafe() and stat.aversion == -1 and t.get_node(CONFIG_NODE).acl == 1
    assert t.get_acl("/")[0] == open_acl_unsafe() and t.get_node("/").acl == -1
    assert t.get_node("") is t.get_node("/")
    assert all(t.is_special_path(p) for p in ("/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"))
    assert t.get_all_children_number("/") == 3 and t.get_all_children_number("/zookeeper") == 2


# --- node operations -----------------------------------------------------------------------------------------

def test_create_sets_stat_and_parent_cversion_pzxid():
    """A create sets czxid=mzxid=pzxid=zxid, ctime=mtime=time and versions 0; the parent's cversion becomes the
    txn's parentCVersion (-1: current+1) and its pzxid the zxid.

    Reference: Java DataTree.createNode, DataTree.createStat
    """
    tx = Tx()
    r = tx.create("/a", b"data", op=OpCode.create2)
    assert (r.err, r.path, r.type, r.zxid, r.client_id, r.cxid) == (0, "/a", OpCode.create2, 1, SESSION, 1)
    assert r.stat == Stat(czxid=1, mzxid=1, ctime=1_000_001, mtime=1_000_001, version=0, cversion=0, aversion=0,
                          ephemeral_owner=0, data_length=4, num_children=0, pzxid=1)
    root = tx.tree.stat_node("/")   # persisted cversion 1, two children (zookeeper, a): client sees 2*1-2
    assert (tx.tree.get_node("/").stat.cversion, root.cversion, root.pzxid, root.num_children) == (1, 0, 1, 2)
    tx.create("/a/b", parent_cversion=5)
    a = tx.tree.stat_node("/a")
    assert (tx.tree.get_node("/a").stat.cversion, a.cversion, a.pzxid) == (5, 9, 2)
    assert tx.create("/c").stat is None   # only create2/TTL/container return a stat


def test_create_errors_nonode_and_nodeexists():
    """Creating under a missing parent fails with NoNode; creating an existing path fails with NodeExists and, for
    a plain create txn, still raises the parent's cversion/pzxid (fuzzy snapshot replay).

    Reference: Java DataTree.createNode, DataTree.processTxn (NODEEXISTS adjustment), setCversionPzxid
    """
    tx = Tx()
    assert tx.create("/x/y").err == Code.NONODE
    tx.create("/a")
    before = tx.tree.get_node("/").stat.cversion
    r = tx.create("/a", parent_cversion=before + 3)
    assert r.err == Code.NODEEXISTS
    assert tx.tree.get_node("/").stat.cversion == before + 3 and tx.tree.get_node("/").stat.pzxid == tx.zxid
    with pytest.raises(NoNodeError):
        tx.tree.create_node("/q/r", b"", None, 0, -1, 9, 9)
    with pytest.raises(NodeExistsError, match="KeeperErrorCode = NodeExists"):
        tx.tree.create_node("/a", b"", None, 0, -1, 9, 9)


def test_delete_raises_pzxid_keeps_persisted_cversion():
    """A delete removes the child and raises the parent's pzxid (never lowers it); the persisted cversion is not
    changed, so the client cversion grows by one; deleting a missing node fails with NoNode but still moves pzxid.

    Reference: Java DataTree.deleteNode
    """
    tx = Tx()
    tx.create("/p"); tx.create("/p/a"); tx.create("/p/b")
    assert tx(OpCode.delete, DeleteTxn(path="/p/a")).err == 0
    s = tx.tree.stat_node("/p")
    assert (tx.tree.get_node("/p").stat.cversion, s.cversion, s.num_children, s.pzxid) == (2, 3, 1, 4)
    r = tx(OpCode.delete, DeleteTxn(path="/p/zz"))
    assert r.err == Code.NONODE and tx.tree.stat_node("/p").pzxid == 5
    tx.tree.delete_node("/p/b", 2)   # an older zxid does not lower pzxid
    assert tx.tree.stat_node("/p").pzxid == 5
    assert tx(OpCode.delete, DeleteTxn(path="/nope/x")).err == Code.NONODE


def test_set_data_and_set_acl_store_txn_versions():
    """setData stores data, mtime, mzxid and the txn's version; setACL stores the txn's aversion and the new ACL.

    Reference: Java DataTree.setData, DataTree.setACL
    """
    tx = Tx()
    tx.create("/a", b"1")
    r = tx(OpCode.setData, SetDataTxn(path="/a", data=b"22", version=7))
    assert (r.stat.version, r.stat.mzxid, r.stat.mtime, r.stat.data_length, r.stat.czxid) == (7, 2, 1_000_002, 2, 1)
    assert tx.tree.get_data("/a")[0] == b"22"
    digest_acl = [ACL(perms=Perms.ALL, id=Id(scheme="digest", id="u:x"))]
    r = tx(OpCode.setACL, SetACLTxn(path="/a", acl=digest_acl, version=3))
    assert r.stat.aversion == 3 and tx.tree.get_acl("/a")[0] == digest_acl
    assert tx(OpCode.setData, SetDataTxn(path="/b", data=b"", version=1)).err == Code.NONODE
    assert tx(OpCode.setACL, SetACLTxn(path="/b", acl=OPEN(), version=1)).err == Code.NONODE
    r = tx(OpCode.reconfig, SetDataTxn(path=CONFIG_NODE, data=b"server.1=...", version=1))
    assert r.err == 0 and tx.tree.get_data(CONFIG_NODE)[0] == b"server.1=..."


def test_reads_and_counts():
    """getData/getChildren/exists return copies of the stat; getAllChildrenNumber counts all descendants; the
    node count and approximate data size follow creates, deletes and setData.

    Reference: Java DataTree.getData, getChildren, statNode, getAllChildrenNumber, approximateDataSize
    """
    tx = Tx()
    tx.create("/a", b"xyz"); tx.create("/a/b", b"12"); tx.create("/a/b/c")
    assert tx.tree.get_all_children_number("/a") == 2 and tx.tree.get_all_children_number("/a/b/c") == 0
    assert tx.tree.node_count() == 8
    assert tx.tree.approximate_data_size() == 44 + 2 + 3 + 4 + 2 + 6 == tx.tree.cached_approximate_data_size()
    tx(OpCode.setData, SetDataTxn(path="/a", data=b"", version=1))
    assert tx.tree.approximate_data_size() == tx.tree.cached_approximate_data_size() == 44 + 2 + 4 + 2 + 6
    with pytest.raises(NoNodeError):
        tx.tree.get_children("/zz")
    with pytest.raises(NoNodeError):
        tx.tree.get_data("/zz")


# --- process_txn: every txn type -----------------------------------------------------------------------------

def test_process_txn_container_and_ttl_nodes():
    """createContainer stores owner Long.MIN_VALUE and lists the path in the containers; createTTL stores
    0xFF00..|ttl and lists it in the TTLs; deleteContainer deletes like delete; both return a Stat with
    ephemeralOwner 0.

    Reference: Java DataTree.processTxn (createContainer, createTTL, deleteContainer), DataTree.getContainers/getTtls
    """
    tx = Tx(DataTree(extended_types_enabled=True))
    r = tx(OpCode.createContainer, CreateContainerTxn(path="/c", data=b"", acl=OPEN(), parent_cversion=-1))
    assert r.err == 0 and r.stat.ephemeral_owner == 0 and tx.tree.get_containers() == {"/c"}
    assert tx.tree.get_node("/c").stat.ephemeral_owner == CONTAINER_EPHEMERAL_OWNER
    r = tx(OpCode.createTTL, CreateTTLTxn(path="/t", data=b"", acl=OPEN(), parent_cversion=-1, ttl=500))
    assert r.err == 0 and r.stat.ephemeral_owner == 0 and tx.tree.get_ttls() == {"/t"}
    assert tx.tree.get_ephemerals() == {}
    assert tx(OpCode.deleteContainer, DeleteTxn(path="/c")).err == 0 and tx.tree.get_containers() == set()
    assert tx(OpCode.delete, DeleteTxn(path="/t")).err == 0 and tx.tree.get_ttls() == set()
    plain = Tx(DataTree(extended_types_enabled=False))   # without extended types a TTL owner is a session id
    plain(OpCode.createTTL, CreateTTLTxn(path="/t", data=b"", acl=OPEN(), parent_cversion=-1, ttl=500))
    assert list(plain.tree.get_ephemerals()) == [EphemeralType.TTL.to_ephemeral_owner(500)]


def test_process_txn_session_txns_and_ephemerals():
    """createSession changes nothing in the tree; an ephemeral create is listed under its session; closeSession
    deletes the paths its txn names, then any other ephemerals of the session with a warning; a closeSession
    without a record deletes them all; NoNode while deleting is only logged.

    Reference: Java DataTree.processTxn (createSession, closeSession), DataTree.killSession, deleteNodes
    """
    tx = Tx()
    digest = tx.tree.get_tree_digest()
    r = tx(OpCode.createSession, CreateSessionTxn(time_out=30000))
    assert r.err == 0 and r.path is None and tx.tree.get_tree_digest() == digest and tx.tree.last_processed_zxid == 1
    tx.create("/e1", ephemeral=True); tx.create("/e2", ephemeral=True); tx.create("/p")
    assert tx.tree.get_ephemerals(SESSION) == {"/e1", "/e2"} and tx.tree.get_ephemerals_count() == 2
    assert tx.tree.get_sessions() == [SESSION]
    assert tx.tree.dump_ephemerals() in ("Sessions with Ephemerals (1):\n0x1000000abc:\n\t/e1\n\t/e2\n",
                                         "Sessions with Ephemerals (1):\n0x1000000abc:\n\t/e2\n\t/e1\n")
    buf, h = capture_log()
    try:
        r = tx(OpCode.closeSession, CloseSessionTxn(paths2_delete=["/e1", "/gone"]))
    finally:
        logging.getLogger().removeHandler(h)
    assert r.err == 0 and tx.tree.get_node("/e1") is None and tx.tree.get_node("/e2") is None
    assert tx.tree.get_ephemerals(SESSION) == set() and tx.tree.get_ephemerals() == {}
    log = buf.getvalue()
    assert "Ignoring NoNodeException for path /gone while removing ephemeral for dead session 0x1000000abc" in log
    assert "Unexpected extra paths under session [/e2] which are not in txn 0x" in log
    tx.create("/e3", ephemeral=True, session=7)
    assert tx(OpCode.closeSession, None, session=7).err == 0 and tx.tree.get_node("/e3") is None
    tx.create("/e4", ephemeral=True, session=8)
    tx.tree.kill_session(8, tx.zxid)          # Java's killSession(session, zxid): the tree's own list
    assert tx.tree.get_node("/e4") is None and tx.tree.get_ephemerals() == {}


def test_process_txn_error_and_check():
    """An error txn reports its err and changes nothing; a check txn only reports its path.

    Reference: Java DataTree.processTxn (error, check)
    """
    tx = Tx()
    r = tx(OpCode.error, ErrorTxn(err=Code.BADVERSION))
    assert (r.err, r.path, r.zxid) == (-103, None, 1) and tx.tree.last_processed_zxid == 1
    r = tx(OpCode.check, CheckVersionTxn(path="/x", version=3))
    assert (r.err, r.path) == (0, "/x")


def _sub(op, record):
    return Txn(type=op, data=record.to_bytes())


def test_process_txn_multi_success_applies_all_with_one_zxid():
    """A successful multi applies each sub-txn in order with the multi's zxid and reports one result each;
    last_processed_zxid moves once, after the whole multi.

    Reference: Java DataTree.processTxn (multi)
    """
    tx = Tx()
    tx.create("/a")
    r = tx(OpCode.multi, MultiTxn(txns=[
        _sub(OpCode.create, CreateTxn(path="/b", data=b"1", acl=OPEN(), parent_cversion=-1)),
        _sub(OpCode.create2, CreateTxn(path="/b/c", data=b"", acl=OPEN(), parent_cversion=-1)),
        _sub(OpCode.setData, SetDataTxn(path="/a", data=b"x", version=1)),
        _sub(OpCode.check, CheckVersionTxn(path="/a", version=1)),
        _sub(OpCode.delete, DeleteTxn(path="/b/c"))]))
    assert r.err == 0 and [s.type for s in r.multi_result] == [1, 15, 5, 13, 2]
    assert all(s.zxid == 2 and s.err == 0 for s in r.multi_result)
    assert r.multi_result[1].stat.czxid == 2 and r.multi_result[2].stat.version == 1
    assert tx.tree.get_node("/b").stat.czxid == 2 and tx.tree.get_node("/b/c") is None
    assert tx.tree.last_processed_zxid == 2


def test_process_txn_failed_multi_marks_errors_as_java():
    """In a multi containing an error sub-txn, nothing is applied: ops before it become ErrorTxn(0), ops after it
    ErrorTxn(RUNTIMEINCONSISTENCY), the failing op keeps its code, and the multi's err is the first nonzero one.

    Reference: Java DataTree.processTxn (multi: failed / post_failed), PrepRequestProcessor
    """
    tx = Tx()
    digest = tx.tree.get_tree_digest()
    r = tx(OpCode.multi, MultiTxn(txns=[
        _sub(OpCode.create, CreateTxn(path="/b", data=b"", acl=OPEN(), parent_cversion=-1)),
        _sub(OpCode.error, ErrorTxn(err=Code.NONODE)),
        _sub(OpCode.create, CreateTxn(path="/c", data=b"", acl=OPEN(), parent_cversion=-1))]))
    assert [(s.type, s.err) for s in r.multi_result] == [(-1, 0), (-1, -101), (-1, -2)]
    assert r.err == -101 and tx.tree.get_node("/b") is None and tx.tree.get_tree_digest() == digest


def test_process_txn_multi_with_unknown_sub_op_stops_quietly():
    """A multi with a sub-txn type Java cannot decode stops at that sub-txn (IOException "Invalid type of op",
    logged at debug) and keeps the results so far; a truncated sub-txn record does the same.

    Reference: Java DataTree.processTxn (multi default branch, catch IOException)
    """
    tx = Tx()
    r = tx(OpCode.multi, MultiTxn(txns=[
        _sub(OpCode.create, CreateTxn(path="/b", data=b"", acl=OPEN(), parent_cversion=-1)),
        Txn(type=OpCode.getData, data=b"")]))
    assert r.err == 0 and len(r.multi_result) == 1 and tx.tree.get_node("/b") is not None
    r = tx(OpCode.multi, MultiTxn(txns=[Txn(type=OpCode.delete, data=b"\x00\x00")]))
    assert r.err == 0 and r.multi_result == []


def test_last_processed_zxid_never_goes_back_and_result_equality():
    """last_processed_zxid only grows; ProcessTxnResults are equal when client id and cxid are, with Java's
    hashCode.

    Reference: Java DataTree.processTxn (lastProcessedZxid), ProcessTxnResult.equals/hashCode
    """
    t = DataTree()
    t.process_txn(TxnHeader(zxid=10, type=OpCode.check), CheckVersionTxn(path="/"))
    t.process_txn(TxnHeader(zxid=5, type=OpCode.check), CheckVersionTxn(path="/"))
    assert t.last_processed_zxid == 10
    a, b = ProcessTxnResult(client_id=5, cxid=3, zxid=1), ProcessTxnResult(client_id=5, cxid=3, zxid=2, err=-1)
    assert a == b and hash(a) == hash(b) == (5 ^ 3) % (2**31 - 1)
    assert hash(ProcessTxnResult(client_id=-7, cxid=0)) == -7


# --- ACL cache -----------------------------------------------------------------------------------------------

def test_acl_cache_reference_counts_and_serialization():
    """Equal ACL lists share an index; null is -1 (OPEN_ACL_UNSAFE, not stored); an index disappears when its
    last user goes; the cache serializes as int size + (long, vector<ACL>) and reads back with zero counts that
    addUsage rebuilds and purgeUnused prunes.

    Reference: Java ReferenceCountedACLCache (convertAcls, convertLong, addUsage, removeUsage, purgeUnused,
    serialize, deserialize)
    """
    c = ReferenceCountedACLCache()
    r1, r2 = c.convert_acls(read_acl_unsafe()), c.convert_acls(read_acl_unsafe())
    o = c.convert_acls(OPEN())
    assert (r1, r2, o, c.convert_acls(None)) == (1, 1, 2, -1)
    assert c.convert_long(-1) == OPEN() and c.convert_long(1) == read_acl_unsafe() and c.convert_long(None) is None
    assert c.reference_counter == {1: 2, 2: 1} and c.size() == 2
    c.remove_usage(2)
    assert c.size() == 1 and 2 not in c.long_key_map
    with pytest.raises(RuntimeError, match="Failed to fetch acls for 2"):
        c.convert_long(2)
    assert c.convert_acls(OPEN()) == 3          # indexes are never reused
    oa = OutputArchive(); c.serialize(oa)
    data = oa.getvalue()
    assert data[:4] == struct.pack(">i", 2) and data[4:12] == struct.pack(">q", 1)
    d = ReferenceCountedACLCache(); d.deserialize(InputArchive(data))
    assert d.long_key_map == c.long_key_map and d.reference_counter == {1: 0, 3: 0} and d.acl_index == 3
    d.add_usage(3); d.add_usage(99); d.purge_unused()
    assert list(d.long_key_map) == [3] and d.convert_acls(OPEN()) == 3


# --- watches -------------------------------------------------------------------------------------------------

def test_standard_watches_fire_once():
    """getData/exists watches fire once on NodeCreated/NodeDataChanged/NodeDeleted of the path; getChildren
    watches fire once on NodeChildrenChanged or the node's own NodeDeleted; a watcher with both a data and a
    child watch on a deleted node hears NodeDeleted once; exists on a missing node still sets the watch.

    Reference: Java DataTree.createNode/deleteNode/setData (triggerWatch), DataTree.statNode, WatchManager.triggerWatch
    """
    tx, w = Tx(), Recorder()
    with pytest.raises(NoNodeError):
        tx.tree.stat_node("/a", w)
    tx.create("/a")
    assert w.events == [(EventType.NodeCreated, "/a")]
    tx.tree.get_data("/a", w); tx.tree.get_children("/a", w)
    tx(OpCode.setData, SetDataTxn(path="/a", data=b"1", version=1))
    tx(OpCode.setData, SetDataTxn(path="/a", data=b"2", version=2))
    tx.create("/a/b"); tx.create("/a/c")
    assert w.events[1:] == [(EventType.NodeDataChanged, "/a"), (EventType.NodeChildrenChanged, "/a")]
    tx.tree.get_data("/a/b", w); tx.tree.get_children("/a/b", w); tx.tree.get_children("/a", w)
    tx(OpCode.delete, DeleteTxn(path="/a/b"))
    assert w.events[3:] == [(EventType.NodeDeleted, "/a/b"), (EventType.NodeChildrenChanged, "/a")]
    assert tx.tree.watch_count() == 0


def test_persistent_and_recursive_watches():
    """A persistent watch (addWatch mode 0) fires for data and child changes of its path and stays; a recursive
    watch (mode 1) fires for every event at or below its path except NodeChildrenChanged, and stays; a watcher
    fires once per event even with several matching watches.

    Reference: Java WatchManager.triggerWatch, WatcherMode, DataTree.addWatch
    """
    tx, p, r = Tx(), Recorder(1), Recorder(2)
    tx.create("/a")
    tx.tree.add_watch("/a", p, 0)
    tx.tree.add_watch("/", r, 1)
    tx.tree.add_watch("/a", r, 1)
    tx.create("/a/b")
    tx(OpCode.setData, SetDataTxn(path="/a", data=b"1", version=1))
    tx(OpCode.setData, SetDataTxn(path="/a/b", data=b"1", version=1))
    tx(OpCode.delete, DeleteTxn(path="/a/b"))
    assert p.events == [(EventType.NodeChildrenChanged, "/a"), (EventType.NodeDataChanged, "/a"),
                        (EventType.NodeChildrenChanged, "/a")]
    assert r.events == [(EventType.NodeCreated, "/a/b"), (EventType.NodeDataChanged, "/a"),
                        (EventType.NodeDataChanged, "/a/b"), (EventType.NodeDeleted, "/a/b")]
    with pytest.raises(IllegalArgumentError, match="Unsupported mode: 2"):
        tx.tree.add_watch("/a", p, 2)


def test_remove_and_check_watches():
    """removeWatches removes the watcher's watch of the given type; checkWatches (containsWatcher) answers as
    Java 3.8 does: true when the path has any watcher, or when this watcher watches it recursively; closing a
    connection removes all its watches.

    Reference: Java DataTree.removeWatch, DataTree.containsWatcher, WatchManager.containsWatcher, DataTree.removeCnxn
    """
    t, a, b = DataTree(), Recorder(1), Recorder(2)
    t.get_data("/zookeeper", a); t.get_children("/zookeeper", a)
    assert t.contains_watcher("/zookeeper", WatcherType.Data, a)
    assert t.contains_watcher("/zookeeper", WatcherType.Data, b)         # Java 3.8: any watcher on the path
    assert not t.contains_watcher("/zookeeper/quota", WatcherType.Any, a)
    assert not t.remove_watch("/zookeeper", WatcherType.Data, b)
    assert t.remove_watch("/zookeeper", WatcherType.Data, a)
    assert not t.contains_watcher("/zookeeper", WatcherType.Data, a)
    assert t.contains_watcher("/zookeeper", WatcherType.Children, a)
    assert t.remove_watches("/zookeeper", WatcherType.Any, a) and t.watch_count() == 0
    t.add_watch("/x", b, 1)
    assert t.contains_watcher("/x", WatcherType.Data, b) and t.watch_count() == 2
    t.remove_cnxn(b)
    assert t.watch_count() == 0 and t.data_watches.recursive_qty == 0


def test_set_watches_after_reconnect():
    """setWatches fires at once: NodeDeleted for data/child watches on missing nodes, NodeDataChanged if mzxid >
    relativeZxid, NodeChildrenChanged if pzxid > relativeZxid, NodeCreated for exist watches on present nodes;
    otherwise it registers the watch; persistent ones are registered in both managers.

    Reference: Java DataTree.setWatches
    """
    tx, w = Tx(), Recorder()
    tx.create("/old"); tx.create("/new"); tx.create("/kids"); tx.create("/kids/x")
    tx.tree.set_watches(1, data_watches=["/gone", "/old", "/new"], exist_watches=["/old", "/absent"],
                        child_watches=["/gone", "/old", "/kids"], persistent_watches=["/p"],
                        persistent_recursive_watches=["/r"], watcher=w)
    assert w.events == [(EventType.NodeDeleted, "/gone"), (EventType.NodeDataChanged, "/new"),
                        (EventType.NodeCreated, "/old"), (EventType.NodeDeleted, "/gone"),
                        (EventType.NodeChildrenChanged, "/kids")]
    assert tx.tree.get_watches_by_path() == {"/old": {0x42}, "/absent": {0x42}, "/p": {0x42}, "/r": {0x42}}
    assert tx.tree.child_watches.get_watches() == {0x42: {"/old", "/p", "/r"}}


def test_watch_reports_for_wchs_wchc_wchp():
    """wchs prints "N connections watching M paths\\nTotal watches:K" over the data watches (a connection whose
    watches all fired still counts); wchc lists paths per session id, wchp session ids per path, the paths in
    the order of Java's hash tables (Java 3.8 printed /zookeeper/quota before /zookeeper for these watches).

    Reference: Java WatchManager.toString, WatchManager.dumpWatches, DataTree.dumpWatchesSummary, WatchCommand
    """
    t, a, b = DataTree(), Recorder(0x10), Recorder(0x20)
    t.get_data("/zookeeper", a); t.get_data("/zookeeper/quota", a); t.get_data("/zookeeper", b)
    t.get_children("/zookeeper", b)
    assert t.dump_watches_summary() == "2 connections watching 2 paths\nTotal watches:3"
    assert t.get_watches_summary() == {"num_connections": 2, "num_paths": 2, "num_total_watches": 3}
    assert t.dump_watches(True) == "/zookeeper/quota\n\t0x10\n/zookeeper\n\t0x10\n\t0x20\n"
    assert t.dump_watches(False) == "0x10\n\t/zookeeper/quota\n\t/zookeeper\n0x20\n\t/zookeeper\n"
    assert t.get_watches() == {0x10: {"/zookeeper", "/zookeeper/quota"}, 0x20: {"/zookeeper"}}
    t.set_data("/zookeeper/quota", b"", 1, 5, 5)
    assert t.dump_watches_summary() == "2 connections watching 1 paths\nTotal watches:2"


def test_stale_watchers_are_ignored_and_server_watchers_get_the_acl():
    """A closed connection (isStale) cannot add watches; a ServerWatcher is given the node's ACL with the event
    so it can filter what the client may read.

    Reference: Java WatchManager.addWatch (isDeadWatcher), WatchManager.triggerWatch (ServerWatcher)
    """
    class Stale(Recorder):
        def is_stale(self): return True

    class Cnxn(ServerWatcher):
        session_id = 9
        def __init__(self): self.got = []
        def process(self, event, acl=None): self.got.append((event.type, event.path, acl, event.zxid))

    t, c = DataTree(), Cnxn()
    t.get_data("/zookeeper", Stale())
    assert t.watch_count() == 0
    t.get_data(CONFIG_NODE, c)
    t.set_data(CONFIG_NODE, b"x", 1, 77, 0)
    assert c.got == [(EventType.NodeDataChanged, CONFIG_NODE, read_acl_unsafe(), 77)]
    assert WatchedEvent(EventType.NodeCreated, KeeperState.SyncConnected, "/a").get_wrapper().to_bytes() == \
        struct.pack(">ii", 1, 3) + struct.pack(">i", 2) + b"/a"


# --- quotas --------------------------------------------------------------------------------------------------

def _with_quota(tx: Tx, path: str, limits: bytes):
    tx.create(Quotas.quota_path(path))
    tx.create(Quotas.limit_path(path), limits)
    tx.create(Quotas.stat_path(path), b"count=0,bytes=0")


def test_quota_usage_tracked_in_stats_node():
    """Creating zookeeper_limits makes the path a quota root; creating zookeeper_stats recomputes the subtree's
    usage; creates, deletes and setData below the root update count and bytes; deleting the limits node removes
    the root.

    Reference: Java DataTree.createNode/deleteNode/setData (quota), updateQuotaStat, updateQuotaForPath, StatsTrack
    """
    tx = Tx()
    tx.create("/app", b"12345"); tx.create("/app/a", b"xy")
    _with_quota(tx, "/app", b"count=10,bytes=100")
    stats = lambda: tx.tree.get_data(Quotas.stat_path("/app"))[0]
    assert stats() == b"count=2,bytes=7" and tx.tree.get_max_prefix_with_quota("/app/a/b") == "/app"
    tx.create("/app/b", b"abc"); tx(OpCode.setData, SetDataTxn(path="/app/a", data=b"", version=1))
    tx(OpCode.delete, DeleteTxn(path="/app/b"))
    assert stats() == b"count=2,bytes=5"
    tx(OpCode.delete, DeleteTxn(path=Quotas.limit_path("/app")))
    assert tx.tree.get_max_prefix_with_quota("/app/a") is None


def test_check_quota_logs_soft_and_rejects_hard_limits():
    """With enforceQuota, going over a soft limit logs "Quota exceeded: <root> [current count=N, softCountLimit=M]"
    and over a hard limit raises QuotaExceeded; with enforceQuota off (the default) nothing is checked.

    Reference: Java ZooKeeperServer.checkQuota, RateLogger.rateLimitLog
    """
    tx = Tx(DataTree(enforce_quota=True))
    tx.create("/app")
    _with_quota(tx, "/app", b"count=1,bytes=-1=;byteHardLimit=4;countHardLimit=-1")
    buf, h = capture_log()
    try:
        tx.tree.check_quota("/app/x", None, b"", OpCode.create)
        with pytest.raises(QuotaExceededError, match="KeeperErrorCode = Quota has exceeded for /app"):
            tx.tree.check_quota("/app", b"", b"12345", OpCode.setData)
        tx.tree.check_quota("/other", None, b"x" * 100, OpCode.create)
    finally:
        logging.getLogger().removeHandler(h)
    assert "Message:Quota exceeded: /app [current count=2, softCountLimit=1] Value:null" in buf.getvalue()
    assert "Quota exceeded: /app [current bytes=5, hardByteLimit=4]" in buf.getvalue()
    off = Tx(DataTree())
    off.create("/app")
    _with_quota(off, "/app", b"count=-1,bytes=-1=;countHardLimit=0")
    off.tree.check_quota("/app/x", None, b"", OpCode.create)


def test_stats_track_and_path_trie():
    """StatsTrack parses count=,bytes= and ;key= pairs (missing = -1) and prints count and bytes first, then "="
    and the other keys sorted; PathTrie finds the deepest quota root above a path.

    Reference: Java StatsTrack, PathTrie.findMaxPrefix
    """
    s = StatsTrack("count=1,bytes=2=;countHardLimit=3;byteHardLimit=4")
    assert (s.count, s.bytes, s.count_hard_limit, s.byte_hard_limit) == (1, 2, 3, 4)
    assert str(s) == "count=1,bytes=2=;byteHardLimit=4;countHardLimit=3"
    assert str(StatsTrack()) == "count=-1,bytes=-1" and StatsTrack(b"count==3").count == -1
    with pytest.raises(IllegalArgumentError, match='For input string: "x"'):
        StatsTrack("count=x")
    p = PathTrie()
    p.add_path("/a"); p.add_path("/a/b/c")
    assert [p.find_max_prefix(x) for x in ("/a/b", "/a/b/c/d", "/b", "/")] == ["/a", "/a/b/c", "/", "/"]
    p.delete_path("/a")
    assert p.find_max_prefix("/a/b") == "/" and p.exists_node("/a/b")
    with pytest.raises(IllegalArgumentError, match="Invalid path: "):
        p.add_path("")


# --- digest --------------------------------------------------------------------------------------------------

def _crc(path: bytes, data: bytes, *stat) -> int:
    return zlib.crc32(path + data + struct.pack(">qqqqqiiiq", *stat))


def test_digest_is_wrapping_sum_of_node_crcs_excluding_zookeeper_subtree():
    """The tree digest is the 64-bit sum of CRC32(path, data, czxid, mzxid, pzxid, ctime, mtime, version, cversion,
    aversion, ephemeralOwner) over all nodes, the root hashed as "" and counted once, /zookeeper included and
    everything under /zookeeper/ excluded; with digests disabled it is 0.

    Reference: Java DigestCalculator.calculateDigest, NodeHashMapImpl, AdHash
    """
    t = DataTree()
    base = _crc(b"", b"", 0, 0, 0, 0, 0, 0, 0, 0, 0) + _crc(b"/zookeeper", b"", 0, 0, 0, 0, 0, 0, 0, 0, 0)
    assert t.get_tree_digest() == base
    t.set_data(CONFIG_NODE, b"abc", 1, 5, 5)
    assert t.get_tree_digest() == base
    t.create_node("/a", b"hi", None, SESSION, -1, 3, 4)
    expected = (_crc(b"", b"", 0, 0, 3, 0, 0, 0, 1, 0, 0) + _crc(b"/zookeeper", b"", 0, 0, 0, 0, 0, 0, 0, 0, 0)
                + _crc(b"/a", b"hi", 3, 3, 3, 4, 4, 0, 0, 0, SESSION))
    assert t.get_tree_digest() == expected
    assert DigestCalculator().calculate_digest("/zookeeper/x", b"", StatPersisted()) == 0
    assert DataTree(digest_enabled=False).get_tree_digest() == 0


def test_digest_log_and_compare_digest():
    """Each txn sets last_processed_zxid_digest; zxids divisible by 128 enter the digest log; a txn digest that
    differs from the tree counts a mismatch, tells digest watchers and logs "First digest mismatch on txn"; a
    different digest version is not compared.

    Reference: Java DataTree.logZxidDigest, compareDigest, reportDigestMismatch, getDigestLog
    """
    tx, seen = Tx(zxid=126), []
    tx.tree.add_digest_watcher(seen.append)
    tx.create("/a"); tx.create("/b")
    assert [d.zxid for d in tx.tree.get_digest_log()] == [128]
    assert tx.tree.last_processed_zxid_digest == ZxidDigest(128, 2, tx.tree.get_tree_digest())
    buf, h = capture_log()
    try:
        tx.create("/c")
        assert tx(OpCode.check, CheckVersionTxn(path="/"), digest=TxnDigest(version=2, tree_digest=tx.tree.get_tree_digest())).err == 0
        tx(OpCode.check, CheckVersionTxn(path="/"), digest=TxnDigest(version=2, tree_digest=1))
        tx(OpCode.check, CheckVersionTxn(path="/"), digest=TxnDigest(version=1, tree_digest=1))
    finally:
        logging.getLogger().removeHandler(h)
    assert tx.tree.digest_mismatches_count == 1 and seen == [tx.zxid - 1]
    assert "First digest mismatch on txn:" in buf.getvalue()


def test_zxid_digest_serialization_and_snapshot_digest_target():
    """The snapshot trailer is long zxid, int version, long digest (version < 2: a hex string); a loaded digest with
    zxid 0 or older than the snapshot's zxid is ignored, otherwise it is compared when the replay reaches it.

    Reference: Java DataTree.ZxidDigest, serializeZxidDigest, deserializeZxidDigest, compareSnapshotDigests
    """
    t = DataTree()
    oa = OutputArchive(); assert t.serialize_zxid_digest(oa)
    assert oa.getvalue() == struct.pack(">qiq", 0, 2, 0)
    old = OutputArchive(); old.write_long(5); old.write_int(1); old.write_ustring("ff")
    assert ZxidDigest.deserialize(InputArchive(old.getvalue())) == ZxidDigest(5, 1, 255)
    assert t.deserialize_zxid_digest(InputArchive(struct.pack(">qiq", 3, 2, 9)), 4)
    assert t.digest_from_loaded_snapshot is None
    assert not t.deserialize_zxid_digest(InputArchive(b""), 0)
    assert t.deserialize_zxid_digest(InputArchive(struct.pack(">qiq", 2, 2, 123)), 1)
    tx = Tx(t)
    tx.create("/a")
    assert t.digest_from_loaded_snapshot is not None and t.digest_mismatches_count == 0
    tx.create("/b")
    assert t.digest_from_loaded_snapshot is None and t.digest_mismatches_count == 1
    assert not DataTree(digest_enabled=False).serialize_zxid_digest(OutputArchive())


# --- snapshots -----------------------------------------------------------------------------------------------

def _snapshot_bytes(t: DataTree) -> bytes:
    oa = OutputArchive(); t.serialize(oa)
    return oa.getvalue()


def _content(t: DataTree) -> dict:
    return {p: (n.data, t.acl_cache.convert_long(n.acl), n.stat, sorted(n.get_children()))
            for p, n in t.nodes.items()}


names = st.text(alphabet="abcé-_0", min_size=1, max_size=4)
ops = st.lists(st.tuples(st.integers(0, 50), names, st.binary(max_size=6),
                         st.sampled_from(["plain", "eph", "eph2", "container", "ttl"]),
                         st.sampled_from(["open", "read", "digest", "null"]),
                         st.booleans()), max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_serialize_deserialize_round_trip(script):
    """A tree written as a snapshot's tree section and read back has the same nodes, data, ACLs, stats, children,
    digest, ephemerals, containers and TTLs, and the ACL cache keeps only the ACLs in use.

    Reference: Java DataTree.serialize / DataTree.deserialize, ReferenceCountedACLCache.serialize/deserialize
    """
    acls = {"open": OPEN(), "read": read_acl_unsafe(), "null": None,
            "digest": [ACL(perms=Perms.READ | Perms.WRITE, id=Id(scheme="digest", id="u:h"))]}
    tx = Tx(DataTree(extended_types_enabled=True))
    for parent_pick, name, data, kind, acl, delete in script:
        paths = [p for p in tx.tree.nodes if p not in ("", "/") and not p.startswith("/zookeeper")]
        leaves = sorted(p for p in paths if not tx.tree.get_node(p).get_children())  # the leader refuses NOTEMPTY
        if delete and leaves:
            tx(OpCode.delete, DeleteTxn(path=leaves[parent_pick % len(leaves)]))
            continue
        parent = ([""] + sorted(paths))[parent_pick % (len(paths) + 1)]
        path = parent + "/" + name
        if kind == "container":
            tx(OpCode.createContainer, CreateContainerTxn(path=path, data=data, acl=acls[acl] or OPEN(), parent_cversion=-1))
        elif kind == "ttl":
            tx(OpCode.createTTL, CreateTTLTxn(path=path, data=data, acl=acls[acl] or OPEN(), parent_cversion=-1, ttl=1 + parent_pick))
        else:
            tx(OpCode.create, CreateTxn(path=path, data=data, acl=acls[acl], ephemeral=kind != "plain",
                                        parent_cversion=-1), session={"plain": 1, "eph": 5, "eph2": 6}[kind])
    data = _snapshot_bytes(tx.tree)
    back = DataTree(extended_types_enabled=True)
    ia = InputArchive(data)
    back.deserialize(ia)
    assert ia.remaining() == 0
    assert _content(back) == _content(tx.tree)
    assert back.get_tree_digest() == tx.tree.get_tree_digest()
    assert back.get_ephemerals() == {k: v for k, v in tx.tree.get_ephemerals().items() if v}
    assert back.get_containers() == tx.tree.get_containers() and back.get_ttls() == tx.tree.get_ttls()
    in_use = {n.acl for n in tx.tree.nodes.values()} - {-1}
    assert set(back.acl_cache.long_key_map) == in_use
    again = DataTree(extended_types_enabled=True); again.deserialize(InputArchive(_snapshot_bytes(back)))
    assert _content(again) == _content(back)


def test_deserialize_rejects_orphans_and_rebuilds_quota():
    """A node whose parent was not read first fails with "Invalid Datatree, unable to find parent <p> of path
    <path>"; a truncated section fails with a decoding error; quota roots and usage are rebuilt from the
    zookeeper_limits nodes.

    Reference: Java DataTree.deserialize, DataTree.setupQuota
    """
    oa = OutputArchive()
    ReferenceCountedACLCache().serialize(oa)
    for path in ("", "/a/b"):
        oa.write_ustring(path); DataNode(b"", -1, StatPersisted()).serialize(oa)
    oa.write_ustring("/")
    with pytest.raises(OSError, match="^Invalid Datatree, unable to find parent /a of path /a/b$"):
        DataTree().deserialize(InputArchive(oa.getvalue()))
    tx = Tx()
    tx.create("/app", b"123")
    _with_quota(tx, "/app", b"count=5,bytes=50")
    tx.tree.get_node(Quotas.stat_path("/app")).data = b"count=0,bytes=0"   # stale usage in the snapshot
    data = _snapshot_bytes(tx.tree)
    back = DataTree()
    back.deserialize(InputArchive(data))
    assert back.get_data(Quotas.stat_path("/app"))[0] == b"count=1,bytes=3"
    assert back.get_max_prefix_with_quota("/app/x") == "/app"
    with pytest.raises(ValueError):   # JuteError is a ValueError
        DataTree().deserialize(InputArchive(data[:-3]))


def test_java_hash_set_order():
    """Children iterate in java.util.HashSet<String> order: by bucket of the spread String.hashCode in a table
    that starts at 8 and doubles past 3/4 load, insertion order within a bucket; a clone (getEphemerals) is
    re-sized for its elements and filled in the original's order.

    Reference: java.util.HashMap (hash, putVal, resize, clone); DataNode.addChild (new HashSet<>(8));
    DataTree.getEphemerals(long)
    """
    # The expected lists are what Java 17's jshell prints for `new HashSet<String>(8)` given the same adds and
    # removes (test_java_stats_children_and_data_match_replay checks the same against a live server).
    assert list(JavaHashSet(["zookeeper", "app"])) == ["app", "zookeeper"]
    many = JavaHashSet(f"n{i}" for i in range(20))
    assert list(many) == ["n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "n10", "n12", "n11", "n14",
                          "n13", "n16", "n15", "n18", "n17", "n19"]
    assert many.discard("n3") and many.discard("n10") and not many.discard("n3") and "n3" not in many
    many.add("n3"); many.add("zz")
    assert list(many) == ["zz", "n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "n12", "n11", "n14",
                          "n13", "n16", "n15", "n18", "n17", "n19"]
    jobs = JavaHashSet(f"job-{i:010d}" for i in range(14))
    assert [int(j[4:]) for j in jobs] == [9, 8, 3, 2, 13, 1, 12, 0, 11, 7, 6, 5, 4, 10]
    ephemerals = JavaHashSet(capacity=16)
    for p in ("/x/lock-0000000001", "/y", "/q/zz"):
        ephemerals.add(p)
    clone = ephemerals.copy()
    clone.add("/new1"); clone.add("/new2")
    assert list(clone) == ["/new2", "/new1", "/y", "/x/lock-0000000001", "/q/zz"]
    assert clone == {"/new2", "/new1", "/y", "/x/lock-0000000001", "/q/zz"}
    colliding = JavaHashSet(["Aa", "BB", "AaAa", "BBBB", "AaBB", "BBAa", "AaAaAa", "BBBBBB", "AaAaBB", "x", "é"])
    assert list(colliding) == ["Aa", "BB", "AaAaAa", "BBBBBB", "AaAaBB", "x", "é", "AaAa", "BBBB", "AaBB", "BBAa"]


class _JavaHashMapModel:
    "java.util.HashMap's table as Java keeps it: buckets of insertion-ordered chains, split in order on resize."
    def __init__(self):
        self.buckets = [[] for _ in range(8)]
        self.size = 0

    def _bucket(self, name: str) -> list:
        h = java_string_hash(name) & 0xFFFFFFFF
        return self.buckets[(h ^ (h >> 16)) & (len(self.buckets) - 1)]

    def _resize(self):
        old, self.buckets = self.buckets, [[] for _ in range(2 * len(self.buckets))]
        for chain in old:
            for name in chain:
                self._bucket(name).append(name)

    def add(self, name: str):
        chain = self._bucket(name)
        if name in chain:
            return
        crowded = len(chain) >= 8                  # putVal: binCount >= TREEIFY_THRESHOLD - 1
        chain.append(name)
        self.size += 1
        if crowded and len(self.buckets) < 64:    # treeifyBin: a small table resizes instead
            self._resize()
        if self.size > len(self.buckets) * 3 // 4:
            self._resize()

    def remove(self, name: str):
        chain = self._bucket(name)
        if name in chain:
            chain.remove(name)
            self.size -= 1

    def order(self) -> list[str]:
        return [name for chain in self.buckets for name in chain]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(st.tuples(st.sampled_from(["add", "add", "remove", "iterate"]),
                                st.one_of(st.integers(0, 300).map(lambda i: f"n{i}"),
                                          st.sampled_from(["Aa", "BB", "AaAa", "BBBB", "AaBB", "BBAa", "é"]))),
                      max_size=400))
def test_java_hash_set_kept_order_follows_javas_table(steps):
    """However adds, removes and iterations interleave, the children iterate as Java's HashMap table holds
    them: bucket by bucket, each bucket in insertion order, kept across resizes (doubling past 3/4 load, or
    when a bucket of a table under 64 gets a 9th entry); a removed and re-added name goes last in its bucket.
    The set keeps its order between changes, so this checks the kept order against a model of the table.

    Reference: java.util.HashMap.putVal, resize, treeifyBin, removeNode, HashIterator; DataNode.getChildren
    """
    js, model = JavaHashSet(), _JavaHashMapModel()
    for op, name in steps:
        if op == "add":
            js.add(name); model.add(name)
        elif op == "remove":
            js.discard(name); model.remove(name)
        else:
            assert list(js) == model.order()
    assert list(js) == model.order()
    node = DataNode()
    for name in model.order():
        node.add_child(name)
    before = node.get_children()
    before.append("not-a-child")                  # a caller's list is its own: the node is unchanged
    assert "not-a-child" not in node.get_children()


def test_java_hash_set_order_of_a_big_parent_after_changes():
    """A parent with 9000 children (a size at which the set stops keeping its order across changes and sorts
    again) still lists them as Java's table holds them, before and after an add and a remove.

    Reference: java.util.HashMap.putVal, resize, removeNode, HashIterator; DataNode.getChildren
    """
    big, model = JavaHashSet(), _JavaHashMapModel()
    for i in range(9000):
        big.add(f"n{i}"); model.add(f"n{i}")
    assert list(big) == model.order()
    big.add("extra"); model.add("extra"); big.discard("n17"); model.remove("n17")
    assert list(big) == model.order()


# --- against the real Java server ----------------------------------------------------------------------------

OP_RECORDS = {-10: CreateSessionTxn, -11: CloseSessionTxn, 1: CreateTxn, 15: CreateTxn, 21: CreateTTLTxn,
              19: CreateContainerTxn, 2: DeleteTxn, 20: DeleteTxn, 5: SetDataTxn, 16: SetDataTxn, 7: SetACLTxn,
              -1: ErrorTxn, 14: MultiTxn}


def read_txn_log(path: pathlib.Path) -> list[tuple[TxnHeader, object, TxnDigest | None]]:
    "The txns of a Java log.<zxid> file: header ZKLG, then (crc, buffer, 'B') records until a zero length."
    ia = InputArchive(path.read_bytes())
    assert FileHeader.deserialize(ia).magic == 0x5A4B4C47
    out = []
    while ia.remaining() >= 12:
        crc = ia.read_long()
        payload = ia.read_buffer()
        if not payload:
            break
        assert ia.read_byte() == 0x42 and zlib.adler32(payload) == crc & 0xFFFFFFFF
        p = InputArchive(payload)
        header = TxnHeader.deserialize(p)
        cls = OP_RECORDS.get(header.type)
        txn = cls.deserialize(p) if cls is not None and p.remaining() else None
        out.append((header, txn, TxnDigest.deserialize(p) if p.remaining() else None))
    return out


def _kazoo_call(client, op_type: int, record) -> None:
    "Send a request kazoo has no API for (createContainer, createTTL, addWatch) and wait for its reply."
    class Raw(namedtuple("Raw", "body")):
        type = op_type
        def serialize(self): return bytearray(self.body)
        @classmethod
        def deserialize(cls, buffer, offset): return None
    done = client.handler.async_result()
    client._call(Raw(record.to_bytes()), done)
    done.get(timeout=10)


def _register_watches_like_w(tree: DataTree, w) -> None:
    "In our tree, the watches session W sets on the Java server before the workload (see java_run)."
    with pytest.raises(NoNodeError):
        tree.stat_node("/app", w)          # exists("/app", watch)
    tree.get_children("/", w)              # get_children("/", watch)
    tree.add_watch("/app", w, 0)           # addWatch /app PERSISTENT
    tree.add_watch("/box", w, 1)           # addWatch /box PERSISTENT_RECURSIVE
    with pytest.raises(NoNodeError):
        tree.stat_node("/ttl", w)          # exists("/ttl", watch)


@dataclasses.dataclass
class JavaRun:
    watch_events: list   # (type, path) of every notification the server sent to session W, in order
    watcher_session: int
    reports: dict        # the wchs, wchc and wchp answers after the workload
    stats: dict          # path → (kazoo ZnodeStat, children in server order, data), read at recorded_zxid
    recorded_zxid: int
    txns: list           # every (header, txn, digest) of the logs
    snapshot: bytes      # the snapshot Java wrote when restarted on the same data dir
    snapshot_zxid: int


@pytest.fixture(scope="module")
def java_run(tmp_path_factory):
    "Run a scripted workload on a real Java ZooKeeper 3.8, then restart it so it writes a snapshot."
    if not java_available():
        pytest.skip("Java ZooKeeper (Debian package zookeeper) is not installed")
    from kazoo.client import KazooClient
    from kazoo.exceptions import NodeExistsError as KNodeExists
    from kazoo.security import READ_ACL_UNSAFE, make_digest_acl
    from zkref.jute import AddWatchRequest, CreateRequest, CreateTTLRequest
    work = tmp_path_factory.mktemp("java_datatree")
    config = {"extendedTypesEnabled": "true", "4lw.commands.whitelist": "*"}
    server = JavaZooKeeper(work, dict(config)).start()
    clients, notifications = [], []
    from kazoo.protocol.connection import ConnectionHandler
    from kazoo.protocol.serialization import Watch
    original_read_watch_event = ConnectionHandler._read_watch_event

    def recording_read_watch_event(handler, buffer, offset):   # what the server sent, before kazoo fans it out
        event = Watch.deserialize(buffer, offset)[0]
        notifications.append((handler.client, event.type, event.path))
        return original_read_watch_event(handler, buffer, offset)
    ConnectionHandler._read_watch_event = recording_read_watch_event
    try:
        w = KazooClient(hosts=f"127.0.0.1:{server.client_port}", timeout=10); w.start(); clients.append(w)
        ignore = lambda event: None
        assert w.exists("/app", watch=ignore) is None
        w.get_children("/", watch=ignore)
        _kazoo_call(w, 106, AddWatchRequest(path="/app", mode=0))
        _kazoo_call(w, 106, AddWatchRequest(path="/box", mode=1))
        assert w.exists("/ttl", watch=ignore) is None
        a = KazooClient(hosts=f"127.0.0.1:{server.client_port}", timeout=10); a.start(); clients.append(a)
        b = KazooClient(hosts=f"127.0.0.1:{server.client_port}", timeout=10); b.start(); clients.append(b)
        a.create("/app", b"v0")
        for i in range(12):
            a.create("/app/job-", b"x" * i, sequence=True, include_data=i % 2 == 0)
        a.create("/app/lock-", b"", ephemeral=True, sequence=True)
        b.create("/app/b-eph", b"bee", ephemeral=True)
        b.create("/app/b-eph2", b"", ephemeral=True)
        for i in (3, 5, 7):
            a.delete(f"/app/job-{i:010d}")
        a.create("/app/job-", b"again", sequence=True)
        a.set("/app", b"v1"); a.set("/app", b"v2"); a.set("/app/job-0000000000", b"")
        a.set_acls("/app/job-0000000001", [make_digest_acl("u", "p", all=True)] + list(READ_ACL_UNSAFE))
        a.create("/zookeeper/quota/app/zookeeper_limits", b"count=100,bytes=1000", makepath=True)
        a.create("/zookeeper/quota/app/zookeeper_stats", b"count=0,bytes=0")
        a.create("/app/after-quota", b"12345")
        t = a.transaction(); t.create("/m1", b"a"); t.set_data("/app/job-0000000002", b"zz"); t.check("/app", 2)
        assert not any(isinstance(r, Exception) for r in t.commit())
        t = a.transaction(); t.create("/m2", b"a"); t.delete("/nope"); t.create("/m3")
        assert isinstance(t.commit()[1], Exception)
        with pytest.raises(KNodeExists):
            a.create("/app", b"dup")
        open_acl = [ACL(perms=31, id=Id(scheme="world", id="anyone"))]
        _kazoo_call(a, 19, CreateRequest(path="/box", data=b"c", acl=open_acl, flags=4))
        _kazoo_call(a, 21, CreateTTLRequest(path="/ttl", data=b"t", acl=open_acl, flags=5, ttl=3_600_000))
        a.create("/box/item", b"")
        a.set("/box/item", b"1")
        a.create("/box/item/deep", b"")
        a.delete("/box/item/deep")
        b.stop(); b.close(); clients.remove(b)
        a.delete("/m1")
        stats = {}
        todo = ["/"]
        while todo:
            path = todo.pop()
            data, stat = a.get(path)
            children = a.get_children(path)
            stats[path] = (stat, children, data)
            todo.extend((path.rstrip("/") + "/" + c) for c in children)
        recorded = a.last_zxid
        a.sync("/")
        w.sync("/")
        reports = {word: four_letter_word(server.client_port, word) for word in ("wchs", "wchc", "wchp")}
        watcher_session = w.client_id[0]
    finally:
        ConnectionHandler._read_watch_event = original_read_watch_event
        for c in clients:
            c.stop(); c.close()
        server.stop()
    watch_events = [(t, p) for client, t, p in notifications if client is w]
    log_dir = pathlib.Path(server.data_dir) / "version-2"
    txns = [t for log in sorted(log_dir.glob("log.*"), key=lambda p: int(p.suffix[1:], 16)) for t in read_txn_log(log)]
    again = JavaZooKeeper(work, dict(config, clientPort=free_port()))   # restart: Java snapshots after loading
    again.start(); again.stop()
    snap = max(log_dir.glob("snapshot.*"), key=lambda p: int(p.suffix[1:], 16))
    return JavaRun(watch_events, watcher_session, reports, stats, recorded, txns, snap.read_bytes(),
                   int(snap.suffix[1:], 16))


def _replay(txns, upto: int | None = None) -> DataTree:
    t = DataTree(extended_types_enabled=True)
    for header, txn, digest in txns:
        if upto is not None and header.zxid > upto:
            break
        t.process_txn(header, txn, digest)
    return t


@pytest.mark.java
@pytest.mark.slow
def test_java_log_replay_reproduces_every_txn_digest(java_run):
    """Replaying the Java server's transaction log through process_txn gives, after every txn, exactly the tree
    digest Java logged with it (creates, sequential and ephemeral creates, deletes, setData, setACL, quota nodes,
    multi success and failure, error txns, containers, TTL nodes, closeSession).

    Reference: Java DataTree.processTxn, DataTree.compareDigest, DigestCalculator; FileTxnLog record format
    """
    types = {h.type for h, _, _ in java_run.txns}
    assert {-10, -11, 1, 2, 5, 7, 14, -1, 19, 21} <= types
    t = DataTree(extended_types_enabled=True)
    compared = 0
    for header, txn, digest in java_run.txns:
        t.process_txn(header, txn, digest)
        if digest is not None:
            assert (hex(header.zxid), t.get_tree_digest()) == (hex(header.zxid), digest.tree_digest)
            compared += 1
    assert compared > 30 and t.digest_mismatches_count == 0


@pytest.mark.java
@pytest.mark.slow
def test_java_stats_children_and_data_match_replay(java_run):
    """After the same txns, every znode has the Stat Java reports to kazoo (czxid, mzxid, ctime, mtime, version,
    cversion, aversion, ephemeralOwner, dataLength, numChildren, pzxid), the same data, and getChildren lists
    the children in the same order; the quota stats node shows the same usage.

    Reference: Java DataTree.getData/getChildren/statNode, DataNode.copyStat, java.util.HashSet order
    """
    t = _replay(java_run.txns, java_run.recorded_zxid)
    assert "/ttl" in java_run.stats and "/box/item" in java_run.stats
    for path, (kstat, children, data) in java_run.stats.items():
        got_data, stat = t.get_data(path)
        assert (path, tuple(kstat)) == (path, (stat.czxid, stat.mzxid, stat.ctime, stat.mtime, stat.version,
                                               stat.cversion, stat.aversion, stat.ephemeral_owner,
                                               stat.data_length, stat.num_children, stat.pzxid))
        assert (path, t.get_children(path)[0]) == (path, children)
        assert (path, got_data or b"") == (path, data or b"")


@pytest.mark.java
@pytest.mark.slow
def test_java_snapshot_tree_section_is_byte_identical(java_run):
    """The tree section Java wrote into its snapshot (ACL cache, then nodes in preorder from "" ending with "/")
    is byte for byte what DataTree.serialize writes after replaying the same log; reading Java's snapshot back
    gives the digest Java stored after it, and the ephemeral, container and TTL sets.

    Reference: Java DataTree.serialize/deserialize, FileSnap.serialize (header, sessions, seal, ZxidDigest)
    """
    raw = java_run.snapshot
    ia = InputArchive(raw)
    assert FileHeader.deserialize(ia).magic == 0x5A4B534E
    sessions = [(ia.read_long(), ia.read_int()) for _ in range(ia.read_int())]
    start = ia.offset
    loaded = DataTree(extended_types_enabled=True)
    loaded.deserialize(ia)
    end = ia.offset
    assert ia.read_long() == zlib.adler32(raw[:end]) and ia.read_ustring() == "/"
    stored = ZxidDigest.deserialize(ia)
    replayed = _replay(java_run.txns)
    assert stored.zxid == java_run.snapshot_zxid == replayed.last_processed_zxid
    assert _snapshot_bytes(replayed) == raw[start:end]
    assert loaded.get_tree_digest() == stored.digest == replayed.get_tree_digest()
    assert loaded.get_containers() == {"/box"} and loaded.get_ttls() == {"/ttl"}
    assert loaded.get_ephemerals() == replayed.get_ephemerals() and len(sessions) == len(loaded.get_ephemerals())


@pytest.mark.java
@pytest.mark.slow
def test_java_watch_notifications_match_replay(java_run):
    """With the same watches (an exists watch on a missing node, a child watch on /, a persistent watch on /app,
    a recursive watch on /box, another exists watch), replaying the log notifies our watcher with exactly the
    events, in the order, that the Java server sent to its client; afterwards wchs, wchc and wchp report the same
    watches.

    Reference: Java WatchManager.triggerWatch, DataTree.createNode/deleteNode/setData, WatchCommand (wchs/wchc/wchp)
    """
    t = DataTree(extended_types_enabled=True)
    w = Recorder(java_run.watcher_session)
    _register_watches_like_w(t, w)
    for header, txn, digest in java_run.txns:
        if header.zxid > java_run.recorded_zxid:
            break
        t.process_txn(header, txn, digest)
    assert len(java_run.watch_events) >= 10
    assert [(int(ty), p) for ty, p in w.events] == java_run.watch_events
    assert java_run.reports["wchs"] == t.dump_watches_summary() + "\n"

    def parse(text: str) -> dict:
        out, key = {}, None
        for line in text.splitlines():
            if line.startswith("\t"):
                out[key].add(line[1:])
            elif line:
                key = line
                out[key] = set()
        return out
    assert parse(java_run.reports["wchc"]) == parse(t.dump_watches(False))
    assert parse(java_run.reports["wchp"]) == parse(t.dump_watches(True))


def test_watch_manager_direct_use_and_deep_trees():
    """WatchManager.trigger_watch(path, type, zxid) carries the zxid on the event and returns the watchers it
    notified (None if none); a 3000-level-deep tree serializes, reloads and recounts its quota without recursion
    limits.

    Reference: Java WatchManager.triggerWatch; DataTree.serializeNode, DataTree.getCounts
    """
    wm, seen = WatchManager(), []

    class W:
        def process(self, event): seen.append(event)
    w = W()
    assert wm.add_watch("/a", w) and not wm.add_watch("/a", w)
    assert wm.trigger_watch("/a", EventType.NodeDeleted, 0x500000001) == {w}
    assert seen == [WatchedEvent(EventType.NodeDeleted, KeeperState.SyncConnected, "/a", 0x500000001)]
    assert wm.trigger_watch("/a", EventType.NodeDeleted, 0x500000002) is None
    tx = Tx()
    tx.create("/d")
    _with_quota(tx, "/d", b"count=-1,bytes=-1")
    path = "/d"
    for _ in range(3000):
        path += "/x"
        tx.tree.create_node(path, b"1", None, 0, -1, 10, 10)
    assert tx.tree.get_data(Quotas.stat_path("/d"))[0] == b"count=3001,bytes=3000"
    back = DataTree()
    back.deserialize(InputArchive(_snapshot_bytes(tx.tree)))
    assert back.get_node(path) is not None and back.get_tree_digest() == tx.tree.get_tree_digest()
    assert back.get_data(Quotas.stat_path("/d"))[0] == b"count=3001,bytes=3000"
    assert tx.tree.get_node_acl(tx.tree.get_node(CONFIG_NODE)) == read_acl_unsafe()


@pytest.mark.java
@pytest.mark.slow
def test_java_quota_warnings_and_hard_limit_match(java_zk):
    """With zookeeper.enforceQuota=true, the Java server logs "Message:Quota exceeded: /q [current count=3,
    softCountLimit=2] Value:null" (via RateLogger) for each create over a soft limit and rejects one over a hard
    limit with QUOTAEXCEEDED (an error txn with err -125); check_quota logs the same messages and raises.

    Reference: Java ZooKeeperServer.checkQuota, RateLogger.rateLimitLog
    """
    from kazoo.client import KazooClient
    from kazoo.exceptions import QuotaExceededError as KQuotaExceeded
    server = java_zk({"enforceQuota": "true"})
    limits = b"count=2,bytes=-1=;byteHardLimit=10;countHardLimit=-1"
    creates = [("/q/a", b"12345"), ("/q/b", b""), ("/q/c", b"123456")]
    c = KazooClient(hosts=f"127.0.0.1:{server.client_port}", timeout=10)
    c.start()
    try:
        c.create("/q", b"")
        c.create("/zookeeper/quota/q/zookeeper_limits", limits, makepath=True)
        c.create("/zookeeper/quota/q/zookeeper_stats", b"count=0,bytes=0")
        c.create(*creates[0]); c.create(*creates[1])
        with pytest.raises(KQuotaExceeded):
            c.create(*creates[2])
    finally:
        c.stop(); c.close()
        server.stop()
    java_lines = [l.split(" - ", 2)[2] for l in server.logs().splitlines() if "RateLogger@" in l]
    txns = read_txn_log(next((pathlib.Path(server.data_dir) / "version-2").glob("log.*")))
    assert txns[-2][0].type == OpCode.error and txns[-2][1].err == Code.QUOTAEXCEEDED
    tree = DataTree(enforce_quota=True)
    buf, h = capture_log()
    try:
        for header, txn, digest in txns:
            if header.type == OpCode.create and txn.path.startswith("/q/"):
                tree.check_quota(txn.path, None, txn.data, OpCode.create)
            tree.process_txn(header, txn, digest)
        with pytest.raises(QuotaExceededError):
            tree.check_quota(creates[2][0], None, creates[2][1], OpCode.create)
    finally:
        logging.getLogger().removeHandler(h)
    ours = [l.split(" - ", 2)[2] for l in buf.getvalue().splitlines() if "RateLogger@" in l]
    assert len(java_lines) == 3 and ours == java_lines
    assert all(" - WARN  [" in l for l in buf.getvalue().splitlines() if "RateLogger@" in l)


def quota_scenario(server) -> tuple[list, list[str], list]:
    """On a server started with enforceQuota=true: a byte hard limit of 10 on /q and a soft count limit of 2, then
    three creates under it; the replies (None or the error's name), the RateLogger messages, the logged txns."""
    from kazoo.client import KazooClient
    from kazoo.exceptions import KazooException
    limits = b"count=2,bytes=-1=;byteHardLimit=10;countHardLimit=-1"
    c = KazooClient(hosts=f"127.0.0.1:{server.client_port}", timeout=10)
    c.start()
    replies = []
    try:
        c.create("/q", b"")
        c.create("/zookeeper/quota/q/zookeeper_limits", limits, makepath=True)
        c.create("/zookeeper/quota/q/zookeeper_stats", b"count=0,bytes=0")
        for path, data in [("/q/a", b"12345"), ("/q/b", b""), ("/q/c", b"123456")]:
            try:
                c.create(path, data)
                replies.append(None)
            except KazooException as e:
                replies.append(type(e).__name__)
    finally:
        c.stop(); c.close()
        server.stop()
    lines = [l.split(" - ", 2)[2] for l in server.logs().splitlines()
             if "RateLogger@" in l or "ZooKeeperServer@" in l and "zookeeper.enforceQuota = " in l]
    txns = read_txn_log(next((pathlib.Path(server.data_dir) / "version-2").glob("log.*")))
    return replies, lines, [(h.type, getattr(t, "err", None)) for h, t, _ in txns]


@pytest.mark.java
def test_server_enforces_quota_as_java(java_zk, zkref_zk):
    """zookeeper.enforceQuota=true (zoo.cfg `enforceQuota`) makes a running server check every create and setData
    against the quota above it (the static block logs `zookeeper.enforceQuota = true, Quota Enforce enables`):
    over the soft count limit the create goes through and RateLogger logs
    `Message:Quota exceeded: /q [current count=N, softCountLimit=2] Value:null`; over the byte hard limit it is
    refused with QUOTAEXCEEDED, logged as an error txn (-125). A zkref server gives the same replies, lines and
    txns as Java's.
    Reference: Java ZooKeeperServer static block (enforceQuota), PrepRequestProcessor (checkQuota), ZooKeeperServer.checkQuota"""
    java = quota_scenario(java_zk({"enforceQuota": "true"}))
    assert java[0] == [None, None, "QuotaExceededError"] and java[2][-2] == (OpCode.error, Code.QUOTAEXCEEDED), java
    assert java[1][0] == "zookeeper.enforceQuota = true, Quota Enforce enables", java[1]
    assert quota_scenario(zkref_zk({"enforceQuota": "true"})) == java


def quota_refusals_mntr(server) -> tuple[list, list[str]]:
    """On a server started with enforceQuota=true and mntr allowed: a byte hard limit of 10 on /q, a count hard limit
    of 1 on /r/s (a quota below the top namespace) and a soft count limit of 1 on /t; then creates and a setData over
    and under them. The replies (None or the error's name) and mntr's quota_exceeded_error_per_namespace lines."""
    from kazoo.client import KazooClient
    from kazoo.exceptions import KazooException
    c = KazooClient(hosts=f"127.0.0.1:{server.client_port}", timeout=10)
    c.start()
    replies = []
    try:
        for path, limits in [("/q", b"count=-1,bytes=-1=;byteHardLimit=10;countHardLimit=-1"),
                             ("/r/s", b"count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=1"),
                             ("/t", b"count=1,bytes=-1")]:
            c.create(path, b"", makepath=True)
            c.create(f"/zookeeper/quota{path}/zookeeper_limits", limits, makepath=True)
            c.create(f"/zookeeper/quota{path}/zookeeper_stats", b"count=0,bytes=0")
        for op, path, data in [("create", "/q/a", b"12345"), ("create", "/q/b", b"123456"), ("set", "/q/a", b"x" * 11),
                               ("set", "/q/a", b"1234567890"), ("create", "/r/s/x", b""), ("create", "/t/x", b""),
                               ("create", "/t/y", b"")]:
            try:
                c.create(path, data) if op == "create" else c.set(path, data)
                replies.append(None)
            except KazooException as e:
                replies.append(type(e).__name__)
        mntr = four_letter_word(server.client_port, "mntr")
    finally:
        c.stop(); c.close()
    return replies, sorted(l for l in mntr.splitlines() if "quota_exceeded" in l)


@pytest.mark.java
def test_quota_refusals_counted_per_namespace_as_java(java_zk, zkref_zk):
    """Each create or setData that a hard quota refuses (QUOTAEXCEEDED) adds 1 to the counter set
    quota_exceeded_error_per_namespace under the refused path's top-level namespace (`/r/s/x` counts for `r`, even
    with the quota on `/r/s`); soft-limit overruns, which go through, are not counted. mntr then lists
    `zk_<namespace>_quota_exceeded_error_per_namespace` with the count. A zkref server gives the same replies and the
    same mntr lines as Java's.
    Reference: Java ZooKeeperServer.checkQuota, ZooKeeperServer.updateQuotaExceededMetrics,
    ServerMetrics.QUOTA_EXCEEDED_ERROR_PER_NAMESPACE"""
    config = {"enforceQuota": "true", "4lw.commands.whitelist": "mntr"}
    java = quota_refusals_mntr(java_zk(config))
    assert java[0] == [None, "QuotaExceededError", "QuotaExceededError", None, "QuotaExceededError", None, None], java
    assert java[1] == ["zk_q_quota_exceeded_error_per_namespace\t2", "zk_r_quota_exceeded_error_per_namespace\t1"], java
    assert quota_refusals_mntr(zkref_zk(config)) == java
