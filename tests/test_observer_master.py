"""ObserverMaster (`observerMasterPort`): observers that sync from a follower instead of the leader. The same
scenarios on a zkref ensemble and on a Java 3.8 ensemble (3 participants + 1 observer), observations compared.

One host, one key. Java's observer computes its list of masters as *(each voting member's quorum host, its
own `observerMasterPort`)* (QuorumPeer.updateObserverMasterList), and a follower binds its own
`observerMasterPort` on its quorum host. With every server on 127.0.0.1 all entries of the list are the same
address, and two followers cannot bind the same port. So each participant gets its own port here, and the
observer is given the port of the follower it should use — the list then names that follower's port for all
three members; the leader binds nothing there. (`test_shared_port_on_one_host` shows what one shared key does
on one host: the first follower binds it, the second cannot, and its role fails with a BindException; it keeps
re-joining until the port is free, and then hosts the observer.)
"""
from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import urllib.request

import pytest
from kazoo.client import KazooClient

from conftest import SERVLET_API_JAR, WithObserver, four_letter_word, free_port, java_available, wait_for

pytestmark = pytest.mark.timeout(600)

KINDS = ["java", "zkref"] if java_available() else ["zkref"]


def mntr(port: int) -> dict[str, str]:
    out = four_letter_word(port, "mntr")
    return {k[3:]: v for k, v in (line.split("\t", 1) for line in out.splitlines() if "\t" in line)}


def client(where) -> KazooClient:
    "A started kazoo client of a client port, or of a hosts string."
    zk = KazooClient(hosts=where if isinstance(where, str) else f"127.0.0.1:{where}", timeout=30)
    zk.start(30)
    return zk


class OMEnsemble(WithObserver):
    """Servers 1-3 participants, 4 an observer; participants get `observerMasterPort` (their own free port, or
    one shared port with `shared=True`); the observer's is set with `observe(i)` before it starts. Every server
    runs its AdminServer on 127.0.0.1 and a free port (`admin(i, command)`)."""

    def __init__(self, root, kinds, shared: bool = False, **kw):
        kw.setdefault("classpath", [SERVLET_API_JAR])          # Java's Jetty AdminServer loads with it
        super().__init__(root, kinds, **kw)
        one = free_port()
        self.om_port = {i: one if shared else free_port() for i in (1, 2, 3)}
        for i in (1, 2, 3):
            self.set(i, observerMasterPort=self.om_port[i])
        self.admin_port = {i: free_port() for i in self.servers}
        for i in self.servers:
            self.set(i, **{"admin.enableServer": "true", "admin.serverAddress": "127.0.0.1",
                           "admin.serverPort": self.admin_port[i]})

    def admin(self, i: int, command: str) -> dict:
        "An AdminServer command's JSON answer."
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port[i]}/commands/{command}", timeout=10) as r:
            return json.loads(r.read())

    def set(self, i: int, **lines) -> None:
        "Add zoo.cfg lines to server i (before it starts)."
        s = self.servers[i]
        s.config.update(lines)
        s.cfg_path.write_text("".join(f"{k}={v}\n" for k, v in s.config.items()))

    def observe(self, master: int) -> None:
        "Start the observer with the observerMasterPort of participant `master`; wait until it serves."
        self.set(4, observerMasterPort=self.om_port[master])
        self.start(4)
        wait_for(lambda: self.mode(4) == "observer", 90, 0.2, what="the observer to serve")

    def followers(self) -> list[int]:
        return [i for i in (1, 2, 3) if i in self.procs and self.mode(i) == "follower"]

    def form(self) -> tuple[int, int, int]:
        "Start the participants and wait until they form; (leader, lower-id follower, higher-id follower)."
        self.start(1, 2, 3)
        leader = self.wait_formed([1, 2, 3])
        master, other = sorted(self.followers())
        return leader, master, other

    def observe_between_writes(self, leader: int, master: int) -> None:
        "Two writes on the leader, the observer started on `master`'s port, then two more (one new node, one update)."
        zk = client(self.client(leader))
        try:
            zk.create("/before-1", b"1"); zk.create("/before-2", b"2")
            self.observe(master)
            zk.create("/after-1", b"3"); zk.set("/before-1", b"1b")
        finally:
            zk.stop(); zk.close()


