"""Durability of the standalone server: every acknowledged write survives SIGKILL; snapshots and log rolls
happen on the snapCount schedule; and the data directory is ZooKeeper's own, so the Java server starts from
what zkref wrote and zkref from what Java wrote."""
from __future__ import annotations

import threading

import pytest

from conftest import wait_for
from test_standalone_server import kazoo


def test_acknowledged_writes_survive_sigkill(zkref_zk):  # noqa: F811
    """A write is acknowledged only after its transaction is fsynced, so after SIGKILL and restart every
    acknowledged create is there (writes in flight at the kill may or may not be). Sessions survive too.
    Reference: Java SyncRequestProcessor (flush before FinalRequestProcessor), FileTxnLog.commit."""
    srv = zkref_zk({"forceSync": "yes"})
    k = kazoo(srv)
    k.ensure_path("/d")
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set() and i < 5000:
            futures = [k.create_async(f"/d/n{i + j}", b"v") for j in range(20)]
            for f in futures:
                try:
                    path = f.get(timeout=10)
                except Exception:
                    return
                with lock:
                    acked.append(path)
            i += 20

    t = threading.Thread(target=writer)
    t.start()
    wait_for(lambda: len(acked) >= 300, 60, what="300 acknowledged creates")
    srv.kill()
    stop.set()
    t.join(30)
    k.stop(); k.close()
    with lock:
        done = list(acked)
    srv.start()
    k2 = kazoo(srv)
    children = set(k2.get_children("/d"))
    missing = [p for p in done if p.rsplit("/", 1)[1] not in children]
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
    k2.stop(); k2.close()


def test_snapshots_and_log_rolls_on_snap_count(zkref_zk):  # noqa: F811
    """With snapCount=10 the server rolls the log and writes snapshot.<zxid> every 5..10 txns; a restart
    restores from the newest snapshot plus the log after it. Reference: Java SyncRequestProcessor.shouldSnapshot,
    FileTxnSnapLog.restore."""
    srv = zkref_zk({"snapCount": 10})
    k = kazoo(srv)
    for i in range(60):
        k.create(f"/s{i}", str(i).encode())
    k.stop(); k.close()
    v2 = srv.data_dir / "version-2"
    wait_for(lambda: len(list(v2.glob("snapshot.*"))) >= 4, 10, what="several snapshots")
    assert len(list(v2.glob("log.*"))) >= 4
    assert srv.stop() == 0
    srv.start()
    k = kazoo(srv)
    assert all(k.get(f"/s{i}")[0] == str(i).encode() for i in range(60))
    k.stop(); k.close()


@pytest.mark.java
def test_java_reads_what_zkref_wrote_and_back(tmp_path, java_zk, zkref_zk):  # noqa: F811
    """zkref's snapshot and txn log are ZooKeeper's format: the Java server started on zkref's data
    directory serves zkref's data, and zkref started on the Java server's directory serves Java's.
    Reference: Java FileTxnLog / FileSnap formats (reference notes §4)."""
    data = tmp_path / "shared-data"
    ours = zkref_zk({"dataDir": str(data)}, name="zkref1")
    k = kazoo(ours)
    k.create("/from-zkref", b"z", makepath=True)
    k.create("/from-zkref/child", b"c")
    k.set("/from-zkref", b"z2")
    k.stop(); k.close()
    assert ours.stop() == 0
    java = java_zk({"dataDir": str(data)}, name="java1")
    k = kazoo(java)
    assert k.get("/from-zkref")[0] == b"z2" and k.get_children("/from-zkref") == ["child"]
    k.create("/from-java", b"j")
    k.stop(); k.close()
    java.stop()
    assert "Digests are not matching" not in java.logs()       # zkref logs Java's TxnDigest with each txn
    again = zkref_zk({"dataDir": str(data)}, name="zkref2")
    k = kazoo(again)
    assert k.get("/from-java")[0] == b"j" and k.get("/from-zkref")[0] == b"z2"
    k.stop(); k.close()
    assert "Digests are not matching" not in again.logs()
