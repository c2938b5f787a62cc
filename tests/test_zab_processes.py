"""Three `python -m zkref zoo.cfg` server processes speaking Zab (conftest's `Ensemble`), driven by Java's
zkCli.sh and kazoo: the real start-up path (config, client port, election, the peer loop with Zab's roles).
"""
from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from conftest import Ensemble, wait_for

pytestmark = pytest.mark.timeout(180)
ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"


def zkcli(port: int, *cmd: str) -> str:
    out = subprocess.run([ZKCLI, "-server", f"127.0.0.1:{port}", *cmd], capture_output=True, text=True, timeout=90)
    return out.stdout + out.stderr


@pytest.mark.skipif(not Path(ZKCLI).exists(), reason="Debian's zookeeper package is not installed")
def test_zkref_processes_form_an_ensemble_java_clients_use_it_and_it_survives_a_killed_leader(tmp_path):
    """Three zkref server processes elect a leader and sync (srvr shows one leader, two followers); Java's
    zkCli.sh writes through a follower and reads through the leader; after SIGKILL of the leader the two
    others elect a new one in a higher epoch, keep every committed znode and take writes; the killed server
    restarts from its disk, follows, and catches up by DIFF.
    Reference: ZooKeeper Administrator's Guide, "Running Replicated ZooKeeper"; Java QuorumPeer.run,
    Leader.lead, Follower.followLeader, LearnerHandler.syncFollower"""
    e = Ensemble(tmp_path)
    try:
        e.start()
        leader = e.wait_formed(timeout=60)                      # one leader and two followers
        follower = next(i for i in (1, 2, 3) if i != leader)
        assert "Created /made-by-zkcli" in zkcli(e.client(follower), "create", "/made-by-zkcli", "hello")
        assert "hello" in zkcli(e.client(leader), "get", "/made-by-zkcli")

        e.stop(leader, signal.SIGKILL)
        rest = [i for i in (1, 2, 3) if i != leader]
        e.wait_formed(rest, timeout=60)                         # a new leader
        zk = KazooClient(hosts=e.hosts(rest), timeout=10)
        zk.start(timeout=30)
        try:
            zk.create("/after-the-kill", b"x")
            assert zk.get("/made-by-zkcli")[0] == b"hello"
            zxid = zk.exists("/after-the-kill").czxid
        finally:
            zk.stop()
            zk.close()
        assert zxid >> 32 >= 2                                   # a new epoch

        e.start(leader)
        wait_for(lambda: e.mode(leader) == "follower", 60, what="the old leader to follow")
        assert "Getting a diff from the leader" in e.log(leader)
        zk = KazooClient(hosts=e.hosts([leader]), timeout=10)
        zk.start(timeout=30)
        try:
            zk.sync("/")
            assert sorted(zk.get_children("/")) == ["after-the-kill", "made-by-zkcli", "zookeeper"]
        finally:
            zk.stop()
            zk.close()
    finally:
        e.stop_all()
