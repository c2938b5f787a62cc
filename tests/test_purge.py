"""Retention: zkref.purge keeps and deletes exactly the files Java's PurgeTxnLog keeps and deletes.

Data directories are built with real file names (and, for the interop test, by the real Java server with
a tiny snapCount); Java's own `org.apache.zookeeper.server.PurgeTxnLog` runs on a copy for comparison.
"""
from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import JAVA_CLASSPATH, java_available, wait_for
from zkref.purge import (COUNT_ERR_MSG, GZIP_MAGIC, SNAPPY_MAGIC, DatadirCleanupManager, DatadirException,
                         PurgeTaskStatus, find_n_valid_snapshots, get_log_files, get_zxid_from_name,
                         is_valid_snapshot, java_date_time, make_log_name, make_snapshot_name, purge, purge_main,
                         sort_data_dir)

SEALED = b"ZKSN" + (2).to_bytes(4, "big") + (1).to_bytes(8, "big") + (1).to_bytes(4, "big") + b"/"


def version2(root: Path) -> Path:
    d = root / "version-2"
    d.mkdir(parents=True, exist_ok=True)
    return d


def make_files(d: Path, snaps=(), logs=(), invalid_snaps=()) -> None:
    "Create sealed snapshots, invalid snapshots and (empty) log files with real names."
    for z in snaps:
        (d / make_snapshot_name(z)).write_bytes(SEALED)
    for z in invalid_snaps:
        (d / make_snapshot_name(z)).write_bytes(b"\x01")
    for z in logs:
        (d / make_log_name(z)).write_bytes(b"ZKLG")


def names(d: Path) -> set[str]:
    return {p.name for p in d.iterdir()}


def quiet_purge(*args, **kwargs):
    with contextlib.redirect_stdout(io.StringIO()):
        return purge(*args, **kwargs)


# ------------------------------------------------------------------------------------------ file names

def test_file_names_carry_hex_zxids():
    """Logs are `log.<hex>`, snapshots `snapshot.<hex>[.gz|.snappy]`, lowercase and unpadded; a name that is
    not `<prefix>.<hex>` has zxid -1.

    Reference: Java persistence.Util.makeLogName, makeSnapshotName, getZxidFromName
    """
    assert make_log_name(0x100000001) == "log.100000001"
    assert make_snapshot_name(0xABC) == "snapshot.abc" and make_snapshot_name(1, ".gz") == "snapshot.1.gz"
    assert get_zxid_from_name("snapshot.1f.snappy", "snapshot") == 0x1F
    for name, prefix in [("log.zz", "log"), ("snapshot.", "snapshot"), ("log.1", "snapshot"), ("acceptedEpoch", "log"),
                         ("log.ffffffffffffffffff", "log")]:
        assert get_zxid_from_name(name, prefix) == -1


def test_sort_data_dir_sorts_by_zxid_not_by_name():
    """Files sort by the zxid in their names, so `log.10` follows `log.9`.

    Reference: Java persistence.Util.sortDataDir
    """
    assert [p.name for p in sort_data_dir(["log.10", "log.9", "log.a"], "log")] == ["log.9", "log.a", "log.10"]
    assert [p.name for p in sort_data_dir(["log.10", "log.9"], "log", ascending=False)] == ["log.10", "log.9"]


@pytest.mark.parametrize("snap_zxid, expected", [
    (0x0, ["log.1", "log.5", "log.9"]),     # no log starts at or before 0: all logs
    (0x5, ["log.5", "log.9"]),
    (0x7, ["log.5", "log.9"]),              # log.5 may run past 7
    (0x20, ["log.9"]),
])
def test_get_log_files_keeps_the_log_that_overlaps_the_snapshot(snap_zxid, expected):
    """The logs needed after a snapshot are the newest one starting at or before its zxid, and all later ones.

    Reference: Java FileTxnLog.getLogFiles
    """
    assert [p.name for p in get_log_files(["log.9", "log.1", "log.5", "snapshot.3"], snap_zxid)] == expected


# ------------------------------------------------------------------------------------ snapshot validity

