"""The quorum servers register their own gauges as they start and drop them as they stop, with no AdminServer:
`mntr` (and Prometheus, which reads the same registry) shows the leader-only and quorum gauges on the servers
that own them, with Java 3.8's names — checked on zkref ensembles (`admin.enableServer=false`, MiniCluster's
default) and beside a Java 3.8 ensemble of the same shape.
"""
from __future__ import annotations

import asyncio
import re
import urllib.request

import pytest

from conftest import Ensemble, four_letter_word, free_ports, java_available, wait_for
from zkref.testing import MiniCluster

pytestmark = pytest.mark.timeout(300)

# Java: LeaderZooKeeperServer.registerMetrics
LEADER_GAUGES = {"learners", "synced_followers", "synced_non_voting_followers", "synced_observers", "pending_syncs",
                 "leader_uptime", "last_proposal_size", "max_proposal_size", "min_proposal_size"}
# Java: ZooKeeperServer.registerMetrics (every server) and QuorumZooKeeperServer.registerMetrics
SERVER_GAUGES = {"avg_latency", "max_latency", "min_latency", "packets_received", "packets_sent",
                 "num_alive_connections", "outstanding_requests", "uptime", "znode_count", "watch_count",
                 "ephemerals_count", "approximate_data_size", "global_sessions", "local_sessions",
                 "open_file_descriptor_count", "max_file_descriptor_count", "connection_drop_probability",
                 "last_client_response_size", "max_client_response_size", "min_client_response_size",
                 "outstanding_tls_handshake", "auth_failed_count", "non_mtls_remote_conn_count",
                 "non_mtls_local_conn_count", "quorum_size"}
GAUGES = LEADER_GAUGES | SERVER_GAUGES
PROMETHEUS = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"


class PrometheusCluster(MiniCluster):
    "A MiniCluster whose zkref servers each serve Prometheus /metrics on 127.0.0.1 and a port of their own."
    def __init__(self, **kw):
        super().__init__(**kw)
        self.prometheus_ports = dict(zip(self.sids, free_ports(len(self.sids))))

    def _config_text(self, sid: int) -> str:
        return super()._config_text(sid) + (f"metricsProvider.className={PROMETHEUS}\n"
                                            f"metricsProvider.httpHost=127.0.0.1\n"
                                            f"metricsProvider.httpPort={self.prometheus_ports[sid]}\n")


def rows(mntr: str) -> dict[str, str]:
    "`zk_<key>\\t<value>` lines as {key: value}, without the zk_ prefix."
    return {k[3:]: v for k, v in (line.split("\t", 1) for line in mntr.splitlines())}


def num(r: dict[str, str], *keys: str) -> tuple[float, ...]:
    "Gauge values as numbers (with the Prometheus provider `mntr` prints them as doubles: `3.0`)."
    return tuple(float(r[k]) for k in keys)


def scrape(port: int) -> dict[str, float]:
    "The unlabelled samples of a Prometheus /metrics page."
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {m[1]: float(m[2]) for m in re.finditer(r"^([a-z_]+) (\S+)$", text, re.M)}


async def by_role(c: MiniCluster) -> dict[str, dict[str, str]]:
    "`mntr` of the leader, one follower and the observer, read while the roles stay put (bounded tries)."
    for _ in range(10):
        modes = await c.wait_serving(timeout_s=120)
        out = {}
        for sid, mode in sorted(modes.items()):
            out.setdefault(mode, dict(rows(await c.four_letter_word(sid, "mntr")), sid=str(sid)))
        if await c.wait_serving(timeout_s=120) == modes and set(out) == {"leader", "follower", "observer"}:
            return out
    raise AssertionError(f"the ensemble kept changing roles: {modes}")


async def sessions_everywhere(c: MiniCluster, count: int, timeout_s: float = 60) -> None:
    "Poll every server's mntr until each counts `count` global sessions (TimeoutError after `timeout_s`)."
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        seen = {sid: rows(await c.four_letter_word(sid, "mntr")).get("global_sessions") for sid in c.sids}
        if all(v is not None and float(v) == count for v in seen.values()):
            return
        if loop.time() > deadline:
            raise TimeoutError(f"global_sessions never reached {count} everywhere: {seen}")
        await asyncio.sleep(0.1)


async def read_ensemble(c: MiniCluster, prometheus: bool) -> dict:
    """Start 3 participants + 1 observer; read mntr per role, then open one session and create a 100-byte node
    through the leader and read again once every server counts the session (and Prometheus, on zkref)."""
    await c.start()
    await c.wait_for_leader(timeout_s=120)
    before = await by_role(c)
    loop = asyncio.get_running_loop()
    zk = await c.client(int(before["leader"]["sid"]))
    try:
        await loop.run_in_executor(None, lambda: zk.create("/metrics", b"x" * 100))
        await sessions_everywhere(c, 1)
        after = await by_role(c)
        snap = {"before": before, "after": after}
        if prometheus:
            snap["prometheus"] = {role: await loop.run_in_executor(None, scrape, c.prometheus_ports[int(r["sid"])])
                                  for role, r in after.items()}
    finally:
        await loop.run_in_executor(None, zk.stop)
        zk.close()
    return snap


