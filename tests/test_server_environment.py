"""The banner and `Server environment:` lines: where a server prints them, and how often.

Java prints them from a `static` block of `ZooKeeperServer` (with the values of a few switches), so once per
JVM, when the class is first used: on the standalone road at `new ZooKeeperServer(...)` in
`ZooKeeperServerMain.runFromConfig`, on the quorum road at `new ZKDatabase(...)` in
`QuorumPeerMain.runFromConfig` (its DataTree asks `ZooKeeperServer.isDigestEnabled()`), and never again when
a peer's role makes a new server. Each test runs Java 3.8 and zkref the same way and compares their logs in
log order (never timestamps).
"""
from __future__ import annotations

import re

import pytest

from conftest import Ensemble, JavaZooKeeper, ZkrefServer, java_available

pytestmark = pytest.mark.skipif(not java_available(), reason="needs Debian's Java ZooKeeper 3.8")

# `2026-01-01 00:00:00,000 [myid:1] - INFO  [thread:Class@123] - message`; a thread name may hold ':' and ']'
LINE = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ \[myid:\d*\] - \w+\s+\[.*:([\w$]+)@\d+\] - (.*)$")

# Lines of ZooKeeperServer's two static blocks other than the banner and the environment (Java prints the
# ones whose switch is on or that it always prints; zkref leaves out the settings it does not read)
STATIC_SWITCHES = ("zookeeper.enableEagerACLCheck = ", 'zookeeper.skipACL=="yes"', "zookeeper.enforceQuota = ",
                   "zookeeper.digest.enabled = ", "zookeeper.closeSessionTxn.enabled = ", "zookeeper.flushDelay = ",
                   "zookeeper.maxWriteQueuePollTime = ", "zookeeper.maxBatchSize=",
                   "zookeeper.intBufferStartingSizeBytes = ")


def entries(log: str) -> list[tuple[str, str]]:
    "(class, message) of each log line, in log order (continuation lines, e.g. stack traces, left out)."
    return [(m[1], m[2]) for m in map(LINE.match, log.splitlines()) if m]


def in_static_block(entry: tuple[str, str]) -> bool:
    cls, msg = entry
    return (cls == "ZookeeperBanner" or msg.startswith("Server environment:")
            or (cls == "ZooKeeperServer" and msg.startswith(STATIC_SWITCHES)))


def static_block(log: str, other: str) -> dict:
    """The static block of `log` and its neighbours: the line before the banner, and the first line after the
    block that `other` (the other implementation's log) prints too."""
    es = entries(log)
    known = set(entries(other))
    start = next(i for i, e in enumerate(es) if e[0] == "ZookeeperBanner")
    end = start
    while end < len(es) and in_static_block(es[end]):
        end += 1
    return {"before": es[start - 1],
            "after": next(e for e in es[end:] if e in known),
            "banner": [msg for cls, msg in es[start:end] if cls == "ZookeeperBanner"],
            "first_env": next(msg for _, msg in es[start:end] if msg.startswith("Server environment:")),
            "switches": [msg for cls, msg in es[start:end] if cls == "ZooKeeperServer"]}


def assert_same_placement(java_log: str, zkref_log: str) -> None:
    java, zkref = static_block(java_log, zkref_log), static_block(zkref_log, java_log)
    assert zkref["before"] == java["before"], (zkref["before"], java["before"])
    assert zkref["after"] == java["after"], (zkref["after"], java["after"])
    assert zkref["banner"] == java["banner"]
    assert zkref["first_env"].startswith("Server environment:zookeeper.version=3.8")
    assert java["first_env"].startswith("Server environment:zookeeper.version=3.8")
    # zkref's switch lines are Java's, in Java's order, less the settings it does not read
    assert zkref["switches"] == [s for s in java["switches"] if s in zkref["switches"]]
    assert zkref["switches"] == ["zookeeper.enableEagerACLCheck = false", "zookeeper.digest.enabled = true",
                                 "zookeeper.closeSessionTxn.enabled = true", "zookeeper.flushDelay = 0 ms",
                                 "zookeeper.maxWriteQueuePollTime = 0 ms", "zookeeper.maxBatchSize=1000",
                                 "zookeeper.intBufferStartingSizeBytes = 1024"]


def count(log: str, cls: str, prefix: str) -> int:
    return sum(1 for c, msg in entries(log) if c == cls and msg.startswith(prefix))