def ports_out(line: str, e: OMEnsemble) -> str:
    "A log line with this run's ports named by role."
    for i, p in e.om_port.items():
        line = line.replace(f":{p}", f":<om{i}>")
    return re.sub(r":\d{4,5}\b", ":<port>", line)


def lines(log: str, *needles: str) -> list[str]:
    "The messages (after the `[thread:Class@line] - ` part) of the log lines that contain one of `needles`."
    out = []
    for line in log.splitlines():
        if any(n in line for n in needles):
            out.append(line.split("] - ")[-1].strip())
    return out


def story(e: OMEnsemble) -> str:
    "Each server's role changes and ObserverMaster lines, for a failure message."
    keys = ("LEADING", "FOLLOWING - LEADER", "OBSERVING", "Starting ObserverMaster", "Exception when",
            "Observing new leader", "Follower sid: 4", "address already in use", "BindException")
    return "\n".join(f"--- server {i}\n" + "\n".join(lines(e.log(i), *keys)[-12:]) for i in e.servers)


def observing_sid(log: str) -> str | None:
    "The sid of the observer's last `Observing new leader sid=… addr=…` line."
    found = re.findall(r"Observing new leader sid=(\d+) ", log)
    return found[-1] if found else None


@pytest.fixture(scope="module", params=KINDS)
def synced(request, tmp_path_factory):
    """A 3+1 ensemble of `kind` whose observer synced from the lowest-id follower, with two writes made on the
    leader before the observer started and two after; yields (ensemble, leader, master, other follower)."""
    kind = request.param
    e = OMEnsemble(tmp_path_factory.mktemp(kind), (kind,) * 4)
    try:
        leader, master, other = e.form()
        e.observe_between_writes(leader, master)
        yield e, leader, master, other
    finally:
        e.stop_all()


def observe(e: OMEnsemble, leader: int, master: int, other: int) -> dict:
    "What a user or operator sees of the observer and its master."
    obs = client(e.client(4))
    try:
        wait_for(lambda: obs.exists("/after-1") is not None, 30, what="the write made after the observer joined")
        obs.sync("/")
        reads = {p: obs.get(p)[0] for p in ("/before-1", "/before-2", "/after-1")}
    finally:
        obs.stop(); obs.close()
    m = {i: mntr(e.client(i)) for i in (leader, master, other, 4)}
    obsr = {r: e.admin(i, "observers") for r, i in (("leader", leader), ("master", master), ("other", other))}
    lead = e.admin(4, "leader")           # Java: the observer's leader is its learner master (setLeaderAddressAndId)
    observer_log = [ports_out(x, e) for x in lines(e.log(4), "Observing new leader", "Updated learner master list",
                                                   "zookeeper.observer.")]
    return {
        "reads": reads,
        # on one host every entry of the list is the same address: the id is the entry's, any voting member's
        "observer_master_id": m[4].get("observer_master_id") == observing_sid(e.log(4)),
        "observer_leader_command": (lead["is_leader"], str(lead["leader_id"]) == observing_sid(e.log(4)),
                                    lead["leader_ip"], lead["error"]),
        "synced_observers": {"leader": m[leader].get("synced_observers"), "master": m[master].get("synced_observers"),
                             "other": m[other].get("synced_observers")},
        # the `observers` admin command: how many, and each one's sid and keys (Java: getLearnerHandlerInfo)
        "observers_command": {r: (o["synced_observers"], [(x["sid"], sorted(x)) for x in o["observers"]], o["error"])
                              for r, o in obsr.items()},
        "om_commit_counts_moved": int(m[master].get("cnt_om_commit_process_time_ms", 0)) >= 2,
        "om_proposal_counts_moved": int(m[master].get("cnt_om_proposal_process_time_ms", 0)) >= 2,
        # the master's LearnerHandler metrics for observer 4 and its sync counters; the observer's sync and INFORMs
        "master_handler_metrics": sorted(k for k in m[master] if "_4_learner_handler" in k),
        "master_syncs": {k: m[master].get(k) for k in ("snap_count", "diff_count")},
        "observer_counts": {k: m[4].get(k) for k in ("cnt_observer_sync_time", "learner_commit_received_count",
                                                     "learner_proposal_received_count")},
        "om_counts_on_other": (m[other].get("cnt_om_commit_process_time_ms"),
                               m[other].get("cnt_om_proposal_process_time_ms")),
        "master_log": [ports_out(x, e) for x in lines(e.log(master), "Starting ObserverMaster",
                                                      "Follower sid: 4", "from retained commit queue")],
        "leader_log": lines(e.log(leader), "Starting ObserverMaster", "Follower sid: 4"),
        "observer_log": [re.sub(r"sid=\d", "sid=<any>", x) for x in observer_log],
        "participants_log_the_list": [len(lines(e.log(i), "Updated learner master list")) for i in (1, 2, 3)],
    }