def run_zkref_ensemble(cluster_class, root, prometheus: bool) -> dict:
    "Start 3 participants + 1 observer of `cluster_class` as processes, read them (read_ensemble), stop them."
    async def main():
        c = cluster_class(n=3, observers=1, mode="process", proxies=False, tick_time_ms=500, root=root)
        try:
            return await read_ensemble(c, prometheus=prometheus)
        finally:
            await c.close()
    return asyncio.run(main())


@pytest.fixture(scope="module")
def zkref_ensemble(tmp_path_factory):
    "zkref, default metrics provider (mntr prints integers and leaves null gauges out, as Java's)."
    return run_zkref_ensemble(MiniCluster, tmp_path_factory.mktemp("zkref"), prometheus=False)


@pytest.fixture(scope="module")
def prometheus_ensemble(tmp_path_factory):
    "zkref with the Prometheus provider on every server."
    return run_zkref_ensemble(PrometheusCluster, tmp_path_factory.mktemp("prometheus"), prometheus=True)


@pytest.fixture(scope="module")
def java_ensemble(tmp_path_factory):
    if not java_available():
        pytest.skip("Java ZooKeeper 3.8 is not installed")

    async def main():
        c = MiniCluster(n=3, observers=1, mode="process", java={1, 2, 3, 4}, proxies=False, tick_time_ms=500,
                        root=tmp_path_factory.mktemp("java"))
        try:
            return await read_ensemble(c, prometheus=False)
        finally:
            await c.close()
    return asyncio.run(main())


def test_leader_registers_its_gauges_without_an_admin_server(zkref_ensemble):
    """With `admin.enableServer=false`, the leader's `mntr` has `quorum_size` and the leader's own gauges with
    Java's names: 3 learners (2 followers + 1 observer), 2 synced followers, 1 synced observer, no non-voting
    follower, no pending sync, a leader uptime that grows, and proposal sizes of -1 before the first proposal
    and positive after a write.
    Reference: Java LeaderZooKeeperServer.registerMetrics, QuorumZooKeeperServer.registerMetrics,
    ZooKeeperServer.startupWithServerState, Leader.getUptime, BufferStats"""
    before, after = zkref_ensemble["before"]["leader"], zkref_ensemble["after"]["leader"]
    assert LEADER_GAUGES <= set(before) and "quorum_size" in before
    assert num(before, "quorum_size", "learners", "synced_followers", "synced_observers",
               "synced_non_voting_followers", "pending_syncs") == (3, 3, 2, 1, 0, 0)
    assert num(before, "last_proposal_size", "min_proposal_size", "max_proposal_size") == (-1, -1, -1)
    assert 0 < num(before, "leader_uptime")[0] <= num(after, "leader_uptime")[0]
    last, low, high = num(after, "last_proposal_size", "min_proposal_size", "max_proposal_size")
    assert 0 < low <= last <= high and high >= 100           # the create carried 100 bytes of data
    assert num(after, "znode_count")[0] == num(before, "znode_count")[0] + 1


def test_followers_and_observers_register_only_theirs(zkref_ensemble):
    """A follower's and an observer's `mntr` have the server gauges and `quorum_size`, none of the leader's;
    a follower's `synced_observers` (its observer master's observers) is null without an observer master, so
    `mntr` leaves it out. Every server counts the client's session, once committed, in `global_sessions`.
    Reference: Java FollowerZooKeeperServer.registerMetrics (QuorumPeer.getSynced_observers_metric,
    Follower.getSyncedObserverSize), ObserverZooKeeperServer (no override), DefaultMetricsProvider dump
    (null gauges skipped), ZooKeeperServer.registerMetrics (zkdb::getSessionCount)"""
    for role in ("follower", "observer"):
        r = zkref_ensemble["after"][role]
        assert SERVER_GAUGES <= set(r), (role, SERVER_GAUGES - set(r))
        assert not LEADER_GAUGES & set(r), (role, LEADER_GAUGES & set(r))
        assert num(r, "quorum_size") == (3,)
    for role in ("leader", "follower", "observer"):
        assert num(zkref_ensemble["after"][role], "global_sessions") == (1,), role


def test_prometheus_shows_the_same_gauges(prometheus_ensemble):
    """With the Prometheus provider and no AdminServer, /metrics shows each server's gauges from the same registry
    `mntr` reads: the leader's learner and sync gauges, `quorum_size` everywhere, no leader gauges on a follower
    or the observer; a follower's null `synced_observers` is sampled as 0, on /metrics and in `mntr` alike.
    Reference: Java PrometheusMetricsProvider (Context.registerGauge; PrometheusGaugeWrapper.sample sets a null
    value to 0; dump samples the gauges), LeaderZooKeeperServer / FollowerZooKeeperServer.registerMetrics"""
    prom, mntr = prometheus_ensemble["prometheus"], prometheus_ensemble["after"]
    assert (prom["leader"]["learners"], prom["leader"]["synced_followers"], prom["leader"]["synced_observers"],
            prom["leader"]["quorum_size"]) == (3.0, 2.0, 1.0, 3.0)
    assert num(mntr["leader"], "learners", "synced_followers", "synced_observers") == (3, 2, 1)
    assert prom["follower"]["quorum_size"] == prom["observer"]["quorum_size"] == 3.0
    assert prom["follower"]["synced_observers"] == 0.0 and num(mntr["follower"], "synced_observers") == (0,)
    for role in ("follower", "observer"):
        assert not (LEADER_GAUGES - {"synced_observers"}) & set(prom[role]), role
        assert not (LEADER_GAUGES - {"synced_observers"}) & set(mntr[role]), role
    assert "synced_observers" not in prom["observer"] and "synced_observers" not in mntr["observer"]