def assert_once(log: str) -> None:
    "The banner, the environment, the static switches and the ACL digest algorithm: once each."
    assert count(log, "ZookeeperBanner", "  ______") == 1
    assert count(log, "Environment", "Server environment:zookeeper.version=") == 1
    assert count(log, "ZooKeeperServer", "zookeeper.digest.enabled = ") == 1
    assert count(log, "DigestAuthenticationProvider", "ACL digest algorithm is: ") == 1
    assert count(log, "ZKAuditProvider", "ZooKeeper audit is ") == 1


def test_standalone_prints_the_static_block_where_java_does(tmp_path):
    """Standalone: Java first uses ZooKeeperServer at `new ZooKeeperServer(...)`, right after the
    FileTxnSnapLog line (`zookeeper.snapshot.trust.empty`): the banner, the environment and the switches
    follow it, and the constructor's first line (BlueThrottle's) follows them. zkref prints the same lines in
    the same places, each once (the audit provider's line comes later, after the ContainerManager's).
    Reference: Java ZooKeeperServer static initializer; ZooKeeperServerMain.runFromConfig"""
    logs = {}
    for cls in (JavaZooKeeper, ZkrefServer):
        server = cls(tmp_path / cls.kind).start()
        server.stop()
        logs[cls.kind] = server.logs()
    assert_same_placement(logs["java"], logs["zkref"])
    for kind, log in logs.items():
        assert_once(log)
        es = entries(log)
        audit = es.index(("ZKAuditProvider", "ZooKeeper audit is disabled."))
        assert es[audit - 1][0] == "ContainerManager", (kind, es[audit - 1])


def run_ensemble_with_role_change(root, kind: str) -> tuple[Ensemble, int, int]:
    """Form a three-server ensemble, stop its leader, wait until one of the two followers leads; return the
    stopped ensemble, the first leader's id and the new leader's."""
    e = Ensemble(root / kind, (kind,) * 3)
    try:
        e.start()
        first = e.wait_formed()
        e.stop(first)
        second = e.wait_formed([i for i in e.ids if i != first])
    finally:
        e.stop_all()
    return e, first, second


@pytest.fixture(scope="module")
def ensembles(tmp_path_factory):
    root = tmp_path_factory.mktemp("ensembles")
    return {kind: run_ensemble_with_role_change(root, kind) for kind in ("java", "zkref")}


def test_quorum_prints_the_static_block_where_java_does(ensembles):
    """Quorum: Java first uses ZooKeeperServer at `new ZKDatabase(...)` in QuorumPeerMain.runFromConfig
    (DataTree → NodeHashMapImpl → ZooKeeperServer.isDigestEnabled), after the peer's setters
    (`connectToLearnerMasterLimit set to 0`) and before ZKDatabase's `zookeeper.snapshotSizeFactor`, long
    before any role makes a server. zkref prints the banner, environment and switches in that place.
    Reference: Java ZooKeeperServer static initializer; QuorumPeerMain.runFromConfig; NodeHashMapImpl"""
    java, zkref = ensembles["java"][0], ensembles["zkref"][0]
    for i in java.ids:
        assert_same_placement(java.log(i), zkref.log(i))


def test_quorum_prints_the_static_block_once_across_role_changes(ensembles):
    """A follower that becomes leader makes a new ZooKeeperServer (a LeaderZooKeeperServer), but the JVM has
    loaded the class already: Java prints the banner, the environment, the switches, the ACL digest algorithm
    and the audit line once per process, and so does zkref, on every server of the ensemble.
    Reference: Java ZooKeeperServer static initializer (once per JVM); QuorumPeer.run (makeFollower, makeLeader)"""
    for kind, (ens, _, new_leader) in ensembles.items():
        log = ens.log(new_leader)
        es = entries(log)
        following = es.index(("QuorumPeer", "FOLLOWING"))
        assert ("QuorumPeer", "LEADING") in es[following:], (kind, "the new leader did not follow first")
        for i in ens.ids:
            assert_once(ens.log(i))


THREADED = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ \[myid:\d*\] - \w+\s+\[(.*):([\w$]+)@\d+\] - (.*)$")


def peer_thread_entries(log: str) -> list[tuple[str, str]]:
    "(class, message) of the lines the peer's own thread (`QuorumPeer[myid=…]…`) logs, in log order."
    return [(m[2], m[3]) for m in map(THREADED.match, log.splitlines()) if m and m[1].startswith("QuorumPeer[myid=")]


