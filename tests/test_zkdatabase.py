"""zkref.zkdatabase: restore rules, the committed-log window, snapshots while serving, truncation, SNAP bodies.

Real files in temporary directories, the real DataTree; the Java side is in tests/test_storage_interop.py.
"""
from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest

from zkref.config import QuorumMaj
from zkref.jute import (ACL, CloseSessionTxn, CreateSessionTxn, CreateTxn, DeleteTxn, Id, InputArchive,
                        OutputArchive, SetDataTxn, TxnDigest, TxnHeader)
from zkref.persistence import (FileTxnLog, FileTxnSnapLog, StorageOptions, make_snapshot_name, parse_snapshot,
                               read_snapshot_stream, snapshot_bytes, write_snapshot_file)
from zkref.zkdatabase import ZKDatabase

WORLD = [ACL(perms=31, id=Id(scheme="world", id="anyone"))]
SID = 0x100000a00000000
OPTS = StorageOptions(prealloc_size=64 * 1024)


def new_db(d: Path, options: StorageOptions = OPTS, props=None) -> ZKDatabase:
    return ZKDatabase(FileTxnSnapLog(d, d, options), props)


def apply(db: ZKDatabase, zxid: int, type_: int, txn, session: int = SID, log: bool = True):
    "Commit one txn the way the server does: apply, remember, log."
    header = TxnHeader(client_id=session, cxid=zxid, zxid=zxid, time=1764168000000 + zxid, type=type_)
    if type_ == -10:
        db.sessions_with_timeouts[session] = txn.time_out
    elif type_ == -11:
        db.sessions_with_timeouts.pop(session, None)
    db.process_txn(header, txn)
    digest = TxnDigest(version=2, tree_digest=db.data_tree.get_tree_digest())
    db.add_committed_proposal(header, txn, digest)
    if log:
        db.append(header, txn, digest)


def create(db, zxid, path, data=b"", ephemeral=False, session=SID):
    parent = path.rsplit("/", 1)[0] or "/"
    cv = db.data_tree.get_node(parent).stat.cversion + 1
    apply(db, zxid, 1, CreateTxn(path=path, data=data, acl=WORLD, ephemeral=ephemeral, parent_cversion=cv), session)


def populate(db: ZKDatabase, start: int = 1) -> int:
    "A session, a few nodes, a change, a delete; commits; returns the last zxid."
    z = start
    apply(db, z, -10, CreateSessionTxn(time_out=20000)); z += 1
    create(db, z, "/a", b"1"); z += 1
    create(db, z, "/a/b", b"2"); z += 1
    create(db, z, "/a/eph", b"e", ephemeral=True); z += 1
    apply(db, z, 5, SetDataTxn(path="/a", data=b"one", version=1)); z += 1
    apply(db, z, 2, DeleteTxn(path="/a/b"))
    db.commit()
    return z


def tree(db: ZKDatabase) -> dict:
    dt, out, todo = db.data_tree, {}, ["/"]
    while todo:
        p = todo.pop()
        data, stat = dt.get_data(p)
        kids, _ = dt.get_children(p)
        out[p] = (data, stat)
        todo += [p.rstrip("/") + "/" + k for k in kids]
    return out


# --- restore rules ---------------------------------------------------------------------------------

def test_first_start_writes_snapshot_0(tmp_path):
    """An empty data directory is a new database: restore trusts it (zookeeper.db.autocreate), writes
    snapshot.0 and returns zxid 0. Reference: Java FileTxnSnapLog.restore (trustEmptyDB)."""
    db = new_db(tmp_path)
    assert db.load_data_base() == 0
    assert [p.name for p in db.snap_log.snap_dir.iterdir()] == ["snapshot.0"]
    assert db.is_initialized()