@pytest.fixture(scope="module")
def observations(synced):
    return observe(*synced)


JAVA_SEEN: dict = {}
RECONNECT_SEEN: dict = {}         # kind -> how the observer was synced when its master came back


def test_observer_syncs_from_follower(synced, observations):
    """An observer with observerMasterPort connects to the follower listening there, not to the leader: the
    follower logs `Starting ObserverMaster` and registers the observer (`Follower sid: 4`), the leader never
    hears of it; the observer reads every write made on the leader, before and after it joined; the master's
    `mntr` counts one synced observer and its om_proposal/om_commit summaries move with each txn.
    Reference: Java Follower.followLeader / processPacket, ObserverMaster.startForwarding, Observer.findLearnerMaster"""
    e, leader, master, other = synced
    o = observations
    assert o["reads"] == {"/before-1": b"1b", "/before-2": b"2", "/after-1": b"3"}
    assert o["observer_master_id"]
    assert o["synced_observers"]["master"] == "1"
    assert o["om_commit_counts_moved"] and o["om_proposal_counts_moved"]
    assert o["master_log"][0] == "Starting ObserverMaster"
    assert any(x.startswith("Follower sid: 4 : info :") for x in o["master_log"])
    assert not any("Follower sid: 4" in x for x in o["leader_log"])
    assert o["observer_log"][-1] == f"Observing new leader sid=<any> addr=/127.0.0.1:<om{master}>"
    assert o["observer_log"][1:3] == ["zookeeper.observer.reconnectDelayMs = 0", "zookeeper.observer.election.DelayMs = 200"]
    assert o["synced_observers"] == {"leader": "0", "master": "1", "other": "0"}
    assert o["participants_log_the_list"] == [1, 1, 1]              # at start, observerMasterPort being set
    assert o["observers_command"]["master"][:2] == (1, [(4, o["observers_command"]["master"][1][0][1])])
    assert o["observers_command"]["leader"][:2] == o["observers_command"]["other"][:2] == (0, [])
    if e.servers[4].kind == "java":
        JAVA_SEEN.update(o)


def test_zkref_observations_match_java(synced, observations):
    """Everything observed above (reads, mntr keys and values, the masters' and the observer's log lines) is the
    same on zkref as on a Java 3.8 ensemble.
    Reference: Java ObserverMaster, FollowerZooKeeperServer.registerMetrics (synced_observers), QuorumPeer.updateObserverMasterList"""
    e = synced[0]
    if e.servers[4].kind == "java":                 # the oracle's run: its observations are kept for the zkref run
        JAVA_SEEN.update(observations)             # (here too: under pytest-xdist the test above may run elsewhere)
        return
    if not JAVA_SEEN:
        pytest.skip("no Java run to compare with (Java not installed, or its run deselected)")
    assert observations == JAVA_SEEN