def throttler_start(log: str, myid: int, other: str, other_myid: int) -> tuple[int, tuple[str, str]]:
    """How many times `log` (server `myid`'s) has RequestThrottler's start line, and the line of the peer's thread
    before the first one that `other` (server `other_myid`'s, of the other implementation) prints too. Lines of other
    threads (LearnerHandlers syncing a late follower, Prep's own `started`, the harness's four-letter words) are not
    ordered against the peer thread's in Java, so they are left out."""
    es, known = peer_thread_entries(log), set(peer_thread_entries(other))
    starts = [i for i, (c, m) in enumerate(es) if c == "RequestThrottler" and m.startswith(
        "zookeeper.request_throttler.shutdownTimeout = ")]
    before = next(e for e in reversed(es[:starts[0]]) if e in known)
    return len(starts), before


def test_quorum_request_throttler_start_line_once_where_java_prints_it(ensembles):
    """A quorum server's first role starts the RequestThrottler thread (startupWithServerState): a leader after
    its processors, a follower at NEWLEADER after `Initialized FollowerRequestProcessor …`; its class logs
    `zookeeper.request_throttler.shutdownTimeout = 10000 ms` then, and not again when the next role starts
    another. zkref prints it once, after the same line, for the first leader, the follower that became leader
    and the follower that stayed one.
    Reference: Java RequestThrottler static initializer; ZooKeeperServer.startupWithServerState; Learner.syncWithLeader"""
    (java, jl, jn), (zkref, zl, zn) = ensembles["java"], ensembles["zkref"]
    j_other = next(i for i in java.ids if i not in (jl, jn))
    z_other = next(i for i in zkref.ids if i not in (zl, zn))
    for j, z in ((jl, zl), (jn, zn), (j_other, z_other)):
        jlog, zlog = java.log(j), zkref.log(z)
        assert throttler_start(zlog, z, jlog, j) == throttler_start(jlog, j, zlog, z), (j, z)
        assert throttler_start(jlog, j, zlog, z)[0] == 1


def test_quorum_prep_request_processor_start_line_names_the_myid(ensembles):
    """A leader's PrepRequestProcessor logs `PrepRequestProcessor (sid:<myid>) started, reconfigEnabled=false`:
    its server is a LeaderZooKeeperServer, whose getServerId is the peer's id (a standalone server's is 0). Every
    leader of the ensemble prints its own id, on Java and zkref alike; a follower has no Prep and prints none.
    Reference: Java PrepRequestProcessor.run; LeaderZooKeeperServer.getServerId; ZooKeeperServer.getServerId"""
    for kind, (ens, first, second) in ensembles.items():
        for i in ens.ids:
            preps = [m for c, m in entries(ens.log(i)) if c == "PrepRequestProcessor" and "started" in m]
            want = [f"PrepRequestProcessor (sid:{i}) started, reconfigEnabled=false"] * (i in (first, second))
            assert preps == want, (kind, i, first, second, preps)


def test_standalone_prep_request_processor_start_line_says_sid_0(tmp_path):
    """A standalone server's PrepRequestProcessor logs `PrepRequestProcessor (sid:0) started,
    reconfigEnabled=false`: a plain ZooKeeperServer's getServerId is 0. Java and zkref print the same line once.
    Reference: Java PrepRequestProcessor.run; ZooKeeperServer.getServerId"""
    for cls in (JavaZooKeeper, ZkrefServer):
        server = cls(tmp_path / cls.kind).start()
        server.stop()
        preps = [m for c, m in entries(server.logs()) if c == "PrepRequestProcessor" and "started" in m]
        assert preps == ["PrepRequestProcessor (sid:0) started, reconfigEnabled=false"], (cls.kind, preps)



