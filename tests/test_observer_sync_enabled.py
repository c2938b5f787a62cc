"""An observer's `syncEnabled`: with it false, the observer writes no txn log of its own.

Java's `ObserverZooKeeperServer` reads `QuorumPeer.getSyncEnabled()` (zoo.cfg `syncEnabled`, default true; the
system property `zookeeper.observer.syncEnabled` over it, logged), logs `syncEnabled =<value>` when it is made,
and only with it true has a `SyncRequestProcessor` (`setupRequestProcessors`) that `commitRequest` hands each
txn to. The same scenario runs on a Java 3.8 ensemble and a zkref one.
"""
from __future__ import annotations

import re

import pytest
from kazoo.client import KazooClient

from conftest import WithObserver, java_available, wait_for

pytestmark = pytest.mark.timeout(300)

KINDS = ["zkref", pytest.param("java", marks=pytest.mark.skipif(not java_available(), reason="needs Java 3.8"))]


def _txn_logs(e, i: int) -> list[str]:
    return sorted(p.name for p in (e.root / f"s{i}" / "data" / "version-2").glob("log.*"))


@pytest.mark.parametrize("how", ["zoo.cfg", "property", "default"])
@pytest.mark.parametrize("kind", KINDS)
def test_observer_without_sync_enabled_writes_no_txn_log(tmp_path, kind, how):
    """With `syncEnabled=false` in zoo.cfg, or `-Dzookeeper.observer.syncEnabled=false` (logged as
    `zookeeper.observer.syncEnabled=false`), the observer logs `syncEnabled =false`, serves every write made
    through the leader, and has no txn log file; the participants have theirs. By default it logs
    `syncEnabled =true` and has a txn log too.
    Reference: Java ObserverZooKeeperServer (constructor, setupRequestProcessors, commitRequest),
    QuorumPeer.getSyncEnabled; ZooKeeper Admin Guide, "syncEnabled\""""
    extra = {"syncEnabled": "false"} if how == "zoo.cfg" else {}
    flags = ["-Dzookeeper.observer.syncEnabled=false"] if how == "property" else []
    e = WithObserver(tmp_path / kind, (kind,) * 4, jvm_flags=flags, **extra)
    e.start()
    try:
        want = ["follower", "follower", "leader", "observer"]
        wait_for(lambda: e.modes() == want, 90, 0.2, what=f"a leader, 2 followers and the observer ({e.modes()})")
        leader = next(i for i in e.ids if e.mode(i) == "leader")
        zk = KazooClient(hosts=f"127.0.0.1:{e.client(leader)}", timeout=30)
        obs = KazooClient(hosts=f"127.0.0.1:{e.client(4)}", timeout=30)
        zk.start(30)
        obs.start(30)
        try:
            for n in range(20):
                zk.create(f"/n{n}", b"x")
            obs.sync("/")
            assert obs.exists("/n19") is not None
            assert len(obs.get_children("/")) == 21      # /zookeeper and the 20
        finally:
            for c in (zk, obs):
                c.stop()
                c.close()
        enabled = how == "default"
        lines = re.findall(r"ObserverZooKeeperServer@\d+\] - syncEnabled =(\w+)", e.log(4))
        assert lines == [str(enabled).lower()], lines
        prop_lines = re.findall(r"QuorumPeer@\d+\] - zookeeper\.observer\.syncEnabled=(\w+)", e.log(4))
        assert prop_lines == (["false"] if how == "property" else []), prop_lines
        for i in e.ids:
            if i != 4:
                assert _txn_logs(e, i), (i, "a participant logs its txns")
        wait_for(lambda: bool(_txn_logs(e, 4)) == enabled, 10, 0.2,
                 what=f"the observer's txn logs {_txn_logs(e, 4)} (syncEnabled {enabled})")
        assert bool(_txn_logs(e, 4)) == enabled, _txn_logs(e, 4)
    finally:
        e.stop_all()
