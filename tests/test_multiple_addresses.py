"""Several addresses per server (`server.N=a:q:e|b:q:e`, with `-Dzookeeper.multiAddress.enabled=true`), as Java 3.8
handles them (its `MultipleAddresses`): every address bound, the election dialled through one that answers, a
learner dialling all of its leader's addresses at once, an address that cannot be bound skipped. Each server's
second address is on 127.0.0.2 (every 127.x address is the loopback). The ensembles are Java's (the oracle),
zkref's, and mixed both ways, so a Java peer and a zkref peer meet over both addresses. The order the addresses'
set iterates is checked against Java in test_java_hash.py.
"""
from __future__ import annotations

import contextlib
import json
import socket
import urllib.request
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from conftest import SERVLET_API_JAR, Ensemble, four_letter_word, free_ports, java_available, wait_for
from zkref.quorum.multiple_addresses import multiple_addresses

pytestmark = pytest.mark.timeout(300)

HOSTS = ("127.0.0.1", "127.0.0.2")
KINDS = {"zkref": ("zkref",) * 3}
if java_available():
    KINDS = {"java": ("java",) * 3, **KINDS,
             "java-led": ("zkref", "zkref", "java"),     # the highest id leads a fresh ensemble
             "zkref-led": ("java", "java", "zkref")}
MIXED = [k for k in KINDS if k.endswith("-led")]


class MultiAddress(Ensemble):
    "Every server at two addresses, written 127.0.0.2 first: `server.N=127.0.0.2:q:e|127.0.0.1:q:e`."

    def __init__(self, root, kinds, admin: bool = False, **kw):
        super().__init__(root, kinds, jvm_flags=["-Dzookeeper.multiAddress.enabled=true"],
                         classpath=[SERVLET_API_JAR] if admin else (), **kw)
        self.admin_ports = dict(zip(self.kinds, free_ports(len(self.kinds)))) if admin else {}
        for i, s in self.servers.items():
            for j, (q, e, _) in self.ports.items():
                s.config[f"server.{j}"] = f"127.0.0.2:{q}:{e}|127.0.0.1:{q}:{e}"
            if admin:
                s.config.update({"admin.enableServer": "true", "admin.serverAddress": "127.0.0.1",
                                 "admin.serverPort": self.admin_ports[i]})
            s.cfg_path.write_text("".join(f"{k}={v}\n" for k, v in s.config.items()))

    def election(self, i: int) -> int:
        return self.ports[i][1]

    def admin(self, i: int, command: str) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_ports[i]}/commands/{command}", timeout=10) as r:
            return json.loads(r.read())


def after(log: str, message: str) -> list[str]:
    "The line after each log line whose message ends with `message`: the exception Java prints under it."
    lines = log.splitlines()
    return [lines[n + 1] for n, line in enumerate(lines[:-1]) if line.endswith(message)]


@contextlib.contextmanager
def holding(addresses, e: MultiAddress):
    """Sockets bound (not listening, no SO_REUSEADDR) on `addresses` while ensemble `e` runs: a server cannot bind
    them, a dialler is refused. Stops every server of `e` started meanwhile, then frees the addresses."""
    held = []
    try:
        for addr in addresses:
            held.append(socket.socket())
            held[-1].bind(addr)
        yield
    finally:
        e.stop_all()
        for s in held:
            s.close()