def test_static_block_lines_follow_the_properties_and_refuse_a_small_buffer(tmp_path):
    """ZooKeeperServer's second static block logs what it read: `zookeeper.flushDelay = <D> ms`,
    `zookeeper.maxWriteQueuePollTime = <P> ms` (default D/3), `zookeeper.maxBatchSize=<B>` and
    `zookeeper.intBufferStartingSizeBytes = <S>`; a starting size below 32 is refused with an ERROR line and an
    IllegalArgumentException thrown from the static block, an ExceptionInInitializerError that nothing catches:
    the process ends with exit code 1, printing nothing after it (no 'Unexpected exception' line). Java and zkref
    print the same lines and end the same way.
    Reference: Java ZooKeeperServer's second static initializer (setFlushDelay, setMaxWriteQueuePollTime,
    setMaxBatchSize, INT_BUFFER_STARTING_SIZE_BYTES); ZooKeeperServerMain.runFromConfig"""
    for cls in (JavaZooKeeper, ZkrefServer):
        server = cls(tmp_path / cls.kind / "set", jvm_flags=["-Dzookeeper.flushDelay=30", "-Dzookeeper.maxBatchSize=7",
                                                           "-Dzookeeper.intBufferStartingSizeBytes=64"]).start()
        server.stop()
        switches = [m for c, m in entries(server.logs()) if c == "ZooKeeperServer" and m.startswith(STATIC_SWITCHES)]
        assert switches[-4:] == ["zookeeper.flushDelay = 30 ms", "zookeeper.maxWriteQueuePollTime = 10 ms",
                                 "zookeeper.maxBatchSize=7", "zookeeper.intBufferStartingSizeBytes = 64"], (cls.kind, switches)
    refused = {}
    for cls in (JavaZooKeeper, ZkrefServer):
        server = cls(tmp_path / cls.kind / "small", jvm_flags=["-Dzookeeper.intBufferStartingSizeBytes=16"])
        server.start(wait=False)
        try:
            code = server.proc.wait(30)
        finally:
            server.stop()
        es = entries(server.logs())
        error = [(c, m) for c, m in es if m.startswith("Buffer starting size")]
        at = es.index(error[0]) if error else -1
        refused[cls.kind] = (code, error, es[at - 1], es[at + 1:],
                             "java.lang.ExceptionInInitializerError" in server.logs())
    msg = ('Buffer starting size (16) must be greater than or equal to 32. '
           'Configure with "-Dzookeeper.intBufferStartingSizeBytes=<size>" ')
    assert refused["java"] == (1, [("ZooKeeperServer", msg)], ("ZooKeeperServer", "zookeeper.maxBatchSize=1000"),
                               [], True), refused["java"]
    assert refused["zkref"] == refused["java"], refused


WEIGHED = ("BlueThrottle", "Weighed connection throttling is disabled")


def around(log: str, other: str, line: tuple[str, str]) -> tuple[int, tuple[str, str], tuple[str, str]]:
    """How many times `log` has `line`, and the nearest lines before and after its first one that `other` (the
    other implementation's log) prints too (four-letter-word lines left out)."""
    es, known = entries(log), set(entries(other))
    at = [i for i, e in enumerate(es) if e == line]
    before = next(e for e in reversed(es[:at[0]]) if e in known and e[0] != "NIOServerCnxn")
    after = next(e for e in es[at[0] + 1:] if e in known and e[0] != "NIOServerCnxn")
    return len(at), before, after


def test_weighed_connection_throttling_line_once_per_process_standalone(tmp_path):
    """BlueThrottle logs `Weighed connection throttling is disabled` from its static block: once per JVM, as
    `new ZooKeeperServer` makes the connection throttle first thing in its constructor, right after
    ZooKeeperServer's own static blocks (the last line of the second, `zookeeper.intBufferStartingSizeBytes`).
    zkref logs it once, after the same line.
    Reference: Java BlueThrottle static initializer (logWeighedThrottlingSetting); ZooKeeperServer constructor"""
    logs = {}
    for cls in (JavaZooKeeper, ZkrefServer):
        server = cls(tmp_path / cls.kind).start()
        server.stop()
        logs[cls.kind] = server.logs()
    java, zkref = around(logs["java"], logs["zkref"], WEIGHED), around(logs["zkref"], logs["java"], WEIGHED)
    assert zkref[:2] == java[:2] == (1, ("ZooKeeperServer", "zookeeper.intBufferStartingSizeBytes = 1024")), (zkref, java)


