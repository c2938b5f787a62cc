"""zkref.persistence: ZooKeeper 3.8's txn-log and snapshot files, epoch files and data-directory rules.

Every test writes and reads real files. The Java side of the same formats is checked in
tests/test_storage_interop.py.
"""
from __future__ import annotations

import asyncio
import gzip
import logging
import os
import random
import shutil
import struct
import subprocess
import sys
import uuid
import zlib
from pathlib import Path

import pytest

from zkref.jute import (ACL, CloseSessionTxn, CreateSessionTxn, CreateTxn, CreateTxnV0, DeleteTxn, FileHeader, Id,
                        JuteError, MultiTxn, SetDataTxn, Txn, TxnDigest, TxnHeader)
from zkref.persistence import (CRC_ERROR, DatadirException, FileSnap, FileTxnLog, FileTxnSnapLog,
                               LogDirContentCheckException, SnapDirContentCheckException, SnapshotPolicy,
                               StorageOptions, TXNLOG_MAGIC, calculate_file_size_with_padding, deserialize_txn,
                               frame_txn_entry, get_log_files, is_valid_snapshot, load_epochs, marshall_txn_entry,
                               op2string, read_long_from_file, stream_mode, write_long_to_file)

SMALL = StorageOptions(prealloc_size=16 * 1024)
WORLD = [ACL(perms=31, id=Id(scheme="world", id="anyone"))]


def hdr(zxid: int, type_: int = 1, session: int = 0x100, cxid: int | None = None) -> TxnHeader:
    return TxnHeader(client_id=session, cxid=zxid if cxid is None else cxid, zxid=zxid, time=1764168000000 + zxid,
                     type=type_)


def create(zxid: int, path: str | None = None) -> tuple[TxnHeader, CreateTxn]:
    return hdr(zxid), CreateTxn(path=path or f"/n{zxid}", data=b"v%d" % zxid, acl=WORLD, ephemeral=False,
                                parent_cversion=zxid)


def write_log(d: Path, zxids, options=SMALL, roll_before=()) -> FileTxnLog:
    log = FileTxnLog(d, options)
    for z in zxids:
        if z in roll_before:
            log.roll_log()
        log.append(*create(z))
    log.commit()
    log.close()
    return log


def zxids_in(d: Path, start: int = 0, options=SMALL) -> list[int]:
    with FileTxnLog(d, options).read(start) as itr:
        return [e.header.zxid for e in itr]


# --- the record format -------------------------------------------------------------------------

def test_log_file_header_and_record_frame(tmp_path):
    """A log starts with FileHeader{ZKLG, 2, dbid 0}; each record is Adler32(payload), len, payload, 'B', and
    the payload is TxnHeader + txn + TxnDigest. Reference: Java FileTxnLog.append, Util.marshallTxnEntry."""
    log = FileTxnLog(tmp_path, SMALL)
    h, t = create(5)
    digest = TxnDigest(version=2, tree_digest=77)
    log.append(h, t, digest)
    log.commit()
    log.close()
    raw = (tmp_path / "log.5").read_bytes()
    assert FileHeader.from_bytes(raw[:16]) == FileHeader(magic=TXNLOG_MAGIC, version=2, dbid=0)
    crc, length = struct.unpack(">qi", raw[16:28])
    payload = raw[28:28 + length]
    assert payload == h.to_bytes() + t.to_bytes() + digest.to_bytes()
    assert crc == zlib.adler32(payload)
    assert raw[28 + length:29 + length] == b"B"


def test_deserialize_txn_compatibility_rules():
    """A create too short for CreateTxn is read as CreateTxnV0 with parentCVersion -1; a closeSession without
    a record (pre-3.6) and a payload without digest are accepted; an unknown type is rejected with Java's
    message. Reference: Java SerializeUtils.deserializeTxn."""
    v0 = CreateTxnV0(path="/old", data=b"d", acl=WORLD, ephemeral=True)
    e = deserialize_txn(hdr(1).to_bytes() + v0.to_bytes())
    assert (e.txn.path, e.txn.ephemeral, e.txn.parent_cversion, e.digest) == ("/old", True, -1, None)
    e = deserialize_txn(hdr(2, -11).to_bytes())
    assert e.txn is None and e.header.type == -11
    e = deserialize_txn(hdr(3, -11).to_bytes() + CloseSessionTxn(paths2_delete=["/e"]).to_bytes())
    assert e.txn.paths2_delete == ["/e"]
    with pytest.raises(OSError, match=r"Unsupported Txn with type=%d99"):
        deserialize_txn(hdr(4, 99).to_bytes())
    multi = MultiTxn(txns=[Txn(type=2, data=DeleteTxn(path="/x").to_bytes())])
    e = deserialize_txn(marshall_txn_entry(hdr(5, 14), multi, TxnDigest(version=2, tree_digest=1)))
    assert e.txn.txns[0].type == 2 and e.digest.tree_digest == 1


