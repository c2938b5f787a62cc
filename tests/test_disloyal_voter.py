"""A leader that waits for its epoch's quorum gives up early when a server that voted for it goes back to LOOKING
(`-Dzookeeper.leader.maxTimeToWaitForEpoch`, Java 3.8's `Leader.reportLookingSid`). Five voters are configured;
two real servers run (3 and 4, Java 3.8 or zkref) and a third voter, 5, is played by this test over the election
port: it votes for 4, which makes 4 the leader, never connects to 4's quorum port, and a moment later says it is
LOOKING again. Without it, 4 cannot gather a quorum (3 of 5) for its epoch.
"""
from __future__ import annotations

import socket
import struct
import time

import pytest

from conftest import Ensemble, java_available, wait_for
from zkref.quorum.cnxmanager import build_initial_message
from zkref.quorum.election_notifications import ServerState, build_msg

pytestmark = pytest.mark.timeout(300)

KINDS = ["java", "zkref"] if java_available() else ["zkref"]


class FakeVoter:
    "Server 5 on the election port: dials servers 3 and 4 (a higher id's dial is the one kept) and sends votes."

    def __init__(self, e: Ensemble, sid: int = 5):
        self.e, self.sid = e, sid
        self.config = ("".join(f"server.{j}=127.0.0.1:{q}:{el}:participant\n" for j, (q, el, _) in e.ports.items())
                       + "version=0").encode()
        self.socks: dict[int, socket.socket] = {}

    def connect(self, to: int) -> None:
        def dial():
            try:
                s = socket.create_connection(("127.0.0.1", self.e.ports[to][1]), timeout=5)
            except OSError:
                return None
            s.sendall(build_initial_message(self.sid, [("127.0.0.1", self.e.ports[self.sid][1])]))
            return s
        self.socks[to] = wait_for(dial, 30, 0.1, what=f"server {to}'s election port")

    def vote(self, state: ServerState, leader: int, election_epoch: int) -> None:
        msg = build_msg(state, leader, 0, election_epoch, 0, self.config)
        for s in self.socks.values():
            s.sendall(struct.pack(">i", len(msg)) + msg)

    def close(self) -> None:
        for s in self.socks.values():
            s.close()


@pytest.mark.parametrize("kind", KINDS)
def test_a_leader_quits_when_a_voter_of_its_election_looks_again(kind, tmp_path):
    """With `zookeeper.leader.maxTimeToWaitForEpoch=1000`, leader 4, still waiting for its epoch's quorum, hears
    voter 5 LOOKING again after more than a second: it logs `Quit leading due to voter changed mind.`, and its wait
    ends as a time-out would, long before `initLimit` × `tickTime` (10 s here) would have ended it: `lead()` throws,
    and QuorumPeer logs `Unexpected exception` with `java.lang.InterruptedException: Timeout while waiting for epoch
    from quorum` under it and shuts the leader down (`Shutdown called. For the reason Forcing shutdown`). Reference: Java Leader.reportLookingSid/quitLeading/getEpochToPropose,
    FastLeaderElection.Messenger.WorkerReceiver (self.leader.reportLookingSid), SyncedLearnerTracker.hasSid"""
    e = Ensemble(tmp_path, (kind,) * 5, initLimit=20, jvm_flags=["-Dzookeeper.leader.maxTimeToWaitForEpoch=1000"])
    fake = FakeVoter(e)
    e.start(3, 4)
    try:
        for i in (4, 3):
            fake.connect(i)
        fake.vote(ServerState.LOOKING, 4, 1)                # first round: 5 votes for 4, with 3 and 4 a quorum
        wait_for(lambda: "LEADING - LEADER ELECTION TOOK" in e.log(4), 60, 0.1, what="server 4 to lead")
        time.sleep(1.5)                                     # longer than maxTimeToWaitForEpoch
        sent = time.monotonic()
        fake.vote(ServerState.LOOKING, 5, 2)                # 5 changed its mind
        quit_line = "Quit leading due to voter changed mind."
        wait_for(lambda: quit_line in e.log(4), 8, 0.1, what="the leader to quit")
        assert time.monotonic() - sent < 8
        forced = "Shutdown called. For the reason Forcing shutdown"
        wait_for(lambda: forced in e.log(4), 10, 0.1, what="the leader to shut down")
        log = e.log(4)     # (Java's quitLeading logs its line after waking the leader, which may log first)
        lines = [line.split("] - ", 2)[-1] for line in log[log.index("LEADING - LEADER ELECTION TOOK"):].splitlines()
                 if not line.startswith("\tat ")]
        # Java: lead() throws; QuorumPeer.run logs it and shuts the leader down
        start = lines.index("Unexpected exception")
        assert lines[start + 1] == "java.lang.InterruptedException: Timeout while waiting for epoch from quorum", lines
        assert forced in lines[start:] and log.count(quit_line) == 1, lines
    finally:
        fake.close()
        e.stop_all()
