"""The lines a quorum role's server logs as the role ends, compared with Java 3.8's.

When a follower's leader goes away, Java's `Learner.shutdown` calls its server's `ZooKeeperServer.shutdown`, and
when a leader loses its quorum, `Leader.shutdown` calls `LeaderZooKeeperServer.shutdown`: the server logs
`shutting down`, stops its RequestThrottler (three lines, its thread runs whether the throttle is on or off), its
session tracker and its processors front to back, each with its line. Each test runs the same stop on a
3-server Java 3.8 ensemble and a zkref one and compares, in log order, the messages (no timestamps, thread names
or line numbers) of the role's classes between the role's first shutdown line and `Peer state changed: looking`.

Some of those lines come from threads that Java's stopping thread wakes but does not wait for (`…RequestProcessor
exited loop!`, `CommitProcessor exited loop!`, `SessionTrackerImpl exited loop!`): where they land among the
others depends on scheduling, so they are compared apart (each Java prints in the window, zkref prints too,
after the same processor's `Shutting down`). The RequestThrottler's and the leader's SyncThread's last lines
are waited for (`join`) and stay in the ordered comparison.
"""
from __future__ import annotations

import re

import pytest

from conftest import Ensemble, java_available, wait_for

pytestmark = pytest.mark.skipif(not java_available(), reason="needs Debian's Java ZooKeeper 3.8")

# `2026-01-01 00:00:00,000 [myid:1] - INFO  [thread:Class@123] - message`; a thread name may hold ':' and ']'
LINE = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ \[myid:\d*\] - \w+\s+\[.*:([\w$]+)@\d+\] - (.*)$")

# The classes whose lines a role's end is made of (the peer's own QuorumPeer lines end the window)
ROLE_CLASSES = {"Follower", "Observer", "ZooKeeperServer", "RequestThrottler", "SessionTrackerImpl",
                "FollowerRequestProcessor", "ObserverRequestProcessor", "LeaderRequestProcessor",
                "PrepRequestProcessor", "ProposalRequestProcessor", "CommitProcessor",
                "Leader$ToBeAppliedRequestProcessor", "FinalRequestProcessor", "SyncRequestProcessor"}
# Last lines of threads Java's stopping thread does not wait for: (class, message)
UNJOINED_EXITS = {("FollowerRequestProcessor", "FollowerRequestProcessor exited loop!"),
                  ("ObserverRequestProcessor", "ObserverRequestProcessor exited loop!"),
                  ("PrepRequestProcessor", "PrepRequestProcessor exited loop!"),
                  ("CommitProcessor", "CommitProcessor exited loop!"),
                  ("SessionTrackerImpl", "SessionTrackerImpl exited loop!")}
LOOKING = ("QuorumPeer", "Peer state changed: looking")


def entries(log: str) -> list[tuple[str, str]]:
    "(class, message) of each log line, in log order (continuation lines, e.g. stack traces, left out)."
    return [(m[1], m[2]) for m in map(LINE.match, log.splitlines()) if m]


def window(log: str, start: tuple[str, str]) -> list[tuple[str, str]]:
    "The role classes' lines from the first `start` line up to the `Peer state changed: looking` after it."
    es = entries(log)
    i = es.index(start)
    j = es.index(LOOKING, i)
    return [e for e in es[i:j + 1] if e[0] in ROLE_CLASSES or e == LOOKING]


def split(lines: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], set[tuple[str, str]]]:
    "The ordered lines, and the unjoined threads' last lines."
    return [e for e in lines if e not in UNJOINED_EXITS], {e for e in lines if e in UNJOINED_EXITS}