@pytest.mark.parametrize("name", list(KINDS))
def test_an_ensemble_at_two_addresses_per_server_forms_and_serves(name, tmp_path):
    """With every server at two addresses, each server binds its election port on both (`<id> is accepting
    connections now, my election bind port: /127.0.0.x:<port>` for each), the leader accepts learners on both
    quorum addresses, a learner logs `Successfully connected to leader, using address: /127.0.0.x:<port>` for one
    of them, and the ensemble replicates: a write through one server is read through every one. `conf` prints
    each port once (`electionPort=<port>`) and the membership lines as Java's `QuorumServer.toString` (sorted by
    host); the AdminServer's `voting_view` lists each server's addresses in its set's order, and in a mixed
    ensemble a zkref server's answer equals a Java server's (but for the client address: each server knows only its
    own). Reference: Java QuorumCnxManager.Listener.run,
    Leader's constructor, Learner.connectToLeader, MultipleAddresses, QuorumPeer.QuorumServer.toString,
    Commands.VotingViewCommand, ZooKeeperServer.dumpConf"""
    if "java" in KINDS[name] and not Path(SERVLET_API_JAR).exists():
        pytest.skip("Java's AdminServer needs servlet-api.jar")
    e = MultiAddress(tmp_path, KINDS[name], admin=True)
    e.start()
    zks = []
    try:
        leader = e.wait_formed(timeout=90)
        for i in e.ids:
            log = e.log(i)
            assert "multiAddress.enabled set to true" in log, i
            for host in HOSTS:
                assert f"{i} is accepting connections now, my election bind port: /{host}:{e.election(i)}" in log, i
        for host in HOSTS:                                    # the leader listens on both quorum addresses
            socket.create_connection((host, e.quorum(leader)), timeout=5).close()
        for i in e.ids:
            if i != leader:
                wait_for(lambda: any(f"Successfully connected to leader, using address: /{host}:{e.quorum(leader)}"
                                     in e.log(i) for host in HOSTS), 10, what=f"server {i}'s connector line")

        writer = next(i for i in e.ids if i != leader)
        zks = [KazooClient(hosts=e.hosts([i]), timeout=10) for i in e.ids]
        for zk in zks:
            zk.start(30)
        zks[e.ids.index(writer)].create("/two-networks", b"one ensemble")
        for zk in zks:
            zk.sync("/")
            assert zk.get("/two-networks")[0] == b"one ensemble"

        members = [f"server.{j}=127.0.0.1:{q}:{el}|127.0.0.2:{q}:{el}:participant" for j, (q, el, _) in e.ports.items()]
        views = {}
        for i in e.ids:
            conf = four_letter_word(e.client(i), "conf").splitlines()
            assert f"electionPort={e.election(i)}" in conf and f"quorumPort={e.quorum(i)}" in conf, (i, conf)
            assert conf[conf.index("membership: ") + 1:][:3] == members, (i, conf)
            views[i] = e.admin(i, "voting_view")["current_config"]
        for j, (q, el, _) in e.ports.items():
            order = [h for h, _ in multiple_addresses([(h, q) for h in reversed(HOSTS)])]
            assert views[leader][str(j)]["server_addresses"] == [f"{h}:{q}" for h in order], views[leader]
        # each server knows only its own client address (from its clientPort); the rest must be equal everywhere
        for i, view in views.items():
            assert view[str(i)]["client_address"] == f"127.0.0.1:{e.client(i)}", view
        strip = {i: {j: {k: v for k, v in member.items() if k != "client_address"} for j, member in view.items()}
                 for i, view in views.items()}
        assert all(view == strip[leader] for view in strip.values()), strip
    finally:
        for zk in zks:
            zk.stop()
            zk.close()
        e.stop_all()


@pytest.mark.parametrize("name", list(KINDS))
def test_a_quorum_address_that_cannot_be_bound_is_skipped(name, tmp_path):
    """When one of the leader's quorum addresses cannot be bound (something else holds 127.0.0.2:<quorum port>),
    the leader logs `Couldn't bind to /127.0.0.2:<port>` with `java.net.BindException: Address already in use`
    under it and leads on the other address; each learner connects over 127.0.0.1, and a LeaderConnector that
    tried 127.0.0.2 first logs `Unexpected exception, tries=…, connecting to /127.0.0.2:<port>` with
    `java.net.ConnectException: Connection refused`. Reference: Java Leader.createServerSocket,
    Learner.LeaderConnector.connectToLeader"""
    e = MultiAddress(tmp_path, KINDS[name])
    with holding([("127.0.0.2", e.quorum(i)) for i in e.ids], e):
        e.start()
        leader = e.wait_formed(timeout=90)
        q = e.quorum(leader)
        assert after(e.log(leader), f"Couldn't bind to /127.0.0.2:{q}") == ["java.net.BindException: Address already in use"]
        for i in e.ids:
            if i == leader:
                continue
            wait_for(lambda: f"Successfully connected to leader, using address: /127.0.0.1:{q}" in e.log(i), 10,
                     what=f"server {i}'s connector line")
            refused = [e.log(i).splitlines()[n + 1] for n, line in enumerate(e.log(i).splitlines()[:-1])
                       if "Unexpected exception, tries=" in line and line.endswith(f"connecting to /127.0.0.2:{q}")]
            assert set(refused) <= {"java.net.ConnectException: Connection refused"}, (i, refused)