def test_weighed_connection_throttling_line_once_per_process_quorum(ensembles):
    """On the quorum road BlueThrottle's class is first used when the peer's first role makes its server (a
    FollowerZooKeeperServer after `FOLLOWING` and the Learner's settings, a LeaderZooKeeperServer after
    `LEADING`); a follower that later leads makes another server but the static block does not run again.
    zkref logs the line once per process on every server; on a server whose first role was following, between
    the same neighbours as Java (`FOLLOWING`, then the constructor's `minSessionTimeout set to …`).
    Reference: Java BlueThrottle static initializer; QuorumPeer.run (makeFollower, makeLeader); ZooKeeperServer constructor"""
    (java, jl, jn), (zkref, zl, zn) = ensembles["java"], ensembles["zkref"]
    j_other = next(i for i in java.ids if i not in (jl, jn))
    z_other = next(i for i in zkref.ids if i not in (zl, zn))
    for j, z in ((jl, zl), (jn, zn), (j_other, z_other)):
        jlog, zlog = java.log(j), zkref.log(z)
        assert count(jlog, *WEIGHED) == count(zlog, *WEIGHED) == 1, (j, z)
    for j, z in ((jn, zn), (j_other, z_other)):         # first role: follower
        jlog, zlog = java.log(j), zkref.log(z)
        assert around(zlog, jlog, WEIGHED) == around(jlog, zlog, WEIGHED), (j, z)
        # the nearest common line before it was `FOLLOWING` until zkref printed the Learner's settings too
        assert around(zlog, jlog, WEIGHED)[1:] == (("Learner", "zookeeper.learner.closeSocketAsync = false"),
                                                   ("ZooKeeperServer", "minSessionTimeout set to 1000 ms"))


LEARNER_SETTINGS = [("Learner", "leaderConnectDelayDuringRetryMs: 100"), ("Learner", "TCP NoDelay set to: true"),
                    ("Learner", "zookeeper.learner.asyncSending = false"),
                    ("Learner", "zookeeper.learner.closeSocketAsync = false")]


def test_learner_settings_once_per_process_after_following(ensembles):
    """Learner's static block logs `leaderConnectDelayDuringRetryMs: 100`, `TCP NoDelay set to: true`,
    `zookeeper.learner.asyncSending = false` and `zookeeper.learner.closeSocketAsync = false` when the class loads:
    once per JVM, as the first learner role is made (`new Follower(...)` loads Learner before its argument, the
    FollowerZooKeeperServer, is constructed). So a first-role follower prints the four lines right after
    `FOLLOWING` and right before BlueThrottle's `Weighed connection throttling is disabled`; a follower that
    follows again, or leads, does not print them again; a server that only ever led prints none. zkref prints
    them the same number of times, in the same place, on every server of the ensemble.
    Reference: Java Learner static initializer; QuorumPeer.run (case FOLLOWING), QuorumPeer.makeFollower"""
    (java, jl, jn), (zkref, zl, zn) = ensembles["java"], ensembles["zkref"]
    j_other = next(i for i in java.ids if i not in (jl, jn))
    z_other = next(i for i in zkref.ids if i not in (zl, zn))
    for j, z in ((jl, zl), (jn, zn), (j_other, z_other)):
        placed = {}
        for kind, log in (("java", java.log(j)), ("zkref", zkref.log(z))):
            # the peer thread's classes here (other threads' lines, election notifications or the harness's
            # four-letter words, may come in between)
            es = [e for e in entries(log) if e[0] in ("QuorumPeer", "Learner", "BlueThrottle")]
            at = [i for i, e in enumerate(es) if e == LEARNER_SETTINGS[0]]
            counts = [sum(1 for e in es if e == line) for line in LEARNER_SETTINGS]
            placed[kind] = (counts, [(es[i - 1], es[i:i + 4], es[i + 4]) for i in at])
        assert placed["zkref"] == placed["java"], (j, z, placed)
        want = 0 if (j, z) == (jl, zl) else 1        # the first leader never followed
        assert placed["java"][0] == [want] * 4, (j, placed["java"])
        for before, lines, after in placed["java"][1]:
            assert (before, lines, after) == (("QuorumPeer", "FOLLOWING"), LEARNER_SETTINGS, WEIGHED)


# The classes the peer's thread logs as it makes a role and its server (other threads' lines left out)
ROLE_SETUP_CLASSES = ("QuorumPeer", "Leader", "LearnerMaster", "Learner", "BlueThrottle", "ZooKeeperServer",
                      "ResponseCache", "RequestPathMetricsCollector", "AuthenticationHelper", "Follower")
SERVER_SETUP_FIRST = ("Weighed connection throttling is disabled", "minSessionTimeout set to ")