def assert_same_role_end(java: list[tuple[str, str]], zkref: list[tuple[str, str]]) -> None:
    (java_ordered, java_exits), (zkref_ordered, zkref_exits) = split(java), split(zkref)
    assert zkref_ordered == java_ordered, "\n".join(f"{a!r:90} | {b!r}" for a, b in zip(zkref_ordered, java_ordered))
    # Java's SessionTrackerImpl thread sleeps up to a tick before it sees it was stopped: its line may come later
    assert java_exits - {("SessionTrackerImpl", "SessionTrackerImpl exited loop!")} <= zkref_exits, (java_exits, zkref_exits)
    for cls, msg in zkref_exits:
        assert zkref.index((cls, "Shutting down")) < zkref.index((cls, msg)), (cls, msg)


def leader_stopped(root, kind: str) -> tuple[Ensemble, list[int]]:
    "A 3-server ensemble whose leader is stopped, once the other two have elected a new one; (ensemble, followers)."
    e = Ensemble(root / kind, (kind,) * 3)
    try:
        e.start()
        first = e.wait_formed()
        followers = [i for i in e.ids if i != first]
        e.stop(first)
        e.wait_formed(followers)
    finally:
        e.stop_all()
    return e, followers


def followers_stopped(root, kind: str) -> tuple[Ensemble, int]:
    "A 3-server ensemble whose two followers are stopped, once its leader has gone back to LOOKING; (ensemble, leader)."
    e = Ensemble(root / kind, (kind,) * 3)
    try:
        e.start()
        leader = e.wait_formed()
        for i in e.ids:
            if i != leader:
                e.stop(i)

        def looking_again():
            es = entries(e.log(leader))
            return any(c == "Leader" and m.startswith("Shutdown called.") for c, m in es) and \
                LOOKING in es[max(k for k, (c, m) in enumerate(es) if m.startswith("Shutdown called.")):]
        wait_for(looking_again, 60, 0.2, "the leader to lose its quorum")
    finally:
        e.stop_all()
    return e, leader


@pytest.fixture(scope="module")
def follower_logs(tmp_path_factory):
    root = tmp_path_factory.mktemp("leader_stopped")
    return {kind: leader_stopped(root, kind) for kind in ("java", "zkref")}


@pytest.fixture(scope="module")
def leader_logs(tmp_path_factory):
    root = tmp_path_factory.mktemp("followers_stopped")
    return {kind: followers_stopped(root, kind) for kind in ("java", "zkref")}


def test_follower_server_shutdown_lines_when_its_leader_goes_away(follower_logs):
    """A follower whose leader goes away logs `shutdown Follower`, then its FollowerZooKeeperServer's
    shutdown: `shutting down`, the RequestThrottler's `Shutting down`, `Draining request throttler queue` and
    `RequestThrottler shutdown. Dropped 0 requests`, then `Shutting down` from FollowerRequestProcessor and
    CommitProcessor and FinalRequestProcessor's `shutdown of request processor complete` (not its Sync: Learner
    calls ZooKeeperServer.shutdown(boolean), not the learner server's override), before the peer says `Peer
    state changed: looking`. zkref's two followers log the same lines in the same order as Java's.
    Reference: Java Learner.shutdown; ZooKeeperServer.shutdown(boolean); RequestThrottler.shutdown;
    FollowerRequestProcessor.shutdown; CommitProcessor.shutdown; FinalRequestProcessor.shutdown"""
    (java, java_followers), (zkref, zkref_followers) = follower_logs["java"], follower_logs["zkref"]
    start = ("Follower", "shutdown Follower")
    for j, z in zip(java_followers, zkref_followers):
        java_lines, zkref_lines = window(java.log(j), start), window(zkref.log(z), start)
        assert ("ZooKeeperServer", "shutting down") in java_lines      # the oracle saw a running server stop
        assert_same_role_end(java_lines, zkref_lines)