@pytest.mark.parametrize("kind", KINDS)
def test_observer_reconnects_when_its_master_returns(kind, tmp_path):
    """Kill the observer's master (SIGKILL): the observer stops serving — on one host its list names only that
    port, and the leader's entry is the leader's host at observerMasterPort, where nothing listens, so it does
    not fall back to the leader; between tries it waits a random part of `zookeeper.observer.election.DelayMs`. Writes go on through the leader and the other follower. When the follower comes
    back it follows, starts its ObserverMaster again, and the observer reconnects to it and has every
    acknowledged write, those made while it was away included.
    Reference: Java Observer.observeLeader / findLearnerMaster / waitForObserverElectionDelay, QuorumPeer.nextObserverMaster,
    ObserverMaster.start"""
    e = OMEnsemble(tmp_path, (kind,) * 4)
    try:
        leader, master, _ = e.form()
        e.observe(master)
        zk = client(e.client(leader))
        acked = []
        for k in range(3):
            acked.append(zk.create(f"/n{k}", b"x"))
        e.procs[master].kill(); e.procs.pop(master)
        wait_for(lambda: e.mode(4) is None, 60, 0.2, what="the observer to stop serving")
        for k in range(3, 6):
            acked.append(zk.create(f"/n{k}", b"y"))           # leader + other follower: still a quorum
        assert e.mode(4) is None, "the observer found another master on one host"
        e.start(master)
        wait_for(lambda: e.mode(master) == "follower", 90, 0.2, what="the master to follow again")
        wait_for(lambda: e.mode(4) == "observer", 120, 0.2, what="the observer to reconnect")
        acked.append(zk.create("/n6", b"z"))
        zk.stop(); zk.close()
        obs = client(e.client(4))
        try:
            obs.sync("/")
            assert sorted(obs.get_children("/")) == sorted([p.lstrip("/") for p in acked] + ["zookeeper"])
        finally:
            obs.stop(); obs.close()
        m = mntr(e.client(master))
        assert m.get("synced_observers") == "1"
        assert mntr(e.client(4)).get("observer_master_id") == observing_sid(e.log(4))
        assert len(lines(e.log(4), "Observing new leader")) >= 2
        # each time its role ended the observer waited a random part of observer.election.DelayMs (200 ms)
        assert re.fullmatch(r"Waiting for \d{1,3} ms before reconnecting with the leader",
                            lines(e.log(4), "before reconnecting with the leader")[0])
        # how the returning master synced the observer: what it served (its counters restarted with it) and
        # the observer's last sync line without its zxid (the observer's first sync depends on whether its master
        # joined before or after the leader started serving, which is timing, on Java as on zkref)
        syncs = lines(e.log(4), "Getting a diff from the leader", "Getting a snapshot from leader", "Truncating log")
        seen = {"master": {k: m.get(k) for k in ("snap_count", "diff_count")},
                "observer": re.sub(r"0x[0-9a-f]+", "0x…", syncs[-1])}
        RECONNECT_SEEN[kind] = seen
        if kind == "zkref" and "java" in RECONNECT_SEEN:
            assert seen == RECONNECT_SEEN["java"]
    finally:
        e.stop_all()


@pytest.mark.parametrize("kind", KINDS)
def test_shared_port_on_one_host(kind, tmp_path):
    """One observerMasterPort for every server on one host: the leader binds nothing, the first follower to sync
    binds the port, the second cannot (`Exception when following the leader`, address in use) and goes back to
    LOOKING, again and again; the observer syncs from the first. Kill that one: the survivors re-form (the
    leader may lose its quorum while the second re-joins), the one following binds the port, and the observer
    moves to it, keeping every acknowledged write.
    Reference: Java ObserverMaster.start (ServerSocket bind), Follower.followLeader's catch, Observer.findLearnerMaster"""
    e = OMEnsemble(tmp_path, (kind,) * 4, shared=True)
    e.start(1, 2, 3)
    try:
        shared_port_scenario(e)
    except TimeoutError as err:
        raise AssertionError(f"{err}\n{story(e)}") from err
    finally:
        e.stop_all()