def test_op_names_match_request_op2string():
    """The tools print txn types as Request.op2String does (note `createTtl`). Reference: Java Request.op2String."""
    assert [op2string(t) for t in (-10, -11, 1, 2, 5, 7, 14, 15, 16, 19, 20, 21, -1, 106)] == [
        "createSession", "closeSession", "create", "delete", "setData", "setACL", "multi", "create2", "reconfig",
        "createContainer", "deleteContainer", "createTtl", "error", "unknown 106"]


# --- padding, group commit, rolling ------------------------------------------------------------

def test_padding_sizes_as_file_padding():
    """Before an append the file grows by preAllocSize when the position is within 4 KB of its end, or to the
    next multiple past the position. Reference: Java FilePadding.calculateFileSizeWithPadding (FilePaddingTest)."""
    assert calculate_file_size_with_padding(0, 0, 0) == 0                 # preallocation off
    assert calculate_file_size_with_padding(10, 1000, 1000) == 2000       # within 4 KB of the end
    assert calculate_file_size_with_padding(200_000, 100, 1000) == 201_000  # beyond: next multiple
    assert calculate_file_size_with_padding(100, 10_000, 1000) == 10_000  # plenty of room: unchanged


def test_log_file_is_preallocated_with_zeros(tmp_path):
    """A log file is padded with zeros in preAllocSize steps; the reader takes the zeros as end of log.
    Reference: Java FilePadding.padFile, FileTxnIterator.next ("bytes.length == 0")."""
    write_log(tmp_path, range(1, 4))
    raw = (tmp_path / "log.1").read_bytes()
    assert len(raw) == 16 + 16 * 1024
    assert zxids_in(tmp_path) == [1, 2, 3]


def test_group_commit_many_appends_one_commit(tmp_path):
    """Appends only queue; one commit writes and syncs them all, in order. Reference: Java
    SyncRequestProcessor.flush (group commit), FileTxnLog.commit."""
    log = FileTxnLog(tmp_path, SMALL)
    for z in range(1, 101):
        log.append(*create(z))
    assert not (tmp_path / "log.1").exists()       # nothing touched the disk yet
    log.commit()
    assert zxids_in(tmp_path) == list(range(1, 101))
    log.close()


def test_commit_off_the_event_loop_while_appending(tmp_path):
    """commit() is blocking and runs in a worker thread (asyncio.to_thread) while the loop keeps appending;
    appends made during a commit go to the next commit. Reference: Java SyncRequestProcessor (SyncThread)."""
    log = FileTxnLog(tmp_path, SMALL)

    async def server():
        zxid = 0
        for _batch in range(20):
            for _ in range(25):
                zxid += 1
                log.append(*create(zxid))
            commit = asyncio.create_task(asyncio.to_thread(log.commit))
            for _ in range(5):          # more appends while the fsync is in flight
                zxid += 1
                log.append(*create(zxid))
            await commit
        await asyncio.to_thread(log.commit)
        return zxid

    last = asyncio.run(server())
    log.close()
    assert zxids_in(tmp_path) == list(range(1, last + 1))


def test_roll_log_starts_a_file_named_after_the_next_zxid(tmp_path):
    """After rollLog the next append creates log.<its zxid>; the iterator reads across files. Reference:
    Java FileTxnLog.rollLog, Util.makeLogName."""
    write_log(tmp_path, range(1, 11), roll_before=(5, 0x1a))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.1", "log.5"]
    write_log(tmp_path, [0x1a, 0x1b], roll_before=(0x1a,))
    assert "log.1a" in {p.name for p in tmp_path.iterdir()}
    assert zxids_in(tmp_path) == list(range(1, 11)) + [0x1a, 0x1b]
    assert zxids_in(tmp_path, 7) == [7, 8, 9, 10, 0x1a, 0x1b]


