"""Three `python -m zkref`-style server processes speaking Zab, driven by Java's zkCli.sh and kazoo.

Until QuorumPeer plays the Zab roles by default, each process is started through a three-line launcher
that sets `role_factories = zab_roles()` and then calls zkref's own `main` (the real start-up path:
config, client port, election, peer loop).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from conftest import four_letter_word, free_port, wait_for

pytestmark = pytest.mark.timeout(180)
ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
LAUNCHER = """
import sys
import zkref.quorum.peer as P
from zkref.quorum.learner import zab_roles
_init = P.QuorumPeer.__init__
def init(self, *a, **k):
    _init(self, *a, **k)
    self.role_factories = zab_roles()
P.QuorumPeer.__init__ = init
from zkref.main import main
sys.exit(main(sys.argv[1:]))
"""


class Ensemble:
    def __init__(self, root: Path):
        self.root = root
        self.ports = {i: (free_port(), free_port(), free_port()) for i in (1, 2, 3)}
        self.procs: dict[int, subprocess.Popen] = {}
        (root / "launch.py").write_text(LAUNCHER)
        for i in (1, 2, 3):
            d = root / f"s{i}"
            (d / "data").mkdir(parents=True)
            (d / "data" / "myid").write_text(f"{i}\n")
            lines = ["tickTime=500", "initLimit=10", "syncLimit=5", f"dataDir={d / 'data'}",
                     f"clientPort={self.client(i)}", "clientPortAddress=127.0.0.1", "4lw.commands.whitelist=*",
                     "admin.enableServer=false"]
            lines += [f"server.{j}=127.0.0.1:{q}:{e}" for j, (q, e, _) in self.ports.items()]
            (d / "zoo.cfg").write_text("\n".join(lines) + "\n")

    def client(self, i: int) -> int:
        return self.ports[i][2]

    def start(self, i: int) -> None:
        log = open(self.root / f"s{i}" / "out.log", "ab")
        self.procs[i] = subprocess.Popen([sys.executable, str(self.root / "launch.py"), str(self.root / f"s{i}" / "zoo.cfg")],
                                         stdout=log, stderr=subprocess.STDOUT, cwd=self.root)

    def mode(self, i: int) -> str | None:
        out = four_letter_word(self.client(i), "srvr")
        return out.split("Mode: ")[1].split()[0] if "Mode: " in out else None

    def stop(self, i: int, sig=signal.SIGTERM) -> None:
        p = self.procs.pop(i)
        p.send_signal(sig)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)

    def stop_all(self) -> None:
        for i in list(self.procs):
            self.stop(i)


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
        for i in (1, 2, 3):
            e.start(i)
        wait_for(lambda: sorted(str(e.mode(i)) for i in (1, 2, 3)) == ["follower", "follower", "leader"], 60,
                 what="one leader and two followers")
        leader = next(i for i in (1, 2, 3) if e.mode(i) == "leader")
        follower = next(i for i in (1, 2, 3) if i != leader)
        assert "Created /made-by-zkcli" in zkcli(e.client(follower), "create", "/made-by-zkcli", "hello")
        assert "hello" in zkcli(e.client(leader), "get", "/made-by-zkcli")

        e.stop(leader, signal.SIGKILL)
        rest = [i for i in (1, 2, 3) if i != leader]
        wait_for(lambda: sorted(str(e.mode(i)) for i in rest) == ["follower", "leader"], 60, what="a new leader")
        zk = KazooClient(hosts=",".join(f"127.0.0.1:{e.client(i)}" for i in rest), timeout=10)
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
        assert "Getting a diff from the leader" in (tmp_path / f"s{leader}" / "out.log").read_text()
        zk = KazooClient(hosts=f"127.0.0.1:{e.client(leader)}", timeout=10)
        zk.start(timeout=30)
        try:
            zk.sync("/")
            assert sorted(zk.get_children("/")) == ["after-the-kill", "made-by-zkcli", "zookeeper"]
        finally:
            zk.stop()
            zk.close()
    finally:
        e.stop_all()
