"""A commit that fails to apply on a quorum server stops that server's role, as Java 3.8's does: Final runs in the
CommitProcessor's thread, a ZooKeeperCriticalThread, so its exception is logged ("Severe unrecoverable error, from
thread : CommitProcessor:<myid>", "Thread CommitProcessor:<myid> exits, error code 1"), counted in
unrecoverable_error_count, and puts the server in ERROR; the leader's loop then steps down ("Unexpected internal
error"), a follower's or observer's loop ends, and the peer goes back to LOOKING, brings its tree up to its log and
syncs again. The rest of the ensemble keeps serving, and the failed server has every acknowledged write when it
serves again and after a restart.

No client input is known to make Final fail, so the fault is injected: each zkref server runs through a launcher
that makes FinalRequestProcessor raise once, on the setData of /fail-<myid>.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from kazoo.client import KazooClient

import conftest
from conftest import four_letter_word, wait_for

pytestmark = pytest.mark.timeout(300)

LAUNCHER = """\
import sys
from pathlib import Path
from zkref.proto import OpCode
from zkref.server import final_request_processor as F
MYID, MARKER = sys.argv[1], Path(sys.argv[2])
_real = F.FinalRequestProcessor.process_request
def process_request(self, request):
    txn = request.txn
    if (request.type == OpCode.setData and getattr(txn, "path", None) == "/fail-" + MYID
            and not MARKER.exists()):
        MARKER.write_text("fired")                  # once: not again after the role or the process restarts
        raise RuntimeError("injected fault")
    return _real(self, request)
F.FinalRequestProcessor.process_request = process_request
from zkref.main import main
sys.exit(main(sys.argv[3:]))
"""


class Ensemble(conftest.Ensemble):
    "Three zkref participants and a zkref observer (server 4), each run through LAUNCHER."

    def __init__(self, root: Path):
        (root / "launch.py").write_text(LAUNCHER)
        super().__init__(root, ("zkref",) * 4)
        for i, s in self.servers.items():
            s.config["server.4"] = f"{s.config['server.4']}:observer"
            if i == 4:
                s.config["peerType"] = "observer"
            s.cfg_path.write_text("".join(f"{k}={v}\n" for k, v in s.config.items()))

    def zkref_args(self, i: int) -> list[str]:
        return [str(self.root / "launch.py"), str(i), str(self.root / f"s{i}" / "fault-fired")]

    def serving(self) -> list[str]:
        return sorted(str(self.mode(i)) for i in self.procs)


FORMED = ["follower", "follower", "leader", "observer"]


def mntr(port: int) -> dict[str, str]:
    out = four_letter_word(port, "mntr")
    return {k[3:]: v for k, v in (line.split("\t", 1) for line in out.splitlines() if "\t" in line)}


def client(port: int) -> KazooClient:
    zk = KazooClient(hosts=f"127.0.0.1:{port}", timeout=30)
    zk.start(30)
    return zk


def read_all(port: int, paths) -> dict[str, bytes]:
    "Each path's data as the server on `port` has it, after a sync (so it has seen every commit before)."
    zk = client(port)
    try:
        zk.sync("/")
        return {p: zk.get(p)[0] for p in paths}
    finally:
        zk.stop()
        zk.close()


@pytest.mark.parametrize("role", ["follower", "leader", "observer"])
def test_a_commit_that_fails_to_apply(tmp_path, role):
    """Final raises on one committed setData on a zkref `role`: that server logs Java's two lines and counts
    unrecoverable_error_count once, its role ends (a leader with "Shutdown called. For the reason Unexpected
    internal error") and it goes back to LOOKING; the rest keep serving: the setData and later writes through
    another server are acknowledged. The failed server rejoins with every acknowledged write (the failed txn
    comes from its own log), and has them again after a restart.
    Reference: CommitProcessor.run (catch Throwable → handleException), ZooKeeperCriticalThread.handleException,
    ZooKeeperServerListenerImpl.notifyStopping, Leader.lead (!isRunning() → "Unexpected internal error"),
    Follower.followLeader / Observer.observeLeader (while isRunning()), QuorumPeer.run, ZooKeeperServer.shutdown
    (fastForwardDataBase)"""
    e = Ensemble(tmp_path)
    e.start()
    try:
        wait_for(lambda: e.serving() == FORMED, 90, 0.2, what=f"the ensemble ({e.serving()})")
        target = next(i for i in e.ids if e.mode(i) == role)
        other = next(i for i in e.ids if i != target and e.mode(i) == "follower")
        zk = client(e.client(other))
        acked = {}
        try:
            for p in ("/before", f"/fail-{target}"):
                zk.create(p, b"old")
                acked[p] = b"old"
            zk.set(f"/fail-{target}", b"new")                       # acknowledged: a quorum applied it
            acked[f"/fail-{target}"] = b"new"
            log = lambda: e.log(target)                             # noqa: E731
            wait_for(lambda: "Thread CommitProcessor:%d exits, error code 1" % target in log(), 30,
                     what="the commit processor's death")
            thread = r"CommitProcessor:%d" % target                 # Java logs both lines on that thread
            assert re.search(r"ERROR \[%s:ZooKeeperCriticalThread@\d+\] - Severe unrecoverable error, from thread : "
                             r"%s\nRuntimeError: injected fault" % (thread, thread), log()), log()[-3000:]
            assert re.search(r"INFO  \[%s:ZooKeeperServerListenerImpl@\d+\] - Thread %s exits, error code 1"
                             % (thread, thread), log())
            if role == "leader":
                wait_for(lambda: "Shutdown called. For the reason Unexpected internal error" in log(), 30,
                         what="the leader stepping down")
            wait_for(lambda: log().count("PeerState set to LOOKING") >= 1, 30, what="the peer back to LOOKING")
            if role != "leader":                                    # the loop's isRunning() ends it: no exception
                assert "Exception when following the leader" not in log(), log()[-3000:]
            # the rest keep serving (a new leader is elected if the leader failed)
            for k in range(3):
                p = f"/after{k}"
                zk.retry(zk.create, p, b"x")
                acked[p] = b"x"
        finally:
            zk.stop()
            zk.close()
        wait_for(lambda: e.serving() == FORMED, 90, 0.2, what=f"the failed server back ({e.serving()})")
        assert mntr(e.client(target))["unrecoverable_error_count"] == "1"
        assert read_all(e.client(target), acked) == acked
        # and after a restart, from its own disk and the leader
        e.stop(target)
        e.start(target)
        wait_for(lambda: e.serving() == FORMED, 90, 0.2, what=f"the restarted server ({e.serving()})")
        assert read_all(e.client(target), acked) == acked
        assert "Traceback" not in e.log(target)
    finally:
        e.stop_all()