@pytest.mark.parametrize("name, content, valid", [
    ("snapshot.1", SEALED, True),
    ("snapshot.2", SEALED[:-1] + b"x", False),          # no `/` at the end
    ("snapshot.3", (1).to_bytes(4, "big") + b"/", False),  # shorter than 10 bytes
    ("snapshot.4.gz", GZIP_MAGIC + b"rest", True),
    ("snapshot.5.gz", b"\x1f", False),
    ("snapshot.6.snappy", SNAPPY_MAGIC + b"rest", True),
    ("snapshot.7.snappy", b"\x82SNAPP", False),
    ("snapshot.x", SEALED, False),                     # not a zxid
    ("other.8", SEALED, False),
])
def test_is_valid_snapshot(tmp_path, name, content, valid):
    """A plain snapshot is valid when at least 10 bytes long and ending in int 1 and `/`; `.gz` and `.snappy`
    snapshots when they start with their magic.

    Reference: Java SnapStream.isValidSnapshot
    """
    path = tmp_path / name
    path.write_bytes(content)
    assert is_valid_snapshot(path) is valid


def test_find_n_valid_snapshots_skips_invalid_and_non_snapshots(tmp_path):
    """The N most recent *valid* snapshots, newest first; logs and other files are never returned.

    Reference: Java FileSnap.findNValidSnapshots; PurgeTxnTest.testFindNValidSnapshots
    """
    d = version2(tmp_path)
    assert find_n_valid_snapshots(d, 1) == []
    make_files(d, snaps=range(0, 60, 2), logs=range(1, 60, 2), invalid_snaps=[100])
    (d / "snapshot.zz").write_bytes(SEALED)
    assert [p.name for p in find_n_valid_snapshots(d, 4)] == ["snapshot.3a", "snapshot.38", "snapshot.36", "snapshot.34"]
    found = find_n_valid_snapshots(d, 35)
    assert len(found) == 30 and all(p.name.startswith("snapshot.") for p in found)


# ------------------------------------------------------------------------------------------- purge rule

def test_purge_keeps_n_snapshots_and_the_logs_they_need(tmp_path):
    """Snapshots older than the N newest valid ones go, and so do the logs recovery from the oldest kept one
    does not need; newer files (even invalid snapshots) stay.

    Reference: Java PurgeTxnLog.purge, purgeOlderSnapshots; PurgeTxnTest.testSnapFilesGreaterThanToRetain
    """
    d = version2(tmp_path)
    make_files(d, snaps=[0x1, 0x5, 0x9, 0xD, 0x14], logs=[0x1, 0x3, 0x5, 0x8, 0x9, 0xD, 0x14], invalid_snaps=[0x20])
    removed = quiet_purge(tmp_path, tmp_path, 3)
    assert {p.name for p in removed} == {"snapshot.1", "snapshot.5", "log.1", "log.3", "log.5", "log.8"}
    assert names(d) == {"snapshot.9", "snapshot.d", "snapshot.14", "snapshot.20", "log.9", "log.d", "log.14"}


def test_purge_keeps_the_log_that_starts_before_the_oldest_kept_snapshot(tmp_path):
    """A log that starts before the oldest kept snapshot but may extend past it is kept.

    Reference: Java PurgeTxnTest.testPurgeDoesNotDeleteOverlappingLogFile, testSnapFilesEqualsToRetainWithPrecedingLog
    """
    d = version2(tmp_path)
    make_files(d, snaps=[0x10, 0x20, 0x30], logs=[0x1])
    assert quiet_purge(tmp_path, tmp_path, 3) == []
    assert names(d) == {"snapshot.10", "snapshot.20", "snapshot.30", "log.1"}


def test_purge_with_fewer_snapshots_than_count_deletes_nothing(tmp_path):
    """With no more valid snapshots than the count, nothing is old enough to delete.

    Reference: Java PurgeTxnTest.testSnapFilesLessThanToRetain, testSnapFilesEqualsToRetain
    """
    d = version2(tmp_path)
    make_files(d, snaps=[0x2, 0x4], logs=[0x1, 0x3])
    assert quiet_purge(tmp_path, tmp_path, 3) == []
    assert len(names(d)) == 4