def test_gauge_names_match_java(zkref_ensemble, java_ensemble):
    """On the leader, a follower and the observer, the gauges `mntr` lists (server, quorum and leader gauges) are
    the same set as a Java 3.8 ensemble's of the same shape, before and after a write.
    Reference: Java ZooKeeperServer / QuorumZooKeeperServer / LeaderZooKeeperServer / FollowerZooKeeperServer
    .registerMetrics, MonitorCommand"""
    for when in ("before", "after"):
        for role in ("leader", "follower", "observer"):
            zk = set(zkref_ensemble[when][role]) & GAUGES
            java = set(java_ensemble[when][role]) & GAUGES
            assert zk == java, (when, role, sorted(zk - java), sorted(java - zk))


def test_gauges_follow_the_role(tmp_path):
    """The gauges belong to the running server: when the leader is cut off it stops serving and its registry
    keeps none of them (but `outstanding_tls_handshake`, which Java never unregisters); the new leader (a former
    follower, same process) registers the leader's; the old leader, back as a follower, shows `quorum_size` and
    none of the leader's.
    Reference: Java ZooKeeperServer.shutdown → unregisterMetrics (LeaderZooKeeperServer.unregisterMetrics),
    ZooKeeperServer.startup → registerMetrics"""
    async def main():
        c = MiniCluster(n=3, mode="inprocess", root=tmp_path)
        try:
            await c.start()
            old = await c.wait_for_leader(timeout_s=60)
            await c.wait_serving(timeout_s=60)
            assert "learners" in rows(await c.four_letter_word(old, "mntr"))
            c.disconnect(old)
            await c.wait_state(old, "LOOKING", timeout_s=60)
            registry: dict = {}
            c.peer(old).metrics.dump(registry.__setitem__)     # nothing serves: the gauges went with the server
            assert not (LEADER_GAUGES | {"quorum_size", "znode_count"}) & set(registry), registry.keys() & GAUGES
            new = await c.wait_for_leader(timeout_s=60, other_than={old})
            await c.wait_serving([s for s in c.sids if s != old], timeout_s=60)
            new_rows = rows(await c.four_letter_word(new, "mntr"))
            assert new_rows["learners"] == "1" and new_rows["quorum_size"] == "3"
            c.heal()
            await c.wait_state(old, "FOLLOWING", timeout_s=60)
            modes = await c.wait_serving(timeout_s=60)
            assert modes[old] == "follower"
            old_rows = rows(await c.four_letter_word(old, "mntr"))
            assert old_rows["server_state"] == "follower" and old_rows["quorum_size"] == "3"
            assert not LEADER_GAUGES & set(old_rows), LEADER_GAUGES & set(old_rows)
            assert SERVER_GAUGES <= set(old_rows)
        finally:
            await c.close()
    asyncio.run(main())


@pytest.mark.parametrize("kind", ["java", "zkref"])
def test_packet_counts_start_again_with_each_role(kind, tmp_path):
    """Java keeps the packet counts in the ServerStats of each ZooKeeperServer, and every role of a quorum peer is
    a new server object: after the leader goes and a new one is elected, `srvr` on a server that had answered 30
    four-letter words counts only the packets that came since its new role began.
    Reference: ServerCnxn.packetReceived/packetSent (serverStats() of the factory's current server), ServerStats,
    QuorumPeer.run (makeFollower/makeLeader: a new FollowerZooKeeperServer/LeaderZooKeeperServer per role)."""
    if kind == "java" and not java_available():
        pytest.skip("Java ZooKeeper (Debian package zookeeper) is not installed")
    e = Ensemble(tmp_path / kind, (kind,) * 3)
    e.start()
    try:
        leader = e.wait_formed()
        watched = next(i for i in e.ids if i != leader)
        for _ in range(30):
            four_letter_word(e.client(watched), "ruok")
        received = lambda: int(next(line.split()[1] for line in four_letter_word(e.client(watched), "srvr").splitlines()
                                    if line.startswith("Received:")))
        before = received()
        assert before > 30
        e.stop(leader)
        rest = [i for i in e.ids if i != leader]
        wait_for(lambda: sorted(e.modes(rest)) == ["follower", "leader"], 90, 0.2, what="a new leader")
        after = received()
        assert 0 < after < 30, (before, after)
    finally:
        e.stop_all()
