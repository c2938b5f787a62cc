"""The AdminServer's quorum-only commands and the quorum forms of `srvr`/`stat`/`conf`/`mntr`, over real HTTP and
real four-letter-word sockets, on a zkref ensemble (three `python -m zkref` participants and an observer) checked
beside a Java 3.8 ensemble of the same shape.

Each ensemble runs in `zkref.testing.MiniCluster` (process mode, no link proxies) on an event loop of its own
thread, so the tests can block on HTTP and kazoo. Every server gets `admin.enableServer=true` on a free port; the
Java servers also need `/usr/share/java/servlet-api.jar` on their class path for Jetty to load.
"""
from __future__ import annotations

import asyncio
import json
import re
import threading
from http.client import HTTPConnection
from pathlib import Path

import pytest
from kazoo.client import KazooClient

import zkref.testing
from conftest import four_letter_word, free_ports, java_available, wait_for
from zkref.testing import MiniCluster

pytestmark = pytest.mark.timeout(300)

QUORUM_COMMANDS = ("leader", "voting_view", "zabstate", "observers", "observer_connection_stat_reset", "srvr",
                   "stat", "monitor", "conf")
WORDS = ("srvr", "stat", "conf", "mntr")
LEADER_GAUGES = ("learners", "synced_followers", "synced_non_voting_followers", "synced_observers", "pending_syncs",
                 "leader_uptime", "last_proposal_size", "max_proposal_size", "min_proposal_size")
SERVLET_JAR = "/usr/share/java/servlet-api.jar"


class AdminCluster(MiniCluster):
    "A MiniCluster whose servers each run the AdminServer on 127.0.0.1 and a port of their own."
    def __init__(self, **kw):
        super().__init__(**kw)
        self.admin_ports = dict(zip(self.sids, free_ports(len(self.sids))))

    def _config_text(self, sid: int) -> str:
        return super()._config_text(sid).replace(
            "admin.enableServer=false\n", f"admin.enableServer=true\nadmin.serverAddress=127.0.0.1\n"
                                          f"admin.serverPort={self.admin_ports[sid]}\n")


class Ensemble:
    "A 3 + 1 observer ensemble on its own loop thread; `snapshot()` reads every command from every server."
    def __init__(self, kind: str, root: Path):
        self.kind = kind
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=f"ensemble-{kind}", daemon=True)
        self.thread.start()
        java = {1, 2, 3, 4} if kind == "java" else set()
        self.cluster = AdminCluster(n=3, observers=1, mode="process", java=java, root=root, tick_time_ms=500,
                                    proxies=False)

    def call(self, coro, timeout: float = 120):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> "Ensemble":
        self.call(self.cluster.start())
        self.call(self.cluster.wait_for_leader(timeout_s=120), 130)
        self.call(self.cluster.wait_serving(self.cluster.sids, timeout_s=120), 130)
        return self

    def stop(self) -> None:
        try:
            self.call(self.cluster.close(), 120)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)

    def port(self, sid: int) -> int:
        return self.cluster.members[sid].client_port

    def http(self, sid: int, command: str) -> dict:
        conn = HTTPConnection("127.0.0.1", self.cluster.admin_ports[sid], timeout=10)
        try:
            conn.request("GET", f"/commands/{command}")
            resp = conn.getresponse()
            assert resp.status == 200, (self.kind, sid, command, resp.status)
            return json.loads(resp.read(), object_pairs_hook=dict)
        finally:
            conn.close()

    def mode(self, sid: int) -> str | None:
        m = re.search(r"^Mode: (\w+)", four_letter_word(self.port(sid), "srvr"), re.M)
        return m.group(1) if m else None

    def write(self) -> None:
        "One write through the leader, so the leader has proposal sizes to show."
        leader = next(s for s in self.cluster.sids if self.mode(s) == "leader")
        zk = KazooClient(f"127.0.0.1:{self.port(leader)}", timeout=10)
        zk.start(timeout=30)
        try:
            zk.create("/qadmin", b"x" * 100)
        finally:
            zk.stop()
            zk.close()

    def snapshot(self) -> dict:
        "Every quorum command and word from every server, taken while the leader stays the same (bounded tries)."
        for _ in range(10):
            before = {s: self.mode(s) for s in self.cluster.sids}
            snap = {"modes": before}
            for sid in self.cluster.sids:
                snap[sid] = {c: self.http(sid, c) for c in QUORUM_COMMANDS}
                snap[sid].update({f"4lw:{w}": four_letter_word(self.port(sid), w) for w in WORDS})
            if {s: self.mode(s) for s in self.cluster.sids} == before and sorted(before.values()) == [
                    "follower", "follower", "leader", "observer"]:
                return snap
        raise AssertionError(f"{self.kind}: the ensemble kept changing leader: {before}")