def shared_port_scenario(e: OMEnsemble) -> None:
    "The body of test_shared_port_on_one_host."
    wait_for(lambda: any(e.mode(i) == "leader" for i in (1, 2, 3)), 90, 0.2, what="a leader")
    leader = next(i for i in (1, 2, 3) if e.mode(i) == "leader")
    others = [i for i in (1, 2, 3) if i != leader]
    starting = lambda i: "Starting ObserverMaster" in e.log(i)
    wait_for(lambda: all(starting(i) for i in others), 90, 0.2, what="both followers to start an ObserverMaster")
    refused = lambda i: "Exception when following the leader" in e.log(i)
    wait_for(lambda: any(refused(i) for i in others), 60, 0.2, what="the second follower's bind to fail")
    holder = next(i for i in others if not refused(i))
    second = next(i for i in others if i != holder)
    e.observe(holder)
    zk = client(e.client(leader))
    acked = [zk.create(f"/m{k}", b"x") for k in range(3)]
    zk.stop(); zk.close()
    e.procs[holder].kill(); e.procs.pop(holder)
    # the leader loses its quorum while the second re-joins, and either of the two may lead next: the one that
    # follows binds the port and hosts the observer
    hosting = lambda i: e.mode(i) == "follower" and mntr(e.client(i)).get("synced_observers") == "1"
    wait_for(lambda: e.mode(4) == "observer" and any(hosting(i) for i in (leader, second)),
             120, 0.2, what="the observer to move to the surviving follower")
    zk = client(e.hosts([leader, second]))
    acked.append(zk.retry(zk.create, "/m3", b"y"))
    zk.stop(); zk.close()
    obs = client(e.client(4))
    try:
        obs.sync("/")
        assert sorted(obs.get_children("/")) == sorted([p.lstrip("/") for p in acked] + ["zookeeper"])
    finally:
        obs.stop(); obs.close()


MIXES = [("zkref", "java"), ("java", "zkref")] if java_available() else []


@pytest.mark.parametrize("participants,observer", MIXES, ids=["java-observer-on-zkref", "zkref-observer-on-java"])
def test_mixed_observer_and_master(participants, observer, tmp_path):
    """Wire compatibility: a Java 3.8 observer syncs from a zkref follower's ObserverMaster, and a zkref observer
    from a Java follower's. The observer reads every write made on the leader (synced before it joined, INFORMed
    after), answers `sync` through its master, and a session opened on the leader moves to the observer (its
    REVALIDATE goes observer → master → leader and the answer comes back the same way).
    Reference: Java ObserverMaster (startForwarding, proposalCommitted, revalidateSession / revalidateLearnerSession,
    submitLearnerRequest), FollowerZooKeeperServer.sync, Observer.processPacket (INFORM)"""
    e = OMEnsemble(tmp_path, (participants,) * 3 + (observer,))
    try:
        leader, master, other = e.form()
        e.observe_between_writes(leader, master)
        zk = client(e.client(leader))
        zk.create("/eph", b"e", ephemeral=True)
        o = observe(e, leader, master, other)
        assert o["reads"] == {"/before-1": b"1b", "/before-2": b"2", "/after-1": b"3"}
        assert o["synced_observers"] == {"leader": "0", "master": "1", "other": "0"}
        assert o["master_log"][0] == "Starting ObserverMaster"
        assert any(x.startswith("Follower sid: 4 : info :") for x in o["master_log"])
        assert o["observer_log"][-1] == f"Observing new leader sid=<any> addr=/127.0.0.1:<om{master}>"
        session_id, passwd = zk.client_id
        moved = KazooClient(hosts=f"127.0.0.1:{e.client(4)}", timeout=30, client_id=(session_id, passwd))
        moved.start(30)
        try:
            assert moved.client_id[0] == session_id
            assert moved.get("/eph")[1].ephemeralOwner == session_id
        finally:
            moved.stop(); moved.close()                   # closes the session (zk's too): the ephemeral goes
        zk.stop(); zk.close()
        check = client(e.client(leader))
        try:
            wait_for(lambda: check.exists("/eph") is None, 30, what="the moved session's close to reach the leader")
        finally:
            check.stop(); check.close()
    finally:
        e.stop_all()