def test_untrusted_empty_database_is_zxid_minus_1(tmp_path, caplog):
    """With zookeeper.db.autocreate=false an empty directory is not trusted: zxid -1, no snapshot, unless an
    `initialize` file says otherwise (it is then deleted). Reference: Java FileTxnSnapLog.restore."""
    opts = StorageOptions.from_properties({"zookeeper.db.autocreate": "false"})
    with caplog.at_level(logging.WARNING):
        assert new_db(tmp_path / "a", opts).load_data_base() == -1
    assert "Unexpected empty data tree, setting zxid to -1" in caplog.text
    assert not list((tmp_path / "a" / "version-2").iterdir())
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "initialize").write_text("")
    assert new_db(tmp_path / "b", opts).load_data_base() == 0
    assert not (tmp_path / "b" / "initialize").exists()


def test_logs_without_snapshot_is_broken(tmp_path):
    """Txn logs without any snapshot mean a lost snapshot: refuse, unless zookeeper.snapshot.trust.empty=true,
    which replays the logs onto an empty tree. Reference: Java FileTxnSnapLog.restore (ZOOKEEPER-3056)."""
    db = new_db(tmp_path)
    db.load_data_base()
    last = populate(db)
    db.close()
    (tmp_path / "version-2" / "snapshot.0").unlink()
    with pytest.raises(OSError, match="^No snapshot found, but there are log entries. Something is broken!$"):
        new_db(tmp_path).load_data_base()
    trusting = new_db(tmp_path, StorageOptions.from_properties({"zookeeper.snapshot.trust.empty": "true"}))
    assert trusting.load_data_base() == last
    assert trusting.data_tree.get_data("/a")[0] == b"one"


def test_restore_replays_logs_after_the_snapshot(tmp_path):
    """Restore = the newest valid snapshot + every logged txn after it; sessions come and go with
    createSession/closeSession; replayed txns fill the committed log. Reference: Java
    FileTxnSnapLog.restore/fastForwardFromEdits/processTransaction, ZKDatabase.loadDataBase."""
    db = new_db(tmp_path)
    db.load_data_base()
    z = populate(db)
    db.roll_log()
    db.take_snapshot()
    apply(db, z + 1, -10, CreateSessionTxn(time_out=9000), session=SID + 1)
    create(db, z + 2, "/late", b"L", ephemeral=True, session=SID + 1)
    apply(db, z + 3, -11, CloseSessionTxn(paths2_delete=["/a/eph"]))
    db.commit()
    expected = tree(db)
    db.close()

    again = new_db(tmp_path)
    assert again.load_data_base() == z + 3
    assert tree(again) == expected
    assert again.sessions_with_timeouts == {SID + 1: 9000}
    assert [p.packet.zxid for p in again.get_committed_log()] == [z + 1, z + 2, z + 3]
    assert (again.min_committed_log, again.max_committed_log) == (z + 1, z + 3)
    assert again.data_tree.digest_mismatches_count == 0


def test_fuzzy_snapshot_is_fixed_by_replay(tmp_path):
    """A snapshot may hold changes made after the zxid in its name (Java snapshots while serving); replaying
    the log from that zxid re-applies them harmlessly and ends in the right tree. Reference: Java
    FileTxnSnapLog.restore, DataTree.processTxn (NodeExists on replay adjusts the parent's cversion)."""
    db = new_db(tmp_path)
    db.load_data_base()
    z = populate(db)
    named = db.data_tree.last_processed_zxid
    create(db, z + 1, "/a/c", b"c")
    create(db, z + 2, "/a/d", b"d")
    db.commit()
    fuzzy = snapshot_bytes(db.data_tree, db.sessions_with_timeouts)  # content at z+2 …
    write_snapshot_file(db.snap_log.snap_dir / make_snapshot_name(named), fuzzy)  # … named after z
    apply(db, z + 3, 5, SetDataTxn(path="/a/c", data=b"cc", version=1))
    db.commit()
    expected = tree(db)
    db.close()
    again = new_db(tmp_path)
    assert again.load_data_base() == z + 3
    assert tree(again) == expected