def read_ensemble(kind: str, root: Path) -> dict:
    "Start an ensemble, write once through its leader, read every command from every server, stop it."
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(zkref.testing, "JAVA_CLASSPATH", zkref.testing.JAVA_CLASSPATH + ":" + SERVLET_JAR)
        e = Ensemble(kind, root)
        try:
            e.start()
            wait_for(lambda: _try(e.write), 60)
            return e.snapshot()
        finally:
            e.stop()


@pytest.fixture(scope="module")
def zkref_snapshot(tmp_path_factory) -> dict:
    "What three `python -m zkref` participants and an observer answered."
    return read_ensemble("zkref", tmp_path_factory.mktemp("zkref"))


@pytest.fixture(scope="module")
def java_snapshot(tmp_path_factory) -> dict:
    "What three Java 3.8 participants and an observer answered (skipped without Java or servlet-api)."
    if not (java_available() and Path(SERVLET_JAR).exists()):
        pytest.skip("Java ZooKeeper (Debian zookeeper) and servlet-api.jar are needed")
    return read_ensemble("java", tmp_path_factory.mktemp("java"))


@pytest.fixture(params=["zkref", "java"])
def ensemble(request):
    "(kind, snapshot): each behaviour test runs on both ensembles' answers."
    return request.param, request.getfixturevalue(f"{request.param}_snapshot")


def _try(fn) -> bool:
    try:
        fn()
        return True
    except Exception:
        return False


def by_role(snap: dict) -> dict[str, dict]:
    "role ('leader', 'follower', 'observer') -> one server's outputs (the lowest sid of that role)."
    out: dict[str, dict] = {}
    for sid in sorted(snap["modes"]):
        out.setdefault(snap["modes"][sid], dict(snap[sid], sid=sid))
    return out


def shape(value):
    "Keys, order and JSON types, with the values left out."
    if isinstance(value, dict):
        return [(k, shape(v)) for k, v in value.items()]
    if isinstance(value, list):
        return ["list", shape(value[0])] if value else ["list"]
    return type(value).__name__


# ServerStats' properties that Jackson finds through a field of the same name, in the fields' declared order
SERVER_STATS_FIELDS = ("packets_sent", "packets_received", "fsync_threshold_exceed_count", "client_response_stats")


def server_stats_shape(srvr_shape: list) -> list:
    """`srvr`'s shape with `server_stats` split in two: the field-backed properties in order, the getter-only ones
    as a sorted list. Jackson (no @JsonPropertyOrder, MapperFeature.SORT_PROPERTIES_ALPHABETICALLY off) lists a
    bean's field-backed properties first, then the getter-only ones in the order Class.getDeclaredMethods returns
    them, which the JDK leaves unspecified ("not sorted and not in any particular order") and HotSpot varies from
    run to run: ServerStats' getters (getMinLatency, getAvgLatency, ..., getServerState) usually come out as
    provider_null, server_state, outstanding_requests, ...; in one CI run a Java follower put server_state after
    max_latency. zkref keeps the usual order (chapter 09a1); what can be compared with Java is the keys, their
    types, and the order of the field-backed ones."""
    out = []
    for key, sub in srvr_shape:
        if key == "server_stats" and isinstance(sub, list):
            fields = [kv for kv in sub if kv[0] in SERVER_STATS_FIELDS]
            sub = [("fields, in order", fields), ("getters, sorted", sorted((kv for kv in sub if kv not in fields),
                                                                       key=repr))]
        out.append((key, sub))
    return out