def test_purge_when_recent_snapshots_are_all_invalid(tmp_path):
    """Invalid recent snapshots do not count: the three newest *valid* ones are kept, with the invalid newer ones.

    Reference: Java PurgeTxnTest.testPurgeTxnLogWhenRecentSnapshotsAreAllInvalid
    """
    data, logs = tmp_path / "dataDir", tmp_path / "dataLogDir"
    dv, lv = version2(data), version2(logs)
    make_files(dv, snaps=range(0, 7), invalid_snaps=range(7, 10))
    make_files(lv, logs=range(0, 10))
    assert purge_main([str(logs), str(data), "-n", "3"]) == 0
    assert len(names(dv)) == 6 and len(names(lv)) == 6


def test_purge_ignores_files_that_are_not_zookeepers(tmp_path):
    """Files ZooKeeper never writes (no `log.`/`snapshot.` prefix, or no hex zxid) are left alone. Java deletes
    `log.zz` and `snapshot.` (it reads them as zxid -1); zkref deliberately does not.

    Reference: Java PurgeTxnLog.purgeOlderSnapshots (MyFileFilter); zkref divergence
    """
    d = version2(tmp_path)
    make_files(d, snaps=[0x5, 0x6, 0x7, 0x8], logs=[0x5])
    for other in ["myid", "acceptedEpoch", "log.zz", "snapshot.", "notes.txt"]:
        (d / other).write_text("x")
    (d / "log.1").mkdir()
    quiet_purge(tmp_path, tmp_path, 3)
    assert names(d) == {"snapshot.6", "snapshot.7", "snapshot.8", "log.5", "myid", "acceptedEpoch", "log.zz",
                        "snapshot.", "notes.txt", "log.1"}


def test_purge_refuses_a_count_below_three(tmp_path):
    """Fewer than three snapshots is refused before anything is touched.

    Reference: Java PurgeTxnLog.purge ("count should be greater than or equal to 3")
    """
    with pytest.raises(ValueError, match=f"^{COUNT_ERR_MSG}$"):
        purge(tmp_path, tmp_path, 2)
    assert not (tmp_path / "version-2").exists()


def test_purge_prints_removing_file_lines(tmp_path, caplog):
    """Each deletion prints `Removing file: <date>\\t<path>` on stdout and logs the same line.

    Reference: Java PurgeTxnLog.purgeOlderSnapshots
    """
    caplog.set_level(logging.INFO)
    d = version2(tmp_path)
    make_files(d, snaps=[1, 2, 3, 4])
    os.utime(d / "snapshot.1", (0, 1_700_000_000))
    out = io.StringIO()
    purge(tmp_path, tmp_path, 3, out=out)
    line = f"Removing file: {java_date_time(1_700_000_000)}\t{d / 'snapshot.1'}"
    assert out.getvalue() == line + "\n" and line in caplog.text
    assert java_date_time(time.mktime((2026, 11, 26, 14, 46, 15, 0, 0, -1))) == "Nov 26, 2026, 2:46:15 PM"
    assert java_date_time(time.mktime((2026, 1, 2, 0, 5, 9, 0, 0, -1))) == "Jan 2, 2026, 12:05:09 AM"


def test_purge_refuses_swapped_directories(tmp_path):
    """When logs and snapshots live apart, a log dir holding snapshots (or the reverse) is an error, not a purge.

    Reference: Java FileTxnSnapLog.checkLogDir / checkSnapDir
    """
    logs, snaps = version2(tmp_path / "logs"), version2(tmp_path / "snaps")
    make_files(logs, snaps=[1, 2, 3, 4])
    with pytest.raises(DatadirException, match="^Log directory has snapshot files. Check if dataLogDir and dataDir"):
        purge(tmp_path / "logs", tmp_path / "snaps", 3)
    assert len(names(logs)) == 4


# --------------------------------------------------------------------------------------- command line

def run_java_purge(args: list[str]) -> tuple[int, str, str]:
    proc = subprocess.run(["java", "-Xmx64m", "-cp", JAVA_CLASSPATH, "org.apache.zookeeper.server.PurgeTxnLog", *args],
                          capture_output=True, text=True, timeout=60)
    err = "".join(line + "\n" for line in proc.stderr.splitlines() if not line.startswith("log4j:"))
    return proc.returncode, proc.stdout, err