def test_bad_newest_snapshot_falls_back(tmp_path, caplog):
    """A newest snapshot that fails its checksum is skipped ("problem reading snap file") for an older valid
    one; only bad ones → "Not able to find valid snapshots in <dir>". Reference: Java FileSnap.deserialize."""
    db = new_db(tmp_path)
    db.load_data_base()
    populate(db)
    db.roll_log()
    newest = db.take_snapshot()
    db.close()
    raw = bytearray(newest.read_bytes())
    raw[100] ^= 0xFF
    newest.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING):
        again = new_db(tmp_path)
        again.load_data_base()
    assert f"problem reading snap file {newest}" in caplog.text
    assert again.data_tree.get_data("/a")[0] == b"one"
    snap0 = tmp_path / "version-2" / "snapshot.0"
    snap0.write_bytes(bytearray(snap0.read_bytes())[:-20] + bytes(15) + b"\x00\x00\x00\x01/")
    with pytest.raises(OSError, match=f"^Not able to find valid snapshots in {tmp_path / 'version-2'}$"):
        new_db(tmp_path).load_data_base()


def test_gzip_snapshots(tmp_path):
    """zookeeper.snapshot.compression.method=gz writes snapshot.<zxid>.gz; the reader picks the codec by
    extension. Reference: Java SnapStream.getOutputStream/getInputStream."""
    opts = StorageOptions.from_properties({"zookeeper.snapshot.compression.method": "gz", "zookeeper.preAllocSize": "64"})
    db = new_db(tmp_path, opts)
    db.load_data_base()
    z = populate(db)
    db.roll_log()
    path = db.take_snapshot()
    assert path.name == f"snapshot.{z:x}.gz" and path.read_bytes()[:2] == b"\x1f\x8b"
    db.close()
    again = new_db(tmp_path)          # reading needs no option: the extension says gz
    assert again.load_data_base() == z
    assert parse_snapshot(read_snapshot_stream(path)).nodes[0].path == ""


# --- the committed log -----------------------------------------------------------------------------

def test_committed_log_window(tmp_path):
    """The committed log keeps the newest commitLogCount+1 proposals (Java trims before adding), with
    min/max zxids at its ends; a count below 500 is raised to 500. Reference: Java
    ZKDatabase.addCommittedProposal and constructor."""
    db = new_db(tmp_path, props={"zookeeper.commitLogCount": "10"})
    assert db.commit_log_count == 500
    db = new_db(tmp_path, props={"zookeeper.commitLogCount": "600"})
    db.load_data_base()
    create(db, 1, "/n", b"")
    for z in range(2, 1002):
        apply(db, z, 5, SetDataTxn(path="/n", data=b"%d" % z, version=z - 1), log=False)
    log = db.get_committed_log()
    assert len(log) == 601
    assert (db.min_committed_log, db.max_committed_log) == (401, 1001) == (log[0].packet.zxid, log[-1].packet.zxid)
    assert log[-1].packet.type == 2   # Leader.PROPOSAL


def test_snapshot_size_factor_rules(tmp_path):
    """zookeeper.snapshotSizeFactor above 1 or unparsable falls back to 0.33; negative disables serving DIFF
    from the log files. Reference: Java ZKDatabase constructor, isTxnLogSyncEnabled."""
    assert new_db(tmp_path, props={"zookeeper.snapshotSizeFactor": "2"}).snapshot_size_factor == 0.33
    assert new_db(tmp_path, props={"zookeeper.snapshotSizeFactor": "x"}).snapshot_size_factor == 0.33
    assert new_db(tmp_path, props={"zookeeper.snapshotSizeFactor": "0.5"}).snapshot_size_factor == 0.5
    assert not new_db(tmp_path, props={"zookeeper.snapshotSizeFactor": "-1"}).is_txn_log_sync_enabled()