def word_shape(text: str) -> list[str]:
    "A word's lines with every number replaced by N and the values after `=`/`: `/tab kept only as a kind."
    return [re.sub(r"\d+", "N", line) for line in text.splitlines()]


# ------------------------------------------------------------------------------------------------ the commands
def test_leader_command(ensemble):
    """`leader` on a quorum server: is_leader, the leader's id and its quorum host, then command/error; every
    member names the same leader and only the leader says it is one.
    Reference: Java Commands.LeaderCommand (QuorumPeer.getLeaderId, getLeaderAddress)"""
    kind, snap = ensemble
    leader_sid = next(s for s, m in snap["modes"].items() if m == "leader")
    for sid in snap["modes"]:
        r = snap[sid]["leader"]
        assert list(r) == ["is_leader", "leader_id", "leader_ip", "command", "error"], (kind, r)
        assert r == {"is_leader": sid == leader_sid, "leader_id": leader_sid, "leader_ip": "127.0.0.1",
                     "command": "leader", "error": None}, (kind, sid)


def test_voting_view(ensemble):
    """`voting_view` lists the voting members only (no observer), by id: quorum and election addresses as
    host:port lists, the client address (known for the server itself only) and the learner type.
    Reference: Java Commands.VotingViewCommand (QuorumServerView)"""
    kind, snap = ensemble
    for sid in snap["modes"]:
        view = snap[sid]["voting_view"]["current_config"]
        assert list(view) == ["1", "2", "3"], (kind, view)
        for member, entry in view.items():
            assert list(entry) == ["server_addresses", "election_addresses", "client_address", "learner_type"]
            assert entry["learner_type"] == "participant"
            assert all(re.fullmatch(r"127\.0\.0\.1:\d+", a) for a in entry["server_addresses"] + entry["election_addresses"])
            mine = int(member) == sid
            assert entry["client_address"] == (f"127.0.0.1:{_client_port(snap, sid)}" if mine else ""), (kind, sid, member)


def _client_port(snap: dict, sid: int) -> int:
    return int(re.search(r"^clientPort=(\d+)", snap[sid]["4lw:conf"], re.M).group(1))


def test_zabstate(ensemble):
    """`zabstate`: myid, is_leader, the quorum and election addresses (Jackson's MultipleAddresses), the client
    address, voting (false for the observer), the last zxid as hex, its epoch and counter, and the Zab phase.
    Reference: Java Commands.ZabStateCommand"""
    kind, snap = ensemble
    for sid, mode in snap["modes"].items():
        z = snap[sid]["zabstate"]
        assert list(z) == ["myid", "is_leader", "quorum_address", "election_address", "client_address", "voting",
                           "last_zxid", "zab_epoch", "zab_counter", "zabstate", "command", "error"], (kind, z)
        assert z["myid"] == sid and z["is_leader"] == (mode == "leader") and z["voting"] == (mode != "observer")
        assert z["zabstate"] == "broadcast"
        assert int(z["last_zxid"], 16) == (z["zab_epoch"] << 32) + z["zab_counter"]
        assert z["client_address"] == f"127.0.0.1:{_client_port(snap, sid)}"
        quorum_port = int(re.search(r"^quorumPort=(\d+)", snap[sid]["4lw:conf"], re.M).group(1))
        assert z["quorum_address"]["all_ports"] == [quorum_port] and z["quorum_address"]["empty"] is False
        assert z["quorum_address"]["wildcard_addresses"] == [f"0.0.0.0:{quorum_port}"]