def test_leader_server_shutdown_lines_when_it_loses_its_quorum(leader_logs):
    """A leader whose two followers are stopped finds at its next tick that no quorum is synced and logs
    `Shutdown called. For the reason Not sufficient followers synced, only synced with sids: [ [<myid>] ]`,
    then its LeaderZooKeeperServer's shutdown: `shutting down`, the RequestThrottler's three lines, the session
    tracker's `Shutting down`, the chain front to back (LeaderRequestProcessor, PrepRequestProcessor,
    ProposalRequestProcessor, CommitProcessor, ToBeAppliedRequestProcessor, FinalRequestProcessor's `shutdown of
    request processor complete`), then SyncRequestProcessor's `Shutting down` and `SyncRequestProcessor
    exited!`, before `Peer state changed: looking`. zkref's leader logs the same lines in the same order.
    Reference: Java Leader.lead (quorum check), Leader.shutdown, LeaderZooKeeperServer.shutdown,
    ZooKeeperServer.shutdown, ProposalRequestProcessor.shutdown, SyncRequestProcessor.shutdown"""
    (java, jl), (zkref, zl) = leader_logs["java"], leader_logs["zkref"]

    def lines(log, myid):
        reason = f"Shutdown called. For the reason Not sufficient followers synced, only synced with sids: [ [{myid}] ]"
        return [e for e in window(log, ("Leader", reason)) if e[0] != "Leader"]   # the Leader's own lines: below
    java_lines, zkref_lines = lines(java.log(jl), jl), lines(zkref.log(zl), zl)
    assert ("SyncRequestProcessor", "SyncRequestProcessor exited!") in java_lines
    assert_same_role_end(java_lines, zkref_lines)


def test_observer_server_shutdown_lines_when_the_leader_goes_away(tmp_path):
    """An observer whose leader goes away logs `shutdown Observer`, then its ObserverZooKeeperServer's shutdown
    (ZooKeeperServer.shutdown(boolean), as a follower's): `shutting down`, the RequestThrottler's three lines,
    ObserverRequestProcessor's `Shutting down`, CommitProcessor's, and FinalRequestProcessor's `shutdown of
    request processor complete`. zkref's observer logs the same lines in the same order. (Its `Waiting for N ms
    before reconnecting with the leader` comes before `Peer state changed: looking`, Java's after: zkref waits
    the jitter at the end of the observer's shutdown, site/divergences.md, ObserverMaster row.)
    Reference: Java Observer.shutdown; Learner.shutdown; ZooKeeperServer.shutdown(boolean);
    ObserverRequestProcessor.shutdown"""
    from conftest import WithObserver
    found = {}
    for kind in ("java", "zkref"):
        e = WithObserver(tmp_path / kind, (kind,) * 4)
        try:
            e.start()
            leader = e.wait_formed([1, 2, 3])
            wait_for(lambda: e.mode(4) == "observer", 60, what="the observer to serve")
            e.stop(leader)
            def looking_again():
                es = entries(e.log(4))
                return ("Observer", "shutdown Observer") in es and LOOKING in es[es.index(("Observer", "shutdown Observer")):]
            wait_for(looking_again, 60, what="the observer to look for a leader again")
        finally:
            e.stop_all()
        found[kind] = [x for x in window(e.log(4), ("Observer", "shutdown Observer"))
                       if not x[1].startswith("Waiting for ")]
    assert ("ObserverRequestProcessor", "Shutting down") in found["java"]
    assert_same_role_end(found["java"], found["zkref"])


def test_leader_logs_shutting_down_once_when_it_loses_its_quorum(leader_logs):
    """Java's Leader.shutdown logs `Shutting down` and `Shutdown called. For the reason …` once as a leader
    loses its quorum: Leader.lead calls it, returns, and QuorumPeer.run sets its leader to null, so its
    `finally` does not call `shutdown("Forcing shutdown")` again.
    Reference: Java Leader.shutdown; QuorumPeer.run (case LEADING)"""
    got = {}
    for kind, (ens, leader) in leader_logs.items():
        es = entries(ens.log(leader))
        i = max(k for k, (c, m) in enumerate(es) if c == "Leader" and m.startswith("Shutdown called."))
        j = es.index(LOOKING, i)
        got[kind] = [m for c, m in es[i - 1:j] if c == "Leader"]
    assert got["java"][0] == "Shutting down" and len(got["java"]) == 2, got["java"]
    assert got["zkref"] == got["java"]