def server_setup_neighbours(log: str, other: str) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """For each leader role in `log`: the nearest lines before and after its server's setup block (from the
    constructor's first line, BlueThrottle's or `minSessionTimeout set to`, to `Created server with tickTime`)
    that `other` (the other implementation's log) prints too, election times and paths left out."""
    def norm(es):
        return [(c, re.sub(r"LEADER ELECTION TOOK - \d+ MS", "LEADER ELECTION TOOK - <n> MS", m)) for c, m in es
                if c in ROLE_SETUP_CLASSES]
    es, known = norm(entries(log)), set(norm(entries(other)))
    found = []
    for k in [i for i, e in enumerate(es) if e == ("QuorumPeer", "LEADING")]:
        start = next(i for i in range(k, len(es)) if es[i][1].startswith(SERVER_SETUP_FIRST))
        end = next(i for i in range(start, len(es)) if es[i][1].startswith("Created server with tickTime "))
        found.append((next(e for e in reversed(es[:start]) if e in known),
                      next(e for e in es[end + 1:] if e in known)))
    return found


def test_leader_makes_its_server_where_java_does(ensembles):
    """Java's QuorumPeer.makeLeader makes the LeaderZooKeeperServer with the Leader (`new Leader(this, new
    LeaderZooKeeperServer(...))`), long before a quorum has synced: the server's constructor lines (BlueThrottle's
    on a first-role leader, `minSessionTimeout set to …` … `Created server with tickTime …`) come after Leader's
    static lines (`zookeeper.leader.maxTimeToWaitForEpoch = -1ms`, once per JVM) or, on a later leader role,
    after `LEADING`, and before `LEADING - LEADER ELECTION TOOK`. zkref makes its leader's server at the same
    place, for the first leader and for the follower that became leader.
    Reference: Java QuorumPeer.run (case LEADING), QuorumPeer.makeLeader, Leader.lead"""
    (java, jl, jn), (zkref, zl, zn) = ensembles["java"], ensembles["zkref"]
    took = ("Leader", "LEADING - LEADER ELECTION TOOK - <n> MS")
    for j, z in ((jl, zl), (jn, zn)):
        jlog, zlog = java.log(j), zkref.log(z)
        java_n, zkref_n = server_setup_neighbours(jlog, zlog), server_setup_neighbours(zlog, jlog)
        assert zkref_n == java_n, (j, z, zkref_n, java_n)
    assert server_setup_neighbours(java.log(jl), zkref.log(zl)) == [
        (("Leader", "zookeeper.leader.maxTimeToWaitForEpoch = -1ms"), took)]
    assert server_setup_neighbours(java.log(jn), zkref.log(zn)) == [
        (("Leader", "zookeeper.leader.maxTimeToWaitForEpoch = -1ms"), took)]


FLE_SETTINGS = [("FastLeaderElection", "zookeeper.fastleader.minNotificationInterval = 200 ms"),
                ("FastLeaderElection", "zookeeper.fastleader.maxNotificationInterval = 60000 ms")]
ELECTION_SETUP_CLASSES = ("QuorumPeer", "QuorumCnxManager$Listener", "FastLeaderElection", "ZKAuditProvider")


def test_election_settings_once_where_java_prints_them(ensembles):
    """FastLeaderElection's static block logs `zookeeper.fastleader.minNotificationInterval = 200 ms` and
    `zookeeper.fastleader.maxNotificationInterval = 60000 ms` when the class loads: once per JVM, at the first
    `new FastLeaderElection` in QuorumPeer.createElectionAlgorithm, after the listener's `Election port bind
    maximum retries is 3` and before QuorumPeer.start's `ZooKeeper audit is disabled.`; the election that follows
    a leader's loss makes no new class, so no second pair. zkref prints them once, in the same place, on every
    server of the ensemble (the role change included).
    Reference: Java FastLeaderElection static initializer; QuorumPeer.createElectionAlgorithm, QuorumPeer.start"""
    for kind, (ens, _, _) in ensembles.items():
        for i in ens.ids:
            es = [e for e in entries(ens.log(i)) if e[0] in ELECTION_SETUP_CLASSES]
            at = [k for k, e in enumerate(es) if e == FLE_SETTINGS[0]]
            assert len(at) == 1 and es[at[0] + 1] == FLE_SETTINGS[1], (kind, i, at)
            assert sum(1 for e in es if e == FLE_SETTINGS[1]) == 1, (kind, i)
            assert es[at[0] - 1] == ("QuorumCnxManager$Listener", "Election port bind maximum retries is 3"), (kind, i)
            assert es[at[0] + 2] == ("ZKAuditProvider", "ZooKeeper audit is disabled."), (kind, i)
