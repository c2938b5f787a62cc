"""Two-server ensembles with an oracle (`oraclePath`, Java 3.8's `QuorumOracleMaj`): each server reads a file
whose first character says whether it may go on alone. Server 1's says `0`, server 2's `1`. The same scenario runs
on Java 3.8 servers (the oracle of this test), zkref servers, and the two mixed pairs, and must end the same way:
the pair forms and serves; with server 1 killed, server 2 serves writes alone; server 1 comes back as a follower;
with server 2 killed, server 1 does not serve.
Reference: zookeeperOracleQuorums.md (3.8), QuorumOracleMaj, Leader.lead (overrideQuorumDecision),
FastLeaderElection.receivedLeadingNotification.
"""
from __future__ import annotations

import time

import pytest
from kazoo.client import KazooClient

from conftest import Ensemble, four_letter_word, java_available, wait_for

pytestmark = pytest.mark.timeout(300)

KINDS = {"zkref": ("zkref", "zkref")}
if java_available():
    KINDS = {"java": ("java", "java"), **KINDS, "java-zkref": ("java", "zkref"), "zkref-java": ("zkref", "java")}
ORACLE = {1: "0", 2: "1\n"}


class WithOracle(Ensemble):
    "Two voters, each with its own oracle file (`oraclePath`): server 1's says 0, server 2's 1."

    def __init__(self, root, kinds, **kw):
        super().__init__(root, kinds, **kw)
        self.oracles = {i: self.root / f"oracle{i}" for i in self.kinds}
        for i, s in self.servers.items():
            self.oracles[i].write_text(ORACLE[i])
            s.config["oraclePath"] = str(self.oracles[i])
            s.cfg_path.write_text("".join(f"{k}={v}\n" for k, v in s.config.items()))


def write(e: WithOracle, i: int, path: str, timeout: float = 30) -> None:
    "Create `path` through server `i`, retrying while the server is still finding its way."
    deadline = time.monotonic() + timeout
    while True:
        zk = KazooClient(hosts=e.hosts([i]), timeout=5, connection_retry={"max_tries": 0})
        try:
            zk.start(5)
            zk.create(path, b"oracle")
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
        finally:
            zk.stop()
            zk.close()


@pytest.mark.parametrize("name", list(KINDS))
def test_the_server_whose_oracle_says_one_goes_on_alone(name, tmp_path):
    """With two voters, a server left alone serves only if its oracle says `1`: server 2 (oracle `1`) leads and
    takes writes after server 1 is SIGKILLed, server 1 rejoins as a follower and sees them, and server 1
    (oracle `0`) left alone does not serve. Both servers log `Oracle is set to <path>` at start.
    Reference: Java QuorumOracleMaj.containsQuorum/overrideQuorumDecision/askOracle, Leader.lead"""
    e = WithOracle(tmp_path, KINDS[name])
    e.start()
    try:
        e.wait_formed(timeout=90)
        for i in e.ids:
            assert f"Oracle is set to {e.oracles[i]}" in e.log(i), i
        write(e, 1, "/both")

        e.stop(1, sig=9)                                    # server 2's oracle lets it go on
        write(e, 2, "/alone")
        assert e.mode(2) == "leader"

        e.start(1)                                          # back as a follower of server 2
        e.wait_formed(timeout=90)
        assert e.mode(1) == "follower"
        zk = KazooClient(hosts=e.hosts([1]), timeout=10)
        zk.start(30)
        try:
            zk.sync("/")
            assert zk.exists("/alone") and zk.exists("/both")
        finally:
            zk.stop()
            zk.close()

        e.stop(2, sig=9)                                    # server 1's oracle does not
        wait_for(lambda: e.mode(1) is None, 30, 0.2, what="server 1 to stop serving")
        time.sleep(3)                                       # several election time-outs: still nothing
        assert e.mode(1) is None
        assert "not currently serving requests" in four_letter_word(e.client(1), "srvr")
    finally:
        e.stop_all()
