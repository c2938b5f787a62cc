"""sslQuorum=true: TLS on the election and quorum ports, with zkref and Java 3.8 servers in one ensemble."""
from __future__ import annotations

import shutil
import socket
import struct

import pytest
from kazoo.client import KazooClient

from conftest import Ensemble, ServerProcess, free_port, java_available, wait_for
from zkref.quorum.quorum_tls import make_test_pki


# Java's UnifiedServerSocket tells TLS from plain text with Netty's SslHandler, which needs netty-codec; Debian's
# zookeeper.jar manifest leaves it out, and without it Java's election listener thread dies silently (an Error
# swallowed by its executor) at the first TLS connection it accepts.
JAVA_TLS_CLASSPATH = ["/usr/share/java/netty-codec.jar"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    "A CA and one server certificate naming 127.0.0.1 and localhost (every server uses it), as PEM files."
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = make_test_pki(tmp_path_factory.mktemp("quorum-pki"), ("server",))
    make_test_pki(d, ("stranger",), san="IP:10.9.9.9,DNS:zk9.example")
    return d


def tls_settings(pki, key: str = "server.pem") -> dict:
    return {"sslQuorum": "true", "ssl.quorum.keyStore.location": pki / key,
            "ssl.quorum.trustStore.location": pki / "ca.pem"}


def kazoo(hosts: str) -> KazooClient:
    zk = KazooClient(hosts=hosts, timeout=10)
    zk.start(timeout=20)
    return zk


@pytest.fixture
def ensembles(tmp_path):
    "Factory for Ensembles on TLS; every server started is stopped after the test."
    made = []

    def make(kinds, pki, **extra):
        e = Ensemble(tmp_path / f"e{len(made)}", kinds, classpath=JAVA_TLS_CLASSPATH, **tls_settings(pki), **extra)
        made.append(e)
        return e
    yield make
    for e in made:
        e.stop_all()


def replicates(e: Ensemble, writer: int, reader: int, path: str, data: bytes) -> None:
    "Create `path` through server `writer`, then read it (after sync) through server `reader`."
    a, b = kazoo(e.hosts([writer])), kazoo(e.hosts([reader]))
    try:
        a.create(path, data)
        b.sync(path)
        assert b.get(path)[0] == data
    finally:
        a.stop(), b.stop()


@pytest.mark.parametrize("protocol, negotiated", [(None, "TLSv1.2 - TLS_ECDHE_RSA_WITH_"),
                                                  ("TLSv1.3", "TLSv1.3 - TLS_AES_")])
def test_three_zkref_servers_form_a_tls_ensemble(ensembles, pki, protocol, negotiated):
    """With sslQuorum=true and PEM key and trust stores, three servers elect a leader over TLS election
    connections, the followers sync over TLS quorum connections, and a write through one server is read through
    another; the protocol is TLSv1.2 unless ssl.quorum.protocol says otherwise. Reference: ZooKeeper
    Administrator's Guide, "Quorum TLS" (sslQuorum, ssl.quorum.keyStore.location, ssl.quorum.trustStore.location,
    ssl.quorum.protocol); Java QuorumCnxManager.initiateConnection, Learner.connectToLeader."""
    e = ensembles(("zkref", "zkref", "zkref"), pki, **({"ssl.quorum.protocol": protocol} if protocol else {}))
    e.start()
    leader = e.wait_formed(timeout=60)
    follower = next(i for i in e.ids if i != leader)
    replicates(e, follower, leader, "/tls", b"over tls")
    logs = e.log(leader)
    assert "Using TLS encrypted quorum communication" in logs
    assert "Creating TLS-only quorum server socket" in logs
    assert "Accepted TLS connection from /127.0.0.1:" in logs and negotiated in logs
    assert any("SSL handshake complete with /127.0.0.1:" in e.log(i) for i in e.ids)


@pytest.mark.skipif(not java_available(), reason="Java ZooKeeper (Debian package zookeeper) is not installed")
def test_mixed_tls_ensemble_two_java_one_zkref(ensembles, pki):
    """A zkref server and two Java 3.8 servers, all with sslQuorum=true and the same PEM stores, form one
    ensemble: election and quorum connections between zkref and Java complete their TLS handshakes (TLSv1.2,
    mutual, hostname-verified both ways), and writes replicate from zkref to Java and from Java to zkref.
    Reference: Java QuorumX509Util / X509Util.createSSLContextAndOptionsFromConfig, ZKTrustManager,
    UnifiedServerSocket (TLS-only without portUnification)."""
    e = ensembles(("java", "java", "zkref"), pki)
    e.start()
    e.wait_formed(timeout=60)
    replicates(e, 3, 1, "/from-zkref", b"z")
    replicates(e, 2, 3, "/from-java", b"j")
    assert "SSL handshake complete with /127.0.0.1:" in e.log(3) + e.log(1) + e.log(2)


@pytest.mark.skipif(not java_available(), reason="Java ZooKeeper (Debian package zookeeper) is not installed")
def test_mixed_tls_ensemble_one_java_two_zkref(ensembles, pki):
    """One Java 3.8 server and two zkref servers with sslQuorum=true elect a leader and replicate writes both
    ways, whoever leads. Reference: ZooKeeper Administrator's Guide, "Quorum TLS"; Java Leader.LearnerCnxAcceptor,
    Learner.connectToLeader."""
    e = ensembles(("java", "zkref", "zkref"), pki)
    e.start()
    e.wait_formed(timeout=60)
    replicates(e, 1, 2, "/a", b"1")
    replicates(e, 3, 1, "/b", b"2")


def test_plain_text_server_cannot_join_a_tls_ensemble(ensembles, pki, tmp_path):
    """A server without sslQuorum that dials the election port of a TLS ensemble is refused before any message
    is read (Java: UnifiedSocket.detectMode, "Blocked insecure connection attempt", logged by receiveConnection as
    "Exception handling connection, addr: …, closing server connection"); it never joins, and the ensemble keeps
    serving writes. Reference: Java QuorumCnxManager.receiveConnection, UnifiedServerSocket."""
    e = ensembles(("zkref", "zkref", "zkref"), pki)
    e.start(1, 2)
    leader = e.wait_formed([1, 2], timeout=60)
    plain = e.servers[3]
    plain.config.pop("sslQuorum")
    plain.cfg_path.write_text("".join(f"{k}={v}\n" for k, v in plain.config.items()))
    e.procs[3] = plain.start(wait=False)
    wait_for(lambda: "Exception handling connection, addr: /127.0.0.1:" in e.log(1) + e.log(2), 30,
             what="a TLS server to refuse the plain-text peer")
    assert "Using insecure (non-TLS) quorum communication" in e.log(3)
    assert e.mode(3) in (None, "")            # still LOOKING: srvr answers "not currently serving"
    replicates(e, 1, 2, "/still-serving", b"ok")
    assert sorted(str(e.mode(i)) for i in (1, 2)) == ["follower", "leader"] and e.mode(leader) == "leader"


def test_plain_text_learner_is_refused_on_the_quorum_port(ensembles, pki):
    """A plain-text dialler on the leader's TLS quorum port is dropped as a failed LearnerHandler ("Unexpected
    exception in LearnerHandler", "GOODBYE"), and the leader keeps its followers. Reference: Java
    Leader.LearnerCnxAcceptor, LearnerHandler.run, UnifiedServerSocket."""
    e = ensembles(("zkref", "zkref", "zkref"), pki)
    e.start()
    leader = e.wait_formed(timeout=60)
    with socket.create_connection(("127.0.0.1", e.quorum(leader)), timeout=10) as s:
        s.sendall(struct.pack(">iq", 11, 0))     # the start of a plain FOLLOWERINFO packet
        s.settimeout(10)
        try:
            closed = s.recv(100) == b""
        except ConnectionResetError:              # closed with our bytes unread: a reset, not a FIN
            closed = True
        assert closed
    wait_for(lambda: "Blocked insecure connection attempt" in e.log(leader), 10, what="the leader's log line")
    assert "Unexpected exception in LearnerHandler: \njava.io.IOException: Blocked insecure connection attempt" \
        in e.log(leader)
    replicates(e, leader, next(i for i in e.ids if i != leader), "/after", b"x")


def test_certificate_for_another_host_is_refused(ensembles, pki):
    """Quorum TLS verifies the dialler's certificate too (QuorumX509Util.shouldVerifyClientHostname is true): a
    server whose certificate names neither its address nor its reverse name is refused by its peers, which
    log ZKTrustManager's "Failed to verify hostname" lines. Reference: Java ZKTrustManager.checkClientTrusted,
    performHostVerification."""
    e = ensembles(("zkref", "zkref", "zkref"), pki)
    e.start(1, 2)
    e.wait_formed([1, 2], timeout=60)
    bad = e.servers[3]
    bad.config["ssl.quorum.keyStore.location"] = pki / "stranger.pem"
    bad.cfg_path.write_text("".join(f"{k}={v}\n" for k, v in bad.config.items()))
    e.procs[3] = bad.start(wait=False)
    wait_for(lambda: "Failed to verify hostname: localhost" in e.log(1) + e.log(2) + e.log(3), 30,
             what="ZKTrustManager's refusal")
    assert e.mode(3) in (None, "")
    replicates(e, 1, 2, "/still", b"ok")


@pytest.mark.parametrize("settings, message", [
    ({"sslQuorum": "true"}, "zookeeper.ssl.quorum.keyStore.location (ssl.quorum.keyStore.location in zoo.cfg) is not set"),
    ({"sslQuorum": "true", "ssl.quorum.keyStore.location": "/nonexistent/server.pem"},
     "Failed to create KeyManager: /nonexistent/server.pem: No such file or directory"),
    ({"sslQuorum": "true", "ssl.quorum.keyStore.location": "/etc/zk/server.bcfks"},
     "zookeeper.ssl.quorum.keyStore.type (ssl.quorum.keyStore.type in zoo.cfg) is BCFKS; zkref reads PEM"),
    ({"sslQuorum": "true", "ssl.quorum.keyStore.location": "{pki}/server.pem",
      "ssl.quorum.trustStore.location": "{pki}/missing-ca.pem"}, "Failed to create TrustManager: "),
    ({"sslQuorum": "true", "ssl.quorum.keyStore.location": "{pki}/server.pem", "ssl.quorum.ocsp": "true"},
     "zookeeper.ssl.quorum.ocsp (ssl.quorum.ocsp in zoo.cfg) is not supported by zkref"),
])
def test_bad_quorum_tls_settings_stop_the_server(tmp_path, pki, settings, message):
    """A TLS setting zkref cannot use stops the server at start-up with exit code 2 ("Invalid config, exiting
    abnormally") and a message naming the key: no key store, an unreadable PEM file, a store type zkref does not
    read (BCFKS), OCSP (not implemented). (Java builds the context at the first connection and fails each dial instead.)
    Reference: Java X509Util.createSSLContextAndOptionsFromConfig ("Failed to create KeyManager"),
    KeyStoreFileType.fromPropertyValueOrFileName, X509Util's ssl.quorum.ocsp, QuorumPeerMain.main."""
    ports = [free_port(), free_port(), free_port(), free_port()]
    config = {k: str(v).format(pki=pki) for k, v in settings.items()}
    config.update({"server.1": f"127.0.0.1:{ports[0]}:{ports[1]}", "server.2": f"127.0.0.1:{ports[2]}:{ports[3]}",
                   "initLimit": 10, "syncLimit": 5})
    server = ServerProcess(tmp_path / "bad", config, myid=1)
    server.start(wait=False)
    try:
        assert server.proc.wait(30) == 2
    finally:
        server.stop()
    assert "Invalid config, exiting abnormally" in server.logs()
    assert message in server.logs()


# What JDK 17 logs under `Cannot open channel to 1 at election address …` when a TLS server dials a plain-text
# election port: confirmed on Debian's Java 3.8.0 / OpenJDK 17 (three Java servers, two plain, one sslQuorum=true:
# the stack trace's first line, then "Caused by: java.io.EOFException: SSL peer shut down incorrectly"). The test
# below compares with a Java run of the same scenario whenever Java is installed.
JDK17_HANDSHAKE_EOF = "javax.net.ssl.SSLHandshakeException: Remote host terminated the handshake"


def tls_server_dials_plain_ensemble(ensembles, pki, kind: str) -> tuple[Ensemble, str]:
    """Servers 1 and 2 plain text, server 3 with sslQuorum=true, all of `kind`: once 3 has failed to open a
    channel to both, the exception line its log prints under the first 'Cannot open channel to 1' warning."""
    e = ensembles((kind,) * 3, pki)
    for i in (1, 2):
        plain = e.servers[i]
        plain.config.pop("sslQuorum")
        plain.cfg_path.write_text("".join(f"{k}={v}\n" for k, v in plain.config.items()))
    e.start(1, 2)
    e.wait_formed([1, 2], timeout=90)
    e.start(3)
    wait_for(lambda: "Cannot open channel to 1 at election address" in e.log(3)
             and "Cannot open channel to 2 at election address" in e.log(3), 60,
             what="the TLS server's failed handshakes")
    lines = e.log(3).splitlines()
    at = next(n for n, line in enumerate(lines) if "Cannot open channel to 1 at election address" in line)
    return e, lines[at + 1] if at + 1 < len(lines) else ""


def test_tls_server_cannot_join_a_plain_text_ensemble(ensembles, pki):
    """The other way round: a server with sslQuorum=true dialling the election port of a plain-text ensemble
    sends a TLS ClientHello where the plain side expects an initial message; the plain side does what Java does
    with such bytes (drops the connection), the TLS server's handshake fails ("Cannot open channel to …"), it
    never joins, and the plain ensemble keeps serving. The warning's exception line is JDK 17's for an EOF during
    the handshake, the same as a Java 3.8 ensemble's in the same scenario (run here when Java is installed).
    Reference: Java QuorumCnxManager.initiateConnection, handleConnection; JDK 17 SSLSocketImpl.handleEOF."""
    e, line = tls_server_dials_plain_ensemble(ensembles, pki, "zkref")
    assert "SSL handshake complete" not in e.log(3)
    assert line == JDK17_HANDSHAKE_EOF
    assert e.mode(3) in (None, "")
    replicates(e, 1, 2, "/plain", b"still")
    e.stop_all()
    if java_available():
        java, java_line = tls_server_dials_plain_ensemble(ensembles, pki, "java")
        assert java_line == line, java.log(3)[-3000:]
        assert java.mode(3) in (None, "")


def rolling_upgrade(e: Ensemble, plain: int) -> None:
    "Every server with portUnification=true; server `plain` still dials without TLS."
    for i in e.ids:
        e.servers[i].config["portUnification"] = "true"
    e.servers[plain].config.pop("sslQuorum")
    for i in e.ids:
        e.servers[i].cfg_path.write_text("".join(f"{k}={v}\n" for k, v in e.servers[i].config.items()))


def test_port_unification_lets_plain_and_tls_servers_form_one_ensemble(ensembles, pki):
    """With portUnification=true every election and quorum port accepts TLS and plain text (Java's
    UnifiedServerSocket with allowInsecureConnection=true), so during a rolling move to TLS a server that still
    dials in plain text and servers that dial with TLS form one ensemble and replicate writes. Reference: ZooKeeper
    Administrator's Guide, "Upgrading existing non-TLS cluster with no downtime" (portUnification); Java
    QuorumCnxManager.Listener.ListenerHandler.createNewServerSocket, Leader.createServerSocket."""
    e = ensembles(("zkref", "zkref", "zkref"), pki)
    rolling_upgrade(e, plain=3)
    e.start()
    e.wait_formed(timeout=60)
    replicates(e, 3, 1, "/mixed", b"plain and tls")
    replicates(e, 2, 3, "/mixed2", b"tls and plain")
    logs = "".join(e.log(i) for i in e.ids)
    assert "Creating TLS-enabled quorum server socket" in logs and "Port unification enabled" in logs
    assert "Accepted plaintext connection from /127.0.0.1:" in logs
    assert "Accepted TLS connection from /127.0.0.1:" in logs
    assert "Using insecure (non-TLS) quorum communication" in e.log(3)


@pytest.mark.skipif(not java_available(), reason="Java ZooKeeper (Debian package zookeeper) is not installed")
def test_port_unification_with_java(ensembles, pki):
    """A Java 3.8 server dialling with TLS, a zkref server dialling in plain text and a zkref server dialling with
    TLS, all with portUnification=true, form one ensemble and replicate writes both ways. Reference: ZooKeeper
    Administrator's Guide, "Upgrading existing non-TLS cluster with no downtime"; Java UnifiedServerSocket."""
    e = ensembles(("java", "zkref", "zkref"), pki)
    rolling_upgrade(e, plain=2)
    e.start()
    e.wait_formed(timeout=60)
    replicates(e, 2, 1, "/p", b"plain zkref to java")
    replicates(e, 1, 3, "/q", b"java to tls zkref")
    assert "Accepted plaintext connection from" in e.log(1) + e.log(3)


def test_renewed_certificate_is_used_without_a_restart(ensembles, pki, tmp_path):
    """With sslQuorumReloadCertFiles=true a server watches its key and trust store files and uses new contents
    for the connections it makes from then on: a server started with a certificate its peers refuse joins the
    ensemble, without a restart, once its key store file is overwritten with a good certificate. Reference:
    Java X509Util.enableCertFileReloading / FileChangeWatcher, QuorumPeerMain.runFromConfig
    (sslQuorumReloadCertFiles)."""
    e = ensembles(("zkref", "zkref", "zkref"), pki)
    key = tmp_path / "s3-key.pem"
    shutil.copy(pki / "stranger.pem", key)
    e.servers[3].config.update({"ssl.quorum.keyStore.location": key, "sslQuorumReloadCertFiles": "true"})
    e.servers[3].cfg_path.write_text("".join(f"{k}={v}\n" for k, v in e.servers[3].config.items()))
    e.start(1, 2)
    e.wait_formed([1, 2], timeout=60)
    e.start(3)
    wait_for(lambda: "Failed to verify hostname: localhost" in e.log(1) + e.log(2) + e.log(3), 30,
             what="the peers to refuse the stranger certificate")
    assert "enabling cert file reloading" in e.log(3)
    shutil.copy(pki / "server.pem", key)
    wait_for(lambda: e.mode(3) == "follower", 60, 0.2, what="server 3 to follow after its certificate changed")
    assert "Reloaded the quorum TLS key and trust stores" in e.log(3)
    replicates(e, 3, 1, "/renewed", b"ok")


@pytest.mark.skipif(not java_available(), reason="Java ZooKeeper (Debian package zookeeper) is not installed")
def test_zkref_observer_of_a_java_tls_ensemble(ensembles, pki):
    """An observer dials the leader's quorum port like a follower (Learner.connectToLeader): a zkref observer of
    two Java 3.8 servers with sslQuorum=true syncs over TLS and serves the ensemble's writes. Reference: ZooKeeper
    Observers Guide; Java Observer.observeLeader, Learner.connectToLeader, UnifiedServerSocket."""
    e = ensembles(("java", "java", "zkref"), pki)
    for i in e.ids:
        cfg = e.servers[i].config
        cfg["server.3"] = f"{cfg['server.3']}:observer"
        if i == 3:
            cfg["peerType"] = "observer"
        e.servers[i].cfg_path.write_text("".join(f"{k}={v}\n" for k, v in cfg.items()))
    e.start()
    e.wait_formed([1, 2], timeout=60)
    wait_for(lambda: e.mode(3) == "observer", 60, 0.2, what="the zkref observer to serve")
    replicates(e, 1, 3, "/seen-by-observer", b"o")
    assert "Accepted TLS connection from /127.0.0.1:" in e.log(1) + e.log(2)


@pytest.mark.skipif(not java_available() or shutil.which("keytool") is None,
                    reason="Java ZooKeeper (Debian package zookeeper) and keytool are needed")
def test_mixed_tls_ensemble_on_pkcs12_stores_written_by_keytool(tmp_path, pki):
    """The quorum's key and trust stores may be PKCS#12 files (the JDK's default store type), here as `keytool`
    writes them: a Java 3.8 server and two zkref servers read the same `.p12` files with their passwords, form
    an ensemble over TLS and replicate a write. Reference: Java X509Util.createSSLContextAndOptionsFromConfig,
    KeyStoreFileType (".p12"), PKCS12FileLoader; ZooKeeper Administrator's Guide, "Quorum TLS"."""
    import subprocess
    d = tmp_path / "stores"
    d.mkdir()
    run = lambda *argv: subprocess.run(argv, cwd=d, check=True, capture_output=True)   # noqa: E731
    run("openssl", "pkcs12", "-export", "-in", pki / "server.crt", "-inkey", pki / "server.key", "-certfile",
        pki / "ca.pem", "-out", "from-openssl.p12", "-passout", "pass:openssl-pw")
    run("keytool", "-importkeystore", "-noprompt", "-srckeystore", "from-openssl.p12", "-srcstoretype", "PKCS12",
        "-srcstorepass", "openssl-pw", "-destkeystore", "server.p12", "-deststoretype", "PKCS12",
        "-deststorepass", "key-pw")
    run("keytool", "-importcert", "-noprompt", "-alias", "ca", "-file", pki / "ca.pem", "-keystore", "trust.p12",
        "-storetype", "PKCS12", "-storepass", "trust-pw")
    e = Ensemble(tmp_path / "e", ("java", "zkref", "zkref"), classpath=JAVA_TLS_CLASSPATH, sslQuorum="true",
                 **{"ssl.quorum.keyStore.location": d / "server.p12", "ssl.quorum.keyStore.password": "key-pw",
                    "ssl.quorum.trustStore.location": d / "trust.p12", "ssl.quorum.trustStore.password": "trust-pw"})
    try:
        e.start()
        leader = e.wait_formed(timeout=60)
        replicates(e, 1, 2, "/p12-from-java", b"j")
        replicates(e, 3, leader, "/p12-from-zkref", b"z")
        for i in (2, 3):
            assert "Using TLS encrypted quorum communication" in e.log(i)
            assert "SSL handshake complete with /127.0.0.1:" in e.log(i)
    finally:
        e.stop_all()