@pytest.mark.parametrize("name", [k for k in KINDS if k in ("java", "zkref")])
def test_a_leader_that_can_bind_no_quorum_address_is_not_made(name, tmp_path):
    """When none of the elected server's quorum addresses can be bound, Java's `new Leader(...)` fails: the server
    logs `Couldn't bind to` for each address with `java.net.BindException: Address already in use`, then QuorumPeer's
    `Unexpected exception` with `java.io.IOException: Leader failed to initialize any of the following sockets:
    [/127.0.0.1:<port>, /127.0.0.2:<port>]` (the set's order), and goes back to LOOKING without a leader to shut
    down: no `LEADING - LEADER ELECTION TOOK`, no `Shutdown called`. Reference: Java Leader's constructor,
    QuorumPeer.run (LEADING: catch Exception)"""
    e = MultiAddress(tmp_path, KINDS[name])
    q = e.quorum(3)                                       # a fresh ensemble elects the highest id
    with holding([(h, q) for h in HOSTS], e):
        e.start()
        failed = "Unexpected exception"
        wait_for(lambda: after(e.log(3), failed), 60, 0.2, what="server 3's failed Leader")
        order = multiple_addresses([(h, q) for h in reversed(HOSTS)])
        want = ("java.io.IOException: Leader failed to initialize any of the following sockets: ["
                + ", ".join(f"/{h}:{p}" for h, p in order) + "]")
        assert set(after(e.log(3), failed)) == {want}, after(e.log(3), failed)
        for h in HOSTS:
            assert set(after(e.log(3), f"Couldn't bind to /{h}:{q}")) == {"java.net.BindException: Address already in use"}
        assert "LEADING - LEADER ELECTION TOOK" not in e.log(3) and "Shutdown called" not in e.log(3)


@pytest.mark.parametrize("name", [k for k in KINDS if k in ("java", "zkref")])
def test_an_election_address_that_cannot_be_bound_is_given_up_while_the_other_serves(name, tmp_path):
    """A server whose second election address is held by something else retries it as Java's ListenerHandler does
    (`Exception while listening to address /127.0.0.2:<port>` three times), gives that address up (`Leaving
    listener thread for address 127.0.0.2:<port> after 3 errors. …`) and keeps the listener on the other: no `As I'm
    leaving the listener thread`, no exit, and the ensemble forms. The server is the highest id, which dials the
    others itself: a peer that dials it picks one of its addresses that answers a probe, and a bound-nowhere
    address on the loopback answers (Java and zkref alike), so a lower id could keep dialling the dead one.
    Reference: Java QuorumCnxManager.Listener.run (the latch counts every handler),
    ListenerHandler.acceptConnections, MultipleAddresses.getReachableOrOne"""
    e = MultiAddress(tmp_path, KINDS[name])
    port = e.election(3)
    with holding([("127.0.0.2", port)], e):
        e.start()
        e.wait_formed(timeout=90)
        left = (f"Leaving listener thread for address 127.0.0.2:{port} after 3 errors. Use "
                "zookeeper.electionPortBindRetry property to increase retry count.")
        wait_for(lambda: left in e.log(3), 30, 0.2, what="the handler giving up")
        log = e.log(3)
        assert log.count(f"Exception while listening to address /127.0.0.2:{port}") == 3
        assert f"3 is accepting connections now, my election bind port: /127.0.0.1:{port}" in log
        assert "As I'm leaving the listener thread" not in log and e.procs[3].proc.poll() is None


@pytest.mark.parametrize("name", [k for k in KINDS if k != "java"])
def test_a_tls_ensemble_at_two_addresses_per_server_forms(name, tmp_path):
    """With `sslQuorum=true` as well, the election and quorum connections over either address are TLS, with the
    peer's certificate checked against the address dialled (the certificate names 127.0.0.1 and 127.0.0.2): the
    ensemble forms and replicates, and every server binds its election port on both addresses. In the mixed
    ensembles Java and zkref servers dial each other over both. Reference: Java QuorumCnxManager.initiateConnection
    (createSSLSocket), Learner.LeaderConnector (createSocket), ZKTrustManager"""
    import shutil
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    from zkref.quorum.quorum_tls import make_test_pki
    pki = make_test_pki(tmp_path / "pki", ("server",), san="IP:127.0.0.1,IP:127.0.0.2,DNS:localhost")
    e = MultiAddress(tmp_path / "e", KINDS[name], sslQuorum="true",
                     **{"ssl.quorum.keyStore.location": pki / "server.pem",
                        "ssl.quorum.trustStore.location": pki / "ca.pem"})
    for s in e.servers.values():          # Java's UnifiedServerSocket needs netty-codec (see test_quorum_tls.py)
        s.classpath.append("/usr/share/java/netty-codec.jar")
    e.start()
    zks = []
    try:
        leader = e.wait_formed(timeout=90)
        for i in e.ids:
            for host in HOSTS:
                assert f"{i} is accepting connections now, my election bind port: /{host}:{e.election(i)}" in e.log(i)
        writer = next(i for i in e.ids if i != leader)
        zks = [KazooClient(hosts=e.hosts([i]), timeout=10) for i in (writer, leader)]
        for zk in zks:
            zk.start(30)
        zks[0].create("/tls-two-networks", b"secure")
        zks[1].sync("/")
        assert zks[1].get("/tls-two-networks")[0] == b"secure"
    finally:
        for zk in zks:
            zk.stop()
            zk.close()
        e.stop_all()