def test_txn_log_size_limit_rolls_after_commit(tmp_path):
    """zookeeper.txnLogSizeLimitInKb: a commit that leaves the file larger than the limit rolls the log.
    Reference: Java FileTxnLog.commit."""
    opts = StorageOptions.from_properties({"zookeeper.preAllocSize": "4", "zookeeper.txnLogSizeLimitInKb": "8"})
    log = FileTxnLog(tmp_path, opts)
    for z in range(1, 301):
        log.append(*create(z))
        if z % 10 == 0:
            log.commit()
    log.close()
    files = sorted(tmp_path.iterdir())
    assert len(files) > 1
    assert zxids_in(tmp_path, 0, opts) == list(range(1, 301))


def test_force_sync_no_still_writes(tmp_path):
    """zookeeper.forceSync=no skips the fsync but still writes. Reference: Java FileTxnLog.forceSync."""
    opts = StorageOptions.from_properties({"zookeeper.forceSync": "no", "zookeeper.preAllocSize": "16"})
    assert opts.force_sync is False
    write_log(tmp_path, [1, 2], opts)
    assert zxids_in(tmp_path) == [1, 2]


# --- reading, torn tails, truncation ---------------------------------------------------------------

def test_get_log_files_picks_the_log_holding_the_snapshot_zxid():
    """The newest log starting at or before the snapshot zxid, and all later logs. Reference: Java
    FileTxnLog.getLogFiles."""
    files = [Path(n) for n in ("log.1", "log.20", "log.9", "snapshot.10", "log.30")]
    assert [f.name for f in get_log_files(files, 0x10)] == ["log.9", "log.20", "log.30"]
    assert [f.name for f in get_log_files(files, 0)] == ["log.1", "log.9", "log.20", "log.30"]


def test_read_fast_forwards_to_the_wanted_zxid(tmp_path):
    """read(zxid) is positioned on the first txn with zxid >= the target. Reference: Java FileTxnIterator."""
    write_log(tmp_path, [1, 2, 3, 7, 8])
    with FileTxnLog(tmp_path, SMALL).read(5) as itr:
        assert itr.header.zxid == 7
    assert FileTxnLog(tmp_path, SMALL).get_last_logged_zxid() == 8
    assert FileTxnLog(tmp_path / "nothing", SMALL).get_last_logged_zxid() == -1


def _record_size(z: int) -> int:
    return len(frame_txn_entry(marshall_txn_entry(*create(z))))


def test_torn_tail_file_ends_inside_a_record(tmp_path):
    """A crash mid-write leaves a partial record at the end: the reader stops at the last whole record.
    Reference: Java Util.readTxnBytes (EOFException), FileTxnIterator.next."""
    write_log(tmp_path, [1, 2, 3])
    f = tmp_path / "log.1"
    os.truncate(f, 16 + _record_size(1) + _record_size(2) + 10)
    assert zxids_in(tmp_path) == [1, 2]


def test_torn_tail_zeroed_rest_of_record_logs_partial(tmp_path, caplog):
    """A record whose tail never reached the disk (zeros from the preallocation) has no 'B' trailer: Java
    logs "Last transaction was partial." and the log ends there. Reference: Java Util.readTxnBytes."""
    write_log(tmp_path, [1, 2, 3])
    f = tmp_path / "log.1"
    data = bytearray(f.read_bytes())
    start3 = 16 + _record_size(1) + _record_size(2)
    data[start3 + 14:start3 + _record_size(3)] = bytes(_record_size(3) - 14)
    f.write_bytes(bytes(data))
    with caplog.at_level(logging.ERROR):
        assert zxids_in(tmp_path) == [1, 2]
    assert "Last transaction was partial." in caplog.text


def test_zeroed_tail_is_end_of_log(tmp_path):
    """Zeros where the next record would start mean end of log. Reference: Java FileTxnIterator.next."""
    write_log(tmp_path, [1, 2, 3])
    f = tmp_path / "log.1"
    data = bytearray(f.read_bytes())
    start3 = 16 + _record_size(1) + _record_size(2)
    data[start3:start3 + _record_size(3)] = bytes(_record_size(3))
    f.write_bytes(bytes(data))
    assert zxids_in(tmp_path) == [1, 2]