def run_zkref_purge(args: list[str]) -> tuple[int, str, str]:
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(io.StringIO()) as err:
        code = purge_main(args)
    return code, out.getvalue(), err.getvalue()


USAGE_CASES = [
    ["only-one-arg"],
    ["$D", "-n"],
    ["$D", "-n", "x"],
    ["$D", "-n", "2"],
    ["$D", "-x", "3"],
    ["$D", "$D", "-n", "2"],
    ["$MISSING", "-n", "3"],
    ["$D", "$MISSING", "-n", "3"],
    ["a", "b", "c", "d", "e"],
]


@pytest.mark.parametrize("args", USAGE_CASES)
def test_purge_command_line_usage_errors(tmp_path, args):
    """Wrong arguments print Java's message (stderr) and usage (stdout) and exit with 1.

    Reference: Java PurgeTxnLog.main, printUsage, validateAndGetFile, validateAndGetCount
    """
    args = [a.replace("$D", str(tmp_path)).replace("$MISSING", str(tmp_path / "missing")) for a in args]
    code, out, err = run_zkref_purge(args)
    assert code == 1 and out.startswith("Usage:\nPurgeTxnLog dataLogDir [snapDir] -n count\n")
    if java_available():
        assert (code, out, err) == run_java_purge(args)


def test_purge_command_line_reports_a_bad_directory_without_a_traceback(tmp_path):
    """A data dir that cannot hold `version-2` (here: a plain file) is a one-line error and exit code 1.

    Reference: Java FileTxnSnapLog ("Unable to create data directory"); zkref: no stack traces for bad input
    """
    f = tmp_path / "file"
    f.write_text("x")
    code, out, err = run_zkref_purge([str(f), "-n", "3"])
    assert code == 1 and err.startswith(f"Purge failed: Unable to create data directory {f}/version-2") and "Traceback" not in err


@pytest.mark.java
@pytest.mark.slow
def test_purge_matches_java_on_a_java_server_data_dir(java_zk, tmp_path):
    """On a data dir the Java server wrote (many snapshots, via a tiny snapCount), zkref's purge keeps exactly
    the files Java's PurgeTxnLog keeps, prints the same lines, and the Java server restores every znode from it.

    Reference: Java PurgeTxnLog.main; SyncRequestProcessor (snapCount); FileTxnSnapLog.restore
    """
    kazoo = pytest.importorskip("kazoo.client")
    server = java_zk({"snapCount": 4})
    client = kazoo.KazooClient(hosts=f"127.0.0.1:{server.client_port}", timeout=10)
    client.start(timeout=15)
    try:
        for i in range(40):
            client.create(f"/n{i}", str(i).encode())
    finally:
        client.stop()
        client.close()
    server.stop()
    source = version2(server.data_dir)
    assert len([n for n in names(source) if n.startswith("snapshot.")]) > 5

    ours, theirs = tmp_path / "zkref-copy", tmp_path / "java-copy"
    shutil.copytree(server.data_dir, ours)
    shutil.copytree(server.data_dir, theirs)
    code, out, err = run_zkref_purge([str(ours), "-n", "3"])
    jcode, jout, jerr = run_java_purge([str(theirs), "-n", "3"])
    assert (code, err) == (jcode, jerr) == (0, "")
    assert names(ours / "version-2") == names(theirs / "version-2")
    assert set(out.replace(str(ours), "D").splitlines()) == set(jout.replace(str(theirs), "D").splitlines())
    assert out.count("Removing file:") > 0

    restored = java_zk({"dataDir": str(ours)}, name="restored")
    client = kazoo.KazooClient(hosts=f"127.0.0.1:{restored.client_port}", timeout=10)
    client.start(timeout=15)
    try:
        assert all(client.get(f"/n{i}")[0] == str(i).encode() for i in range(40))
    finally:
        client.stop()
        client.close()


# --------------------------------------------------------------------------------- the cleanup manager

def manager_dir(tmp_path: Path) -> Path:
    make_files(version2(tmp_path), snaps=[1, 2, 3, 4, 5], logs=[1, 2, 3, 4, 5])
    return tmp_path