@pytest.mark.parametrize("kind", KINDS)
def test_a_follower_is_refused(kind, tmp_path):
    """An ObserverMaster serves observers only: a FOLLOWERINFO on observerMasterPort is refused with Java's
    `Non observer attempting to connect to ObserverMaster. type = 11` (logged at ERROR as an unexpected exception
    in the LearnerHandler) and the connection is closed before any LEADERINFO.
    Reference: Java LearnerHandler.run (`learnerMaster instanceof ObserverMaster`)"""
    from zkref.jute import LearnerInfo
    from zkref.quorum.zab import FOLLOWERINFO, packet, packet_bytes
    e = OMEnsemble(tmp_path, (kind,) * 4)
    try:
        _, f, _ = e.form()
        wait_for(lambda: "Starting ObserverMaster" in e.log(f), 30, what="the ObserverMaster")
        info = LearnerInfo(serverid=9, protocol_version=0x10000, config_version=0).to_bytes()
        with socket.create_connection(("127.0.0.1", e.om_port[f]), timeout=20) as s:
            s.sendall(packet_bytes(packet(FOLLOWERINFO, 0, info)))
            assert s.recv(1024) == b""                     # closed, nothing sent
        refused = "Non observer attempting to connect to ObserverMaster. type = 11"
        wait_for(lambda: refused in e.log(f), 30, what="the refusal in the log")
        line = next(x for x in e.log(f).splitlines() if "Unexpected exception in LearnerHandler" in x)
        assert " ERROR " in line
    finally:
        e.stop_all()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    "A CA and a server certificate naming 127.0.0.1 (every server uses it), as PEM files."
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    from zkref.quorum.quorum_tls import make_test_pki
    return make_test_pki(tmp_path_factory.mktemp("om-pki"), ("server",))


TLS_KINDS = [("zkref", "zkref")] + ([("zkref", "java"), ("java", "zkref")] if java_available() else [])


@pytest.mark.parametrize("participants,observer", TLS_KINDS, ids=["-".join(k) for k in TLS_KINDS])
def test_observer_master_over_tls(participants, observer, pki, tmp_path):
    """With sslQuorum=true the ObserverMaster listens with TLS as the quorum port does (Java: UnifiedServerSocket
    when sslQuorum or portUnification), and the observer dials it with TLS: a zkref or Java observer syncs from a
    zkref or Java follower over TLS and reads the leader's writes.
    Reference: Java ObserverMaster.start, Learner.connectToLeader (sslQuorum)"""
    tls = {"sslQuorum": "true", "ssl.quorum.keyStore.location": pki / "server.pem",
           "ssl.quorum.trustStore.location": pki / "ca.pem"}
    # netty-codec: Java's UnifiedServerSocket needs it and Debian's zookeeper.jar manifest leaves it out
    e = OMEnsemble(tmp_path, (participants,) * 3 + (observer,),
                   classpath=[SERVLET_API_JAR, "/usr/share/java/netty-codec.jar"], **tls)
    try:
        leader, master, other = e.form()
        zk = client(e.client(leader))
        zk.create("/tls-before", b"1")
        e.observe(master)
        zk.create("/tls-after", b"2")
        zk.stop(); zk.close()
        obs = client(e.client(4))
        try:
            wait_for(lambda: obs.exists("/tls-after") is not None, 30, what="the INFORM over TLS")
            assert obs.get("/tls-before")[0] == b"1"
        finally:
            obs.stop(); obs.close()
        assert mntr(e.client(master)).get("synced_observers") == "1"
        assert f"addr=/127.0.0.1:{e.om_port[master]}" in lines(e.log(4), "Observing new leader")[-1]
    finally:
        e.stop_all()