def test_observers_and_orst(ensemble):
    """The leader lists its synced observer (one LearnerHandler info map); followers and the observer list none.
    `observer_connection_stat_reset` answers nothing but command/error.
    Reference: Java Commands.SyncedObserverConsCommand, LearnerHandler.getLearnerHandlerInfo, ObserverCnxnStatResetCommand"""
    kind, snap = ensemble
    for sid, mode in snap["modes"].items():
        o = snap[sid]["observers"]
        assert list(o) == ["synced_observers", "observers", "command", "error"]
        if mode == "leader":
            assert o["synced_observers"] == 1 and [h["sid"] for h in o["observers"]] == [4], (kind, o)
            assert list(o["observers"][0]) == ["remote_socket_address", "sid", "established", "queued_packets",
                                               "queued_packets_size", "packets_received", "packets_sent",
                                               "requests", "last_zxid"]
            info = o["observers"][0]
            assert re.fullmatch(r"/127\.0\.0\.1:\d+", info["remote_socket_address"])
            # the observer was sent the write's INFORM and pings, and answered: live counters, a real zxid
            assert info["established"] > 1_600_000_000_000 and info["packets_sent"] > 0, (kind, info)
            assert info["packets_received"] > 0 and info["last_zxid"] > 0 and info["requests"] == 0, (kind, info)
        else:
            assert o["synced_observers"] == 0 and o["observers"] == []
        assert snap[sid]["observer_connection_stat_reset"] == {"command": "observer_connection_stat_reset",
                                                               "error": None}


def test_srvr_and_stat_json(ensemble):
    """`srvr`/`stat` JSON: the server state is the role; only the leader adds `proposal_stats` (before node_count).
    Reference: Java Commands.SrvrCommand (Leader.getProposalStats), ServerStats"""
    kind, snap = ensemble
    for sid, mode in snap["modes"].items():
        for cmd in ("srvr", "stat"):
            r = snap[sid][cmd]
            assert r["server_stats"]["server_state"] == mode
            assert ("proposal_stats" in r) == (mode == "leader"), (kind, sid, cmd)
            if mode == "leader":
                keys = list(r)
                assert keys.index("proposal_stats") == keys.index("node_count") - 1
                assert list(r["proposal_stats"]) == ["last_buffer_size", "min_buffer_size", "max_buffer_size"]


def test_conf(ensemble):
    """`conf` (the word) adds the peer's settings and the membership block; `configuration` (JSON) carries the
    server id.
    Reference: Java QuorumZooKeeperServer.dumpConf, ZooKeeperServerConf.toMap"""
    kind, snap = ensemble
    for sid, mode in snap["modes"].items():
        text = snap[sid]["4lw:conf"]
        keys = [line.split("=", 1)[0] for line in text.split("membership: \n")[0].splitlines()]
        assert keys[keys.index("serverId"):] == ["serverId", "initLimit", "syncLimit", "electionAlg",
                                                 "electionPort", "quorumPort", "peerType"], (kind, keys)
        assert f"\nserverId={sid}\n" in text and "\ninitLimit=10\nsyncLimit=5\nelectionAlg=3\n" in text
        assert f"\npeerType={1 if mode == 'observer' else 0}\n" in text
        members = text.split("membership: \n")[1]
        assert re.fullmatch(r"(server\.[1-3]=127\.0\.0\.1:\d+:\d+:participant\n){3}"
                            r"server\.4=127\.0\.0\.1:\d+:\d+:observer\nversion=0", members), (kind, members)
        assert snap[sid]["conf"]["server_id"] == sid


def test_srvr_word(ensemble):
    """`srvr`/`stat` words say `Mode: leader|follower|observer`; the leader adds a last line
    `Proposal sizes last/min/max: a/b/c`.
    Reference: Java StatCommand (four-letter word), ServerStats.toString"""
    kind, snap = ensemble
    for sid, mode in snap["modes"].items():
        for w in ("srvr", "stat"):
            lines = snap[sid][f"4lw:{w}"].splitlines()
            assert f"Mode: {mode}" in lines
            assert lines[-1].startswith("Node count: ") if mode != "leader" else (
                re.fullmatch(r"Proposal sizes last/min/max: -?\d+/-?\d+/-?\d+", lines[-1])
                and lines[-2].startswith("Node count: ")), (kind, w, lines)