def test_proposals_from_txn_log(tmp_path):
    """A leader can stream proposals from the log files, starting at the beginning of the file that holds the
    follower's zxid (the leader skips what the follower has) — not when the files do not reach back to that
    zxid, nor when they exceed the size limit. Reference: Java ZKDatabase.getProposalsFromTxnLog
    (readTxnLog(zxid, fastForward=false)), LearnerHandler.queueCommittedProposals."""
    db = new_db(tmp_path)
    db.load_data_base()
    z = populate(db)
    assert [p.packet.zxid for p in db.get_proposals_from_txn_log(3, 0)] == list(range(1, z + 1))
    first = next(iter(db.get_proposals_from_txn_log(2, 0)))
    assert first.packet.type == 2 and first.header.zxid == 1 and isinstance(first.txn, CreateSessionTxn)
    db.roll_log()
    create(db, z + 1, "/later")
    db.commit()
    # Java's iterator also opens the newest file that starts *before* the zxid, so this starts at log.1 too
    assert [p.packet.zxid for p in db.get_proposals_from_txn_log(z + 1, 0)] == list(range(1, z + 2))
    (db.snap_log.data_dir / "log.1").unlink()            # purged: the files no longer reach back to zxid 3
    assert list(db.get_proposals_from_txn_log(3, 0)) == []
    assert list(db.get_proposals_from_txn_log(3, 10)) == []          # too large for a 10-byte limit
    assert list(db.get_proposals_from_txn_log(3, -1)) == []          # disabled


def test_txn_count_and_roll(tmp_path):
    """Appends count towards the next snapshot; rolling the log resets the counters. Reference: Java
    ZKDatabase.append/rollLog/resetTxnCount."""
    db = new_db(tmp_path)
    db.load_data_base()
    populate(db)
    assert db.get_txn_count() == 6 and db.get_txn_size() > 0
    db.roll_log()
    assert db.get_txn_count() == 0 and db.get_txn_size() == 0


# --- snapshots while serving, truncation, SNAP bodies, config ----------------------------------------

def test_snapshot_async_keeps_the_loop_serving(tmp_path):
    """take_snapshot_async walks the tree on the loop in slices and writes in a worker thread, so txns keep
    being applied meanwhile; the snapshot is fuzzy (as Java's), named after the zxid at its start, and a
    restore (snapshot + log replay) gives exactly the final tree. Reference: Java SyncRequestProcessor
    (snapshot thread), DataTree.serializeNode, FileTxnSnapLog.restore."""
    db = new_db(tmp_path)
    db.load_data_base()
    z = populate(db)
    for i in range(2000):
        create(db, z + 1 + i, f"/bulk{i}", b"x" * 100)
    z += 2000
    db.commit()

    async def serve():
        snap = asyncio.create_task(db.take_snapshot_async(chunk_nodes=100))
        applied = 0
        while not snap.done() and applied < 1000:
            await asyncio.sleep(0)
            n = z + 1 + applied
            if applied % 2:
                apply(db, n, 2, DeleteTxn(path=f"/bulk{applied}"))       # deletes behind and ahead of the walk
            else:
                create(db, n, f"/during{applied}", b"")
            applied += 1
        return await snap, applied

    path, applied = asyncio.run(serve())
    assert applied > 0                           # the loop ran while the snapshot was taken
    assert path.name == f"snapshot.{z:x}"
    db.commit()
    final = tree(db)
    db.close()
    raw = parse_snapshot(path.read_bytes())
    assert z <= raw.zxid_digest[0] <= z + applied
    again = new_db(tmp_path)
    assert again.load_data_base() == z + applied
    assert tree(again) == final
    assert again.data_tree.digest_mismatches_count == 0


def test_truncate_log_reloads_up_to_the_zxid(tmp_path):
    """TRUNC: truncate_log(zxid) forgets memory, cuts the logs after zxid and reloads. Reference: Java
    ZKDatabase.truncateLog, FileTxnSnapLog.truncateLog."""
    db = new_db(tmp_path)
    db.load_data_base()
    populate(db)
    assert db.truncate_log(4)
    assert db.get_data_tree_last_processed_zxid() == 4
    assert db.data_tree.get_data("/a")[0] == b"1" and db.data_tree.get_node("/a/b") is not None
    db.close()
    assert new_db(tmp_path).load_data_base() == 4