def test_bad_crc_is_an_error(tmp_path):
    """A whole record with a wrong Adler32 raises "CRC check failed": Java refuses to replay past it.
    Reference: Java FileTxnIterator.next (CRC_ERROR)."""
    write_log(tmp_path, [1, 2, 3])
    f = tmp_path / "log.1"
    data = bytearray(f.read_bytes())
    data[16 + _record_size(1) + 30] ^= 0xFF    # a payload byte of record 2
    f.write_bytes(bytes(data))
    with pytest.raises(OSError, match=CRC_ERROR):
        zxids_in(tmp_path)


def test_garbage_length_is_unreasonable(tmp_path):
    """A length beyond jute.maxbuffer + extra is "Unreasonable length = N". Reference: Java
    BinaryInputArchive.checkLength."""
    write_log(tmp_path, [1])
    f = tmp_path / "log.1"
    data = bytearray(f.read_bytes())
    data[16 + _record_size(1) + 8:16 + _record_size(1) + 12] = struct.pack(">i", 0x7FFFFFF0)
    f.write_bytes(bytes(data))
    with pytest.raises(OSError, match="Unreasonable length = 2147483632"):
        zxids_in(tmp_path)


def test_bad_magic_is_rejected(tmp_path):
    """A log file without the ZKLG magic is rejected. Reference: Java FileTxnIterator.inStreamCreated."""
    (tmp_path / "log.1").write_bytes(b"NOPE" + bytes(60))
    with pytest.raises(OSError, match=r"has invalid magic number 1313820741 != 1514884167"):
        zxids_in(tmp_path)