def test_mntr(ensemble):
    """`mntr` (and `monitor`) on a quorum server: version, server_state, peer_state (an observer then names its
    master), the quorum size, and on the leader the learner, sync and proposal gauges, all integers.
    Reference: Java QuorumZooKeeperServer/ObserverZooKeeperServer.dumpMonitorValues, LeaderZooKeeperServer.registerMetrics"""
    kind, snap = ensemble
    leader_sid = next(s for s, m in snap["modes"].items() if m == "leader")
    for sid, mode in snap["modes"].items():
        rows = dict(line.split("\t", 1) for line in snap[sid]["4lw:mntr"].splitlines())
        keys = list(rows)
        state = {"leader": "leading", "follower": "following", "observer": "observing"}[mode]
        assert keys[:3] == ["zk_version", "zk_server_state", "zk_peer_state"], (kind, keys[:4])
        assert rows["zk_server_state"] == mode and rows["zk_peer_state"] == f"{state} - broadcast"
        assert (keys[3] == "zk_observer_master_id") == (mode == "observer")
        if mode == "observer":
            assert rows["zk_observer_master_id"] == str(leader_sid)
        assert rows["zk_quorum_size"] == "3"
        for g in LEADER_GAUGES:
            assert (f"zk_{g}" in rows) == (mode == "leader"), (kind, mode, g)
        if mode == "leader":
            assert all(re.fullmatch(r"-?\d+", rows[f"zk_{g}"]) for g in LEADER_GAUGES)
            assert (rows["zk_learners"], rows["zk_synced_followers"], rows["zk_synced_observers"],
                    rows["zk_synced_non_voting_followers"]) == ("3", "2", "1", "0"), (kind, rows)
        for k in ("zk_znode_count", "zk_global_sessions", "zk_num_alive_connections"):
            assert re.fullmatch(r"\d+", rows[k]), (kind, k)
        m = snap[sid]["monitor"]
        assert [k for k in m if k in ("version", "server_state", "peer_state")] == ["version", "server_state",
                                                                                    "peer_state"]
        assert m["peer_state"] == rows["zk_peer_state"] and m["quorum_size"] == 3


# ------------------------------------------------------------------------------------------- zkref beside Java
def comparable(snap: dict) -> dict:
    "Per role: the JSON shapes of the quorum commands and the shape of the quorum lines of the words."
    out = {}
    for role, r in by_role(snap).items():
        mntr_keys = [l.split("\t")[0] for l in r["4lw:mntr"].splitlines()]
        quorum_mntr = [k for k in mntr_keys if k[3:] in LEADER_GAUGES + ("quorum_size", "peer_state",
                                                                          "observer_master_id")]
        out[role] = {
            "json": {c: server_stats_shape(shape(r[c])) if c == "srvr" else shape(r[c])
                     for c in ("leader", "voting_view", "zabstate", "observers", "observer_connection_stat_reset",
                               "srvr", "conf")},
            "srvr": word_shape(r["4lw:srvr"])[1:],           # the version line differs (3.8.0 vs zkref)
            "conf": [l.split("=")[0] for l in r["4lw:conf"].splitlines()],
            # the keys dumpMonitorValues writes before the gauges (the gauges follow in the registry's order)
            "mntr_head": [k for k in mntr_keys[:4] if k[3:] in ("version", "server_state", "peer_state",
                                                                "observer_master_id")],
            "proposal_sizes": r["srvr"].get("proposal_stats"),   # the same write on both: the same bytes
            "mntr_quorum": sorted(quorum_mntr),
        }
    return out


def test_zkref_matches_java(zkref_snapshot, java_snapshot):
    """For the leader, a follower and the observer, zkref answers every quorum command with Java 3.8's keys, order
    and JSON types (in `server_stats`, the order of the field-backed properties: see `server_stats_shape`), the
    same `srvr`/`conf` lines and quorum `mntr` keys, and (after the same write) the same proposal sizes.
    Reference: Java Commands (branch-3.8), StatCommand, QuorumZooKeeperServer.dumpConf, Leader.propose"""
    zk, java = comparable(zkref_snapshot), comparable(java_snapshot)
    for role in ("leader", "follower", "observer"):
        for part in java[role]:
            assert zk[role][part] == java[role][part], (role, part, zk[role][part], java[role][part])
