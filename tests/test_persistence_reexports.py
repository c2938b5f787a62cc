"""Old import paths after the splits of chapters 07b2 (snapshots) and 07b (persistence): every name that moved
to 07b21/07b22 or 07b_persistence1/2 is still importable from zkref.snapshots and zkref.persistence, as the
very object of its new home, and FileTxnSnapLog has its restore methods whichever module is imported first."""
import importlib
import subprocess
import sys

import pytest

#: old module -> {new home: the names that moved there}
MOVED = {
    "zkref.snapshots": {
        "zkref.snap_stream": ["STREAM_LOG", "read_snapshot_stream", "check_seal", "seal", "write_snapshot_file"],
        "zkref.snapshot_format": ["java_long_hash", "java_hash_order", "java_session_order", "serialize_snapshot",
                                  "deserialize_snapshot", "snapshot_bytes", "SnapshotNode", "RawSnapshot",
                                  "parse_snapshot"]},
    "zkref.persistence": {
        "zkref.persistence_epochs": ["CURRENT_EPOCH_FILENAME", "ACCEPTED_EPOCH_FILENAME", "QP_LOG",
                                     "read_long_from_file", "write_long_to_file", "load_epochs"]},
}


@pytest.mark.parametrize("old", sorted(MOVED))
def test_moved_names_are_the_objects_of_their_new_home(old):
    """`from old import name` gives the object defined in the new chapter, and `import *` still gives every
    moved name, as before the split. Reference: CONTRIBUTING.md "Shape of a chapter" (old import paths keep
    working through re-exports)"""
    module = importlib.import_module(old)
    star = {}
    exec(f"from {old} import *", star)
    for home, names in MOVED[old].items():
        new = importlib.import_module(home)
        for name in names:
            assert getattr(module, name) is getattr(new, name), f"{old}.{name} is not {home}.{name}"
            assert star[name] is getattr(new, name), f"`from {old} import *` lacks {name}"


@pytest.mark.parametrize("first", ["zkref.persistence", "zkref.persistence_restore", "zkref.zkdatabase"])
def test_file_txn_snap_log_has_restore_whichever_module_comes_first(first, tmp_path):
    """A new server's empty data directory restores to zxid 0 and gets snapshot.0, whichever module a program
    imports first: the restore methods of chapter 07b_persistence1 are on every FileTxnSnapLog.
    Reference: Java FileTxnSnapLog.restore"""
    program = (f"import sys, {first}; from zkref.persistence import FileTxnSnapLog; from zkref.datatree import DataTree\n"
               f"tsl = FileTxnSnapLog(sys.argv[1], sys.argv[1])\n"
               f"print(tsl.restore(DataTree(), {{}}), sorted(p.name for p in tsl.snap_dir.iterdir()))\n"
               f"tsl.close()")
    run = subprocess.run([sys.executable, "-c", program, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout == "0 ['snapshot.0']\n", run.stderr