def test_truncate_cuts_after_the_zxid_and_deletes_later_files(tmp_path):
    """truncate(zxid) cuts the file holding zxid just after it and deletes every later log file.
    Reference: Java FileTxnLog.truncate."""
    write_log(tmp_path, range(1, 21), roll_before=(11,))
    log = FileTxnLog(tmp_path, SMALL)
    assert log.truncate(6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.1"]
    assert (tmp_path / "log.1").stat().st_size == 16 + sum(_record_size(z) for z in range(1, 7))
    assert zxids_in(tmp_path) == list(range(1, 7))
    write_log(tmp_path, [7, 8], roll_before=(7,))   # the log goes on after a truncation
    assert zxids_in(tmp_path) == list(range(1, 9))


def test_truncate_without_logs_fails_as_java(tmp_path):
    """Truncating an empty log directory fails with Java's message. Reference: Java FileTxnLog.truncate."""
    with pytest.raises(OSError, match="No log files found to truncate!"):
        FileTxnLog(tmp_path, SMALL).truncate(5)


# --- failures: full disk ---------------------------------------------------------------------------

@pytest.fixture
def tiny_disk(tmp_path):
    "A 256 KiB tmpfs: a real file system that fills up. Needs root (as `make test` and CI run)."
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (not root?)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_commit_raises_and_stays_broken(tiny_disk):
    """When the disk is full, commit raises (ENOSPC) so the caller never acknowledges those txns; the log
    then refuses further appends and commits. Reference: Java SyncRequestProcessor.run (an IOException from
    commit stops the server), FileTxnLog.commit."""
    log = FileTxnLog(tiny_disk, StorageOptions(prealloc_size=4096))
    big = CreateTxn(path="/big", data=os.urandom(60_000), acl=WORLD, parent_cversion=1)
    with pytest.raises(OSError) as failure:
        for z in range(1, 100):
            log.append(hdr(z), big)
            log.commit()
    assert failure.value.errno in (28, None)
    with pytest.raises(OSError):
        log.append(hdr(200), big)
    with pytest.raises(OSError):
        log.commit()
    log.close()


def test_full_disk_snapshot_raises(tiny_disk):
    """A snapshot that cannot be written raises and is not taken for a valid one. Reference: Java
    FileTxnSnapLog.save (empty snapshot files are deleted), SnapStream.isValidSnapshot."""
    from zkref.persistence import write_snapshot_file
    (tiny_disk / "filler").write_bytes(bytes(200_000))
    with pytest.raises(OSError):
        write_snapshot_file(tiny_disk / "snapshot.5", os.urandom(100_000), fsync=True)
    assert not (tiny_disk / "snapshot.5").exists() and not (tiny_disk / "snapshot.5.tmp").exists()
    with pytest.raises(OSError):
        write_snapshot_file(tiny_disk / "snapshot.6", os.urandom(100_000), fsync=False)
    assert not is_valid_snapshot(tiny_disk / "snapshot.6")


def test_read_only_directory_is_a_datadir_exception(tmp_path):
    """A data directory that cannot be written is refused at startup. Reference: Java FileTxnSnapLog
    constructor ("Cannot write to data directory")."""
    ro = tmp_path / "ro"
    (ro / "version-2").mkdir(parents=True)
    mnt_ok = subprocess.run(["mount", "--bind", "-o", "ro", str(ro), str(ro)], capture_output=True).returncode == 0
    if not mnt_ok:
        pytest.skip("cannot bind-mount read-only here")
    try:
        with pytest.raises(DatadirException, match="Cannot write to data directory"):
            FileTxnSnapLog(ro, tmp_path / "snap")
    finally:
        subprocess.run(["umount", str(ro)], check=False)


# --- snapshots: stream modes and validity ----------------------------------------------------------

def test_snapshot_validity_checks_the_tail(tmp_path):
    """A plain snapshot is valid when it is at least 10 bytes and ends with int 1 and '/'; gz by its magic;
    names without a zxid never. Reference: Java SnapStream.isValidSnapshot / isValidCheckedStream."""
    good = tmp_path / "snapshot.10"
    good.write_bytes(b"x" * 20 + struct.pack(">i", 1) + b"/")
    bad = tmp_path / "snapshot.11"
    bad.write_bytes(b"x" * 20 + struct.pack(">i", 1) + b"!")
    short = tmp_path / "snapshot.12"
    short.write_bytes(struct.pack(">i", 1) + b"/")
    gz = tmp_path / "snapshot.13.gz"
    gz.write_bytes(gzip.compress(b"abc"))
    noname = tmp_path / "snapshot.zz"
    noname.write_bytes(good.read_bytes())
    assert [is_valid_snapshot(p) for p in (good, bad, short, gz, noname)] == [True, False, False, True, False]
    assert [stream_mode(n) for n in ("snapshot.1", "snapshot.1.gz", "snapshot.1.snappy", "snapshot.1.GZ")] == [
        "", "gz", "snappy", "gz"]
    assert [p.name for p in FileSnap(tmp_path).find_n_valid_snapshots(5)] == ["snapshot.13.gz", "snapshot.10"]
    assert len(FileSnap(tmp_path).find_n_recent_snapshots(10)) == 4


# --- directories ---------------------------------------------------------------------------------

def test_version_2_dirs_are_created(tmp_path):
    """FileTxnSnapLog appends version-2 to both directories and creates them by default. Reference: Java
    FileTxnSnapLog constructor."""
    tsl = FileTxnSnapLog(tmp_path / "log", tmp_path / "snap")
    assert tsl.data_dir == tmp_path / "log" / "version-2" and tsl.data_dir.is_dir()
    assert tsl.snap_dir == tmp_path / "snap" / "version-2" and tsl.snap_dir.is_dir()


def test_missing_data_dir_without_autocreate(tmp_path):
    """With zookeeper.datadir.autocreate=false a missing directory is a DatadirException with Java's text.
    Reference: Java FileTxnSnapLog constructor (ZOOKEEPER-1161)."""
    opts = StorageOptions.from_properties({"zookeeper.datadir.autocreate": "false"})
    with pytest.raises(DatadirException) as e:
        FileTxnSnapLog(tmp_path / "log", tmp_path / "snap", opts)
    assert str(e.value) == (f"Missing data directory {tmp_path / 'log' / 'version-2'}, automatic data directory "
                            "creation is disabled (zookeeper.datadir.autocreate is false). Please create this "
                            "directory manually.")


def test_snapshots_in_log_dir_and_logs_in_snap_dir_are_refused(tmp_path):
    """When dataLogDir differs from dataDir, snapshots in the log dir or logs in the snapshot dir mean the two
    were swapped: refuse to start. Reference: Java FileTxnSnapLog.checkLogDir/checkSnapDir (ZOOKEEPER-2967)."""
    (tmp_path / "log" / "version-2").mkdir(parents=True)
    (tmp_path / "log" / "version-2" / "snapshot.0").write_bytes(b"")
    with pytest.raises(LogDirContentCheckException, match="Log directory has snapshot files"):
        FileTxnSnapLog(tmp_path / "log", tmp_path / "snap")
    (tmp_path / "log" / "version-2" / "snapshot.0").unlink()
    (tmp_path / "snap" / "version-2").mkdir(parents=True, exist_ok=True)
    (tmp_path / "snap" / "version-2" / "log.1").write_bytes(b"")
    with pytest.raises(SnapDirContentCheckException, match="Snapshot directory has log files"):
        FileTxnSnapLog(tmp_path / "log", tmp_path / "snap")
    FileTxnSnapLog(tmp_path / "snap", tmp_path / "snap")   # one directory for both is fine


# --- epoch files ---------------------------------------------------------------------------------

def test_epoch_file_format_is_decimal_without_newline(tmp_path):
    """acceptedEpoch/currentEpoch hold Long.toString(value), no newline, written via <name>.tmp and a rename.
    Reference: Java QuorumPeer.writeLongToFile, AtomicFileWritingIdiom."""
    write_long_to_file(tmp_path / "currentEpoch", 12)
    assert (tmp_path / "currentEpoch").read_bytes() == b"12"
    assert not (tmp_path / "currentEpoch.tmp").exists()
    assert read_long_from_file(tmp_path / "currentEpoch") == 12
    (tmp_path / "currentEpoch").write_text("7\n")
    assert read_long_from_file(tmp_path / "currentEpoch") == 7


@pytest.mark.parametrize("content,shown", [("", "null"), ("abc", "abc"), ("0x10", "0x10"), (" 5", " 5"),
                                           ("99999999999999999999", "99999999999999999999")])
def test_garbage_epoch_file_is_an_error(tmp_path, content, shown):
    """An epoch file that is not a decimal long fails with "Found <line> in <file>" (null for an empty file).
    Reference: Java QuorumPeer.readLongFromFile."""
    f = tmp_path / "acceptedEpoch"
    f.write_text(content)
    with pytest.raises(OSError) as e:
        read_long_from_file(f)
    assert str(e.value) == f"Found {shown} in {f}"


def test_epoch_rules_at_load(tmp_path):
    """Missing epoch files are created from the last zxid's epoch; acceptedEpoch < currentEpoch and a
    currentEpoch older than the last zxid are fatal, unless currentEpoch.tmp holds the newer value.
    Reference: Java QuorumPeer.loadDataBase."""
    assert load_epochs(tmp_path, (3 << 32) + 5) == (3, 3)
    assert (tmp_path / "acceptedEpoch").read_text() == "3" and (tmp_path / "currentEpoch").read_text() == "3"
    write_long_to_file(tmp_path / "acceptedEpoch", 2)
    with pytest.raises(OSError, match="^The accepted epoch, 2 is less than the current epoch, 3$"):
        load_epochs(tmp_path, 3 << 32)
    write_long_to_file(tmp_path / "acceptedEpoch", 0x20)
    with pytest.raises(OSError, match=f"^The current epoch, 3, is older than the last zxid, {0x1b << 32}$"):
        load_epochs(tmp_path, 0x1b << 32)
    (tmp_path / "currentEpoch.tmp").write_text("27")
    assert load_epochs(tmp_path, 0x1b << 32) == (0x20, 27)


# --- snapshot policy and options -------------------------------------------------------------------

def test_snapshot_policy_randomises_between_half_and_full_snap_count():
    """A snapshot is due after more than snapCount/2 + rand(snapCount/2) txns, or when the logged bytes pass
    snapSizeLimitInKb/2 + rand. Reference: Java SyncRequestProcessor.shouldSnapshot/resetSnapshotStats."""
    seen = set()
    for seed in range(200):
        p = SnapshotPolicy(snap_count=100, snap_size_bytes=-1, rng=random.Random(seed))
        first = next(n for n in range(1, 200) if p.should_snapshot(n, 0))
        assert 51 <= first <= 100
        seen.add(first)
    assert len(seen) > 10
    p = SnapshotPolicy(snap_count=100000, snap_size_bytes=1000, rng=random.Random(1))
    assert not p.should_snapshot(1, 499) and p.should_snapshot(1, 1000)
    assert SnapshotPolicy(snap_count=1).snap_count == 2


def test_options_from_java_system_properties():
    """The knobs read Java's system-property names, units and parsing. Reference: Java FilePadding,
    FileTxnLog, SnapStream, FileTxnSnapLog, ZooKeeperServer static initialisers."""
    o = StorageOptions.from_properties({"zookeeper.preAllocSize": "1024", "zookeeper.txnLogSizeLimitInKb": "10",
                                        "zookeeper.snapshot.compression.method": "GZ",
                                        "zookeeper.db.autocreate": "no", "zookeeper.snapCount": "x",
                                        "zookeeper.snapSizeLimitInKb": "0"})
    assert (o.prealloc_size, o.txn_log_size_limit, o.snapshot_compression) == (1 << 20, 10240, "gz")
    assert (o.db_autocreate, o.snap_count, o.snap_size_bytes, o.force_sync) == (False, 100000, -1, True)
    assert StorageOptions.from_properties({"zookeeper.snapshot.compression.method": "lz4"}).snapshot_compression == ""


# --- the toolkits' edge cases ----------------------------------------------------------------------

def test_txnlog_toolkit_errors_and_json(tmp_path):
    """zkTxnLogToolkit.sh: a missing file, a file without the ZKLG magic and bad options end with Java's
    messages and exit codes (1, 2, 1), never a traceback; --json is one parsable document. Reference: Java
    TxnLogToolkit (loadTxnFile, dump, parseCommandLine)."""
    import io, json
    from zkref.persistence import txnlog_main
    out, err = io.StringIO(), io.StringIO()
    assert txnlog_main([str(tmp_path / "nope")], stdout=out, stderr=err) == 1
    assert err.getvalue() == f"File doesn't exist or not readable: {tmp_path / 'nope'}\n"
    (tmp_path / "garbage").write_bytes(b"not a log at all")
    err = io.StringIO()
    assert txnlog_main([str(tmp_path / "garbage")], stdout=io.StringIO(), stderr=err) == 2
    assert err.getvalue() == "Invalid magic number for garbage\n"
    assert txnlog_main(["--bogus", "x"], stdout=io.StringIO(), stderr=io.StringIO()) == 1
    (tmp_path / "d").mkdir()
    write_log(tmp_path / "d", [1, 2, 3])
    out = io.StringIO()
    assert txnlog_main(["--json", str(tmp_path / "d" / "log.1")], stdout=out) == 0
    doc = json.loads(out.getvalue())
    assert doc["count"] == 3 and [t["zxid"] for t in doc["txns"]] == ["0x1", "0x2", "0x3"]
    assert doc["txns"][0]["txn"]["record"] == "CreateTxn" and doc["txns"][0]["txn"]["path"] == "/n1"


def test_txnlog_toolkit_recovery_mode_fixes_crc(tmp_path):
    """-r -y rewrites the log into <file>.fixed with recomputed checksums, which then reads cleanly.
    Reference: Java TxnLogToolkit recovery mode."""
    import io
    from zkref.persistence import txnlog_main
    write_log(tmp_path, [1, 2, 3])
    f = tmp_path / "log.1"
    data = bytearray(f.read_bytes())
    data[16 + _record_size(1) + 30] ^= 0xFF
    f.write_bytes(bytes(data))
    out = io.StringIO()
    assert txnlog_main(["-r", "-y", str(f)], stdout=out) == 0
    assert "CRC FIXED - " in out.getvalue()
    assert out.getvalue().endswith(f"Recovery file {f}.fixed has been written with 1 fixed CRC error(s)\n")
    fixed_dir = tmp_path / "fixed"
    fixed_dir.mkdir()
    shutil.copy(f.with_name("log.1.fixed"), fixed_dir / "log.1")
    assert len(list(FileTxnLog(fixed_dir, SMALL).read(0))) == 3
    assert txnlog_main(["-r", "-y", str(f)], stdout=io.StringIO(), stderr=io.StringIO()) == 1  # .fixed exists


def test_snapshot_toolkit_errors(tmp_path):
    """zkSnapShotToolkit.sh: usage and file errors exit 2 with Java's messages; an unreadable snapshot is a
    clear error, not a traceback. Reference: Java SnapshotFormatter.main, ZKUtil.validateFileInput."""
    import io
    from zkref.persistence import snapshot_main
    err = io.StringIO()
    assert snapshot_main([], stderr=err) == 2 and err.getvalue().startswith("USAGE: SnapshotFormatter [-d|-json]")
    err = io.StringIO()
    assert snapshot_main([str(tmp_path / "snapshot.1")], stderr=err) == 2
    assert err.getvalue() == f"File '{tmp_path / 'snapshot.1'}' does not exist.\n"
    err = io.StringIO()
    assert snapshot_main([str(tmp_path)], stderr=err) == 2
    assert err.getvalue() == f"'{tmp_path}' is a directory. it must be a file.\n"
    (tmp_path / "snapshot.2").write_bytes(b"ZKSN" + bytes(30))
    err = io.StringIO()
    assert snapshot_main(["-d", "-json", str(tmp_path / "snapshot.2")], stderr=err) == 2
    err = io.StringIO()
    assert snapshot_main([str(tmp_path / "snapshot.2")], stdout=io.StringIO(), stderr=err) == 1
    assert err.getvalue().startswith(f"Error reading snapshot {tmp_path / 'snapshot.2'}: ")


# --- damaged input never crashes or hangs ------------------------------------------------------------

def test_every_cut_of_a_log_reads_a_prefix(tmp_path):
    """Whatever length a crash leaves a log at, the reader returns the whole records before the cut, in
    order, and nothing else. Reference: Java FileTxnIterator.next, Util.readTxnBytes."""
    src = tmp_path / "src"
    src.mkdir()
    write_log(src, range(1, 6))
    raw = (src / "log.1").read_bytes()
    ends = [16]
    for z in range(1, 6):
        ends.append(ends[-1] + _record_size(z))
    cut_dir = tmp_path / "cut"
    cut_dir.mkdir()
    for cut in range(16, ends[-1] + 2):
        (cut_dir / "log.1").write_bytes(raw[:cut])
        whole = sum(1 for e in ends[1:] if e <= cut)
        assert zxids_in(cut_dir) == list(range(1, whole + 1)), cut


def test_random_damage_gives_a_prefix_or_a_clear_error(tmp_path):
    """Random byte damage in a log or a snapshot yields either a prefix of the txns or an OSError/JuteError
    with a message — never another exception, never a hang. Reference: Java FileTxnIterator.next,
    FileSnap.deserialize."""
    from hypothesis import given, settings, strategies as st, HealthCheck
    from zkref.persistence import RawSnapshot, SnapshotNode, parse_snapshot
    from zkref.jute import StatPersisted
    src = tmp_path / "src"
    src.mkdir()
    write_log(src, range(1, 6))
    raw = (src / "log.1").read_bytes()[:16 + sum(_record_size(z) for z in range(1, 6))]
    snap = RawSnapshot(sessions=[(5, 3000)], acls=[(1, WORLD)], zxid_digest=(3, 2, 99), nodes=[
        SnapshotNode(p, b"data", 1, StatPersisted(czxid=1)) for p in ("", "/a", "/a/b", "/c")]).to_bytes()
    work = tmp_path / "w"
    work.mkdir()

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4))
    def check(damage):
        log, s = bytearray(raw), bytearray(snap)
        for pos, value in damage:
            log[16 + pos % (len(log) - 16)] = value      # keep the file header: damage the records
            s[pos % len(s)] = value
        (work / "log.1").write_bytes(bytes(log))
        try:
            got = zxids_in(work)
            assert got == list(range(1, len(got) + 1))
        except (OSError, JuteError) as e:
            assert str(e)
        try:
            parse_snapshot(bytes(s))
        except (OSError, JuteError) as e:
            assert str(e)

    check()


def test_empty_log_file_stops_the_restore(tmp_path):
    """A log file cut before its 16-byte header (a crash right after creating it) is an I/O error, as Java's
    EOFException from the header read stops FileTxnSnapLog.restore. Reference: Java
    FileTxnIterator.createInputArchive/inStreamCreated."""
    write_log(tmp_path, [1, 2])
    (tmp_path / "log.3").write_bytes(b"ZKLG")
    with pytest.raises(OSError, match="ends inside its file header"):
        zxids_in(tmp_path)