def test_snap_body_round_trip(tmp_path):
    """The sessions and tree travel to a learner in snapshot layout (SNAP sync). Reference: Java
    ZKDatabase.serializeSnapshot/deserializeSnapshot."""
    db = new_db(tmp_path)
    db.load_data_base()
    populate(db)
    oa = OutputArchive()
    db.serialize_snapshot(oa)
    learner = ZKDatabase(None)
    learner.deserialize_snapshot(InputArchive(oa.getvalue()))
    assert tree(learner) == tree(db)
    assert learner.sessions_with_timeouts == db.sessions_with_timeouts
    assert learner.is_initialized()


def test_init_config_in_zk_database(tmp_path):
    """/zookeeper/config holds the quorum verifier's text, with mzxid = its version. Reference: Java
    ZKDatabase.initConfigInZKDatabase."""
    db = new_db(tmp_path)
    qv = QuorumMaj.from_properties({"server.1": "127.0.0.1:2888:3888", "version": "100000003"})
    db.init_config_in_zk_database(qv)
    data, stat = db.data_tree.get_data("/zookeeper/config")
    assert data.decode() == str(qv) and stat.mzxid == 0x100000003
    assert "server.1=127.0.0.1:2888:3888:participant" in data.decode()
    db.init_config_in_zk_database(None)   # tests pass no verifier: nothing happens


def test_clear_forgets_memory_not_files(tmp_path):
    """clear() drops the tree, sessions and committed log; the files stay. Reference: Java ZKDatabase.clear."""
    db = new_db(tmp_path)
    db.load_data_base()
    z = populate(db)
    db.clear()
    assert db.data_tree.get_node("/a") is None and not db.sessions_with_timeouts and not db.get_committed_log()
    assert (db.min_committed_log, db.max_committed_log, db.is_initialized()) == (0, 0, False)
    assert db.load_data_base() == z


def test_sliced_encoding_equals_one_go_encoding(tmp_path):
    """With no change during the walk, the sliced snapshot (pieces with a running Adler32) is byte for byte
    the one-go snapshot. Reference: Java FileSnap.serialize, SnapStream.sealStream."""
    from zkref.persistence import snapshot_bytes
    from zkref.zkdatabase import encode_snapshot_chunks
    db = new_db(tmp_path)
    db.load_data_base()
    z = populate(db)
    for i in range(300):
        create(db, z + 1 + i, f"/x{i % 7}" if i < 7 else f"/x{i % 7}/y{i}", b"d" * (i % 50))
    for chunk in (1, 3, 1000):
        pieces = asyncio.run(encode_snapshot_chunks(db.data_tree, db.sessions_with_timeouts, chunk))
        assert b"".join(pieces) == snapshot_bytes(db.data_tree, db.sessions_with_timeouts)
    write_snapshot_file(tmp_path / "snapshot.1", pieces)
    assert (tmp_path / "snapshot.1").read_bytes() == snapshot_bytes(db.data_tree, db.sessions_with_timeouts)


@pytest.mark.parametrize("method", ["gz", "snappy"])
def test_torn_compressed_snapshot_falls_back(tmp_path, method):
    """A compressed snapshot passes the cheap validity test by its magic alone; if its stream is torn, restore
    skips it for an older snapshot. Reference: Java SnapStream.isValidSnapshot, FileSnap.deserialize."""
    if method == "snappy":
        pytest.importorskip("snappy")
    opts = StorageOptions.from_properties({"zookeeper.snapshot.compression.method": method, "zookeeper.preAllocSize": "64"})
    db = new_db(tmp_path, opts)
    db.load_data_base()
    z = populate(db)
    db.roll_log()
    path = db.take_snapshot()
    db.close()
    path.write_bytes(path.read_bytes()[:-25])
    again = new_db(tmp_path, opts)
    assert again.load_data_base() == z           # from snapshot.0 + the logs
    assert again.data_tree.get_data("/a")[0] == b"one"