def test_cleanup_manager_not_scheduled_for_zero_interval(tmp_path, caplog):
    """An interval of zero (or less) schedules nothing; shutting down what never started only warns.

    Reference: Java DatadirCleanupManager.start ("Purge task is not scheduled."), shutdown
    """
    caplog.set_level(logging.INFO)
    mgr = DatadirCleanupManager(manager_dir(tmp_path), tmp_path, 3, 0)
    mgr.start()
    mgr.shutdown()
    assert "autopurge.snapRetainCount set to 3" in caplog.text and "autopurge.purgeInterval set to 0" in caplog.text
    assert "Purge task is not scheduled." in caplog.text and "Purge task not started. Ignoring shutdown!" in caplog.text
    assert mgr.purge_task_status == PurgeTaskStatus.NOT_STARTED and len(names(tmp_path / "version-2")) == 10


def test_cleanup_manager_runs_at_start_and_then_periodically_on_the_loop(tmp_path, caplog):
    """Inside a running event loop the purge runs at once and then at a fixed rate, as a task named PurgeTask;
    a second start only warns; shutdown stops it.

    Reference: Java DatadirCleanupManager.start (Timer.scheduleAtFixedRate, delay 0), PurgeTask.run
    """
    caplog.set_level(logging.INFO)

    async def scenario():
        mgr = DatadirCleanupManager(manager_dir(tmp_path), tmp_path, 3, 1, period_s=0.05)
        with contextlib.redirect_stdout(io.StringIO()):
            mgr.start()
            mgr.start()
            assert any(t.get_name() == "PurgeTask" for t in asyncio.all_tasks())
            deadline = time.monotonic() + 10
            while mgr.runs < 3:
                assert time.monotonic() < deadline, "the purge task did not run three times"
                await asyncio.sleep(0.01)
        mgr.shutdown()
        return mgr

    mgr = asyncio.run(scenario())
    assert mgr.purge_task_status == PurgeTaskStatus.COMPLETED
    assert names(tmp_path / "version-2") == {"snapshot.3", "snapshot.4", "snapshot.5", "log.3", "log.4", "log.5"}
    assert "Purge task is already running." in caplog.text and caplog.text.count("Purge task completed.") >= 3
    assert "Shutting down purge task." in caplog.text


def test_cleanup_manager_without_a_loop_uses_a_daemon_thread(tmp_path, caplog):
    """Started outside an event loop, the purge runs on a daemon thread named PurgeTask, like Java's Timer;
    an error in a run is logged and the schedule goes on.

    Reference: Java DatadirCleanupManager.PurgeTask.run ("Error occurred while purging.")
    """
    caplog.set_level(logging.INFO)
    mgr = DatadirCleanupManager(tmp_path / "file", tmp_path / "file", 3, 1, period_s=0.02)
    (tmp_path / "file").write_text("not a directory")
    mgr.start()
    try:
        wait_for(lambda: mgr.runs >= 2, 10, what="two purge runs")
    finally:
        mgr.shutdown()
    assert "Error occurred while purging." in caplog.text and mgr._thread.daemon and mgr._thread.name == "PurgeTask"


def test_cleanup_manager_accepts_no_directories(caplog):
    """Without a config file there are no directories; the manager is built and, with interval 0, not scheduled.

    Reference: Java QuorumPeerMain.initializeAndRun (DatadirCleanupManager with config.getDataDir() == null)
    """
    caplog.set_level(logging.INFO)
    DatadirCleanupManager(None, None, 3, 0).start()
    assert "Purge task is not scheduled." in caplog.text


def test_purge_now_runs_once_synchronously(tmp_path):
    """`purge_now` is one run of the task, for callers that schedule it themselves.

    Reference: Java DatadirCleanupManager.PurgeTask.run
    """
    mgr = DatadirCleanupManager(manager_dir(tmp_path), tmp_path, 3, 0)
    with contextlib.redirect_stdout(io.StringIO()):
        mgr.purge_now()
    assert mgr.runs == 1 and len(names(tmp_path / "version-2")) == 6