@pytest.mark.parametrize("kind", KINDS)
def test_sessions_on_the_observer_live_through_its_master(kind, tmp_path):
    """A session connected to the observer is kept alive at the leader through the master: the observer's PING
    replies carry its sessions' touches to the master (ObserverMaster.touch), whose own PING replies carry them to
    the leader. An ephemeral node of an observer session with a 2 s timeout is still there, seen from the leader,
    after the master has had 20 PING replies from the observer (over 5 s at tickTime 500); closing the session
    removes it.
    Reference: Java LearnerHandler (PING) → ObserverMaster.touch → LearnerSessionTracker.touchSession, Learner.ping"""
    e = OMEnsemble(tmp_path, (kind,) * 4)
    try:
        leader, master, _ = e.form()
        e.observe(master)
        received = lambda: e.admin(master, "observers")["observers"][0]["packets_received"]
        obs = KazooClient(hosts=f"127.0.0.1:{e.client(4)}", timeout=2)
        obs.start(30)
        try:
            obs.create("/lives", b"", ephemeral=True)
            start = received()
            wait_for(lambda: received() >= start + 20, 60, 0.2, what="20 PING replies from the observer")
            zk = client(e.client(leader))
            try:
                assert zk.exists("/lives").ephemeralOwner == obs.client_id[0]
            finally:
                zk.stop(); zk.close()
        finally:
            obs.stop(); obs.close()
        zk = client(e.client(leader))
        try:
            wait_for(lambda: zk.exists("/lives") is None, 30, what="the closed session's node to go")
        finally:
            zk.stop(); zk.close()
    finally:
        e.stop_all()


SKIP_SEEN: dict = {}


@pytest.mark.parametrize("kind", KINDS)
def test_skip_learner_request_to_next_processor(kind, tmp_path):
    """With `zookeeper.follower.skipLearnerRequestToNextProcessor=true` a follower only forwards its observers'
    requests to the leader: it does not queue them in its own CommitProcessor, counts each in
    `skip_learner_request_to_next_processor_count`, and applies their txns when the leader commits them, as any
    other server's. The observer still answers its client (writes, a sync, reads). Counts, data and the start
    line are the same as on Java 3.8.
    Reference: Java FollowerRequestProcessor.maybeSendRequestToNextProcessor, ObserverMaster.submitLearnerRequest"""
    e = OMEnsemble(tmp_path, (kind,) * 4, jvm_flags=("-Dzookeeper.follower.skipLearnerRequestToNextProcessor=true",))
    try:
        _, master, _ = e.form()
        e.observe(master)
        count = lambda: int(mntr(e.client(master)).get("skip_learner_request_to_next_processor_count", "0"))
        before = count()
        obs = client(e.client(4))                                  # createSession
        try:
            for k in range(3):
                obs.create(f"/s{k}", b"v")
            obs.set("/s0", b"w")
            obs.sync("/s0")
            obs.delete("/s2")
            data = obs.get("/s0")[0]                               # a read: the observer's own
        finally:
            obs.stop(); obs.close()                                # closeSession
        m = client(e.client(master))
        try:
            m.sync("/")
            on_master = sorted(m.get_children("/")), m.get("/s0")[0]
        finally:
            m.stop(); m.close()
        seen = {"skipped": count() - before, "data": data, "on master": on_master,
                "start line": lines(e.log(master), "Initialized FollowerRequestProcessor")[-1:]}
        SKIP_SEEN[kind] = seen
        assert seen["data"] == b"w" and seen["on master"] == (["s0", "s1", "zookeeper"], b"w"), seen
        assert seen["skipped"] == 8, seen       # createSession, 3 creates, setData, sync, delete, closeSession
        if kind == "zkref" and "java" in SKIP_SEEN:
            assert seen == SKIP_SEEN["java"]
    finally:
        e.stop_all()
