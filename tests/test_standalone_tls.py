"""secureClientPort: the same protocol over TLS, with PEM key and trust stores from the `ssl.*` keys."""
from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import time

import pytest

from conftest import SERVLET_API_JAR, four_letter_word, free_port, wait_for
from test_standalone_server import RawClient
from zkref.jute import CreateRequest, GetDataRequest, GetDataResponse
from zkref.proto import OPEN_ACL_UNSAFE, OpCode

ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def pki(tmp_path):
    "A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_path / "pki"
    d.mkdir()
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=zkref-test-ca", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={name}", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.crt", "-days", "2", "-extfile", "san.ext", cwd=d)
        (d / f"{name}.pem").write_text((d / f"{name}.key").read_text() + (d / f"{name}.crt").read_text())
    return d


class TlsRawClient(RawClient):
    def __init__(self, port: int, ctx: ssl.SSLContext, **kw):
        self._ctx, self._port = ctx, port
        super().__init__(port, **kw)


def tls_connect(port: int, pki) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    ctx.load_cert_chain(str(pki / "client.pem"))
    return ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="127.0.0.1")


def test_secure_client_port_serves_tls(zkref_zk, pki):  # noqa: F811
    """With secureClientPort and PEM stores, clients speak the ordinary protocol inside TLS, the plain port
    keeps working, and a client without a certificate is refused at the TLS handshake (ssl.clientAuth
    defaults to need). Reference: ZooKeeper Administrator's Guide, "Encryption, Authentication,
    Authorization Options" (secureClientPort, ssl.keyStore.location, ssl.trustStore.location)."""
    secure = free_port()
    srv = zkref_zk({"secureClientPort": secure, "ssl.keyStore.location": pki / "server.pem",
                    "ssl.trustStore.location": pki / "ca.pem"})
    wait_for(lambda: f"binding to port 0.0.0.0/0.0.0.0:{secure}" in srv.logs(), 10,
             what="the secure port")
    raw = RawClient.__new__(RawClient)
    raw.sock, raw.events, raw.xid = tls_connect(secure, pki), [], 0
    from zkref.jute import ConnectRequest, ConnectResponse
    from zkref.proto import frame
    raw.sock.sendall(frame(ConnectRequest(time_out=10000, passwd=bytes(16)).to_bytes() + b"\0"))
    raw.connect = ConnectResponse.from_bytes(raw.read_frame())
    assert raw.connect.time_out == 10000 and raw.connect.session_id != 0
    h, _ = raw.call(OpCode.create, CreateRequest(path="/tls", data=b"secret", acl=OPEN_ACL_UNSAFE, flags=0))
    assert h.err == 0
    plain = RawClient(srv.client_port)
    h, body = plain.call(OpCode.getData, GetDataRequest(path="/tls", watch=False))
    assert GetDataResponse.from_bytes(body).data == b"secret"
    no_cert = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    try:   # TLS 1.3: the refusal arrives after the client's side of the handshake, as an alert or EOF
        s = no_cert.wrap_socket(socket.create_connection(("127.0.0.1", secure), timeout=10), server_hostname="127.0.0.1")
        s.sendall(ConnectRequest(time_out=10000, passwd=bytes(16)).to_bytes())
        assert s.recv(1) == b""
    except (ssl.SSLError, ConnectionError):
        pass
    assert "Traceback" not in srv.logs()
    raw.close(); plain.close()


def test_kazoo_over_tls(zkref_zk, pki):  # noqa: F811
    """kazoo with use_ssl, a client certificate and the CA works against the secure port.
    Reference: ZooKeeper Administrator's Guide, "secureClientPort"."""
    from kazoo.client import KazooClient
    secure = free_port()
    srv = zkref_zk({"secureClientPort": secure, "ssl.keyStore.location": pki / "server.pem",
                    "ssl.trustStore.location": pki / "ca.pem"})
    k = KazooClient(hosts=f"127.0.0.1:{secure}", use_ssl=True, certfile=str(pki / "client.crt"),
                    keyfile=str(pki / "client.key"), ca=str(pki / "ca.pem"), verify_certs=True, timeout=10)
    k.start(timeout=15)
    k.create("/over-tls", b"x")
    assert k.get("/over-tls")[0] == b"x"
    k.stop(); k.close()


def test_java_client_over_tls(zkref_zk, pki):  # noqa: F811
    """The Java client (ZooKeeperMain, Netty socket, zookeeper.client.secure=true, PEM stores) creates a node
    over the secure port. Debian's zkCli.sh lacks Netty on its classpath, so the client is started with
    java directly. Reference: ZooKeeper Administrator's Guide, "Client side TLS"."""
    import glob
    from conftest import java_available
    if not java_available():
        pytest.skip("Java ZooKeeper (Debian package zookeeper) is not installed")
    netty = [f"/usr/share/java/netty-{m}.jar" for m in ("buffer", "codec", "common", "handler", "resolver",
                                                         "transport", "transport-native-unix-common")]
    if not all(os.path.exists(j) for j in netty):
        pytest.skip("Netty jars are not installed")
    secure = free_port()
    srv = zkref_zk({"secureClientPort": secure, "ssl.keyStore.location": pki / "server.pem",
                    "ssl.trustStore.location": pki / "ca.pem"})
    cp = ":".join(["/usr/share/java/zookeeper.jar", *netty])
    out = subprocess.run(["java", "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty",
                          "-Dzookeeper.client.secure=true", f"-Dzookeeper.ssl.keyStore.location={pki / 'client.pem'}",
                          f"-Dzookeeper.ssl.trustStore.location={pki / 'ca.pem'}", "-cp", cp,
                          "org.apache.zookeeper.ZooKeeperMain", "-server", f"127.0.0.1:{secure}", "create",
                          "/java-tls", "x"], capture_output=True, text=True, timeout=60)
    assert "Created /java-tls" in out.stdout + out.stderr, out.stdout + out.stderr
    raw = RawClient(srv.client_port)
    h, body = raw.call(OpCode.getData, GetDataRequest(path="/java-tls", watch=False))
    assert h.err == 0 and GetDataResponse.from_bytes(body).data == b"x"
    raw.close()


NETTY = [f"/usr/share/java/netty-{m}.jar" for m in ("buffer", "codec", "common", "handler", "resolver", "transport",
                                                     "transport-native-unix-common")]


def test_server_stats_count_both_client_ports_as_in_java(zkref_zk, java_zk, pki):  # noqa: F811
    """Java keeps one ServerStats per server, whichever port a client came in on: after `srst`, a plain session
    and two TLS sessions make `mntr`'s num_alive_connections (ZooKeeperServer.getNumAliveConnections adds the
    plain and the secure factory), packets_received and packets_sent, and `srvr`'s `Connections:`, count both
    ports. Java serves secureClientPort with its Netty factory (serverCnxnFactory), from the same PEM files.
    Reference: ServerStats, ZooKeeperServer.getNumAliveConnections (3.8)."""
    from zkref.jute import ConnectRequest
    from zkref.proto import frame
    if not all(os.path.exists(j) for j in NETTY):
        pytest.skip("Netty jars are not installed")
    seen = {}
    for start in (java_zk, zkref_zk):
        secure, admin = free_port(), free_port()
        config = {"4lw.commands.whitelist": "*", "secureClientPort": secure,
                  "ssl.keyStore.location": pki / "server.pem", "ssl.trustStore.location": pki / "ca.pem",
                  "admin.enableServer": "true", "admin.serverAddress": "127.0.0.1", "admin.serverPort": admin}
        if start is java_zk:
            config["serverCnxnFactory"] = "org.apache.zookeeper.server.NettyServerCnxnFactory"
        srv = start(config, classpath=[*NETTY, SERVLET_API_JAR]) if start is java_zk else start(config)
        wait_for(lambda: "Server stats reset." in four_letter_word(srv.client_port, "srst"), 10, what="srst")
        clients = [RawClient(srv.client_port)]
        for _ in range(2):
            s = tls_connect(secure, pki)
            s.sendall(frame(ConnectRequest(time_out=10000, passwd=bytes(16)).to_bytes() + b"\0"))
            raw = RawClient.__new__(RawClient)
            raw.sock, raw.events, raw.xid = s, [], 0
            raw.read_frame()                            # the ConnectResponse
            clients.append(raw)
        # Java's Netty factory counts a packet sent in the write's completion listener, which can run after the
        # client has read it (CI saw 3 of 4 once): wait, through the AdminServer, which counts no client packet,
        # until the four sends are counted
        wait_for(lambda: _admin_monitor(admin)["packets_sent"] >= 4, 10, what="the sends to be counted")
        m = dict(line.split("\t", 1) for line in four_letter_word(srv.client_port, "mntr").splitlines())
        srvr = four_letter_word(srv.client_port, "srvr").splitlines()
        seen[srv.kind] = (m["zk_num_alive_connections"], m["zk_packets_received"], m["zk_packets_sent"],
                          next(line for line in srvr if line.startswith("Connections:")))
        for c in clients:
            c.close()
    # three sessions and the mntr connection; three handshakes and the mntr; srst's answer and three ConnectResponses
    assert seen["java"] == ("4", "4", "4", "Connections: 4"), seen["java"]
    assert seen["zkref"] == seen["java"], seen


def _admin_monitor(port: int) -> dict:
    "The AdminServer's `monitor` answer."
    import json
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/commands/monitor", timeout=10) as r:
        return json.loads(r.read())


@pytest.fixture
def java_stores(pki):
    """The test PKI as a Java operator keeps it, every store written by `keytool`: PKCS#12 key and trust stores
    (JDK 17 encrypts both with PBEWithHmacSHA256AndAES_256), JKS ones, and a PKCS#12 key store named `.jks`
    (what `keytool -genkeypair -keystore keystore.jks` makes since Java 9)."""
    if shutil.which("keytool") is None:
        pytest.skip("keytool (Java) is not installed")
    openssl("pkcs12", "-export", "-in", "server.crt", "-inkey", "server.key", "-certfile", "ca.pem",
            "-out", "server-openssl.p12", "-passout", "pass:openssl-pw", cwd=pki)
    for store_type, name in (("PKCS12", "server.p12"), ("JKS", "server.jks"), ("PKCS12", "server-pkcs12.jks")):
        subprocess.run(["keytool", "-importkeystore", "-noprompt", "-srckeystore", "server-openssl.p12",
                        "-srcstoretype", "PKCS12", "-srcstorepass", "openssl-pw", "-destkeystore", name,
                        "-deststoretype", store_type, "-deststorepass", "key-pw", "-destkeypass", "key-pw"],
                       cwd=pki, check=True, capture_output=True)
    for store_type, name in (("PKCS12", "trust.p12"), ("JKS", "trust.jks")):
        subprocess.run(["keytool", "-importcert", "-noprompt", "-alias", "ca", "-file", "ca.pem", "-keystore",
                        name, "-storetype", store_type, "-storepass", "trust-pw"], cwd=pki, check=True,
                       capture_output=True)
    # the certificate bags encrypted with 40-bit RC2, the default of JDK 8's keytool and of OpenSSL 1.x
    subprocess.run(["keytool", "-J-Dkeystore.pkcs12.certProtectionAlgorithm=PBEWithSHA1AndRC2_40", "-importcert",
                    "-noprompt", "-alias", "ca", "-file", "ca.pem", "-keystore", "trust-rc2-40.p12", "-storetype",
                    "PKCS12", "-storepass", "trust-pw"], cwd=pki, check=True, capture_output=True)
    openssl("pkcs12", "-export", "-legacy", "-in", "server.crt", "-inkey", "server.key", "-certfile", "ca.pem",
            "-out", "server-rc2-40.p12", "-passout", "pass:key-pw", cwd=pki)
    return pki


def _kazoo_tls(port: int, pki, client_cert: bool = True, refused: bool = False):
    """A kazoo session over TLS (the test CA, and the client certificate unless told not to); its node's data.
    `refused`: a refusal is expected, so it is waited for only as long as it takes to be sure."""
    from kazoo.client import KazooClient
    certs = {"certfile": str(pki / "client.crt"), "keyfile": str(pki / "client.key")} if client_cert else {}
    k = KazooClient(hosts=f"127.0.0.1:{port}", use_ssl=True, ca=str(pki / "ca.pem"), verify_certs=True,
                    timeout=4 if refused else 10, connection_retry={"max_tries": 0}, **certs)
    try:
        k.start(timeout=6 if refused else 20)
        k.ensure_path("/tls-check")
        return k.get("/tls-check")[0]
    finally:
        k.stop(); k.close()


def _secure_server(start, config: dict):
    "Java (its Netty factory: NIO has no TLS) or zkref, with secureClientPort and `config`; (server, secure port)."
    secure = free_port()
    config = {"secureClientPort": secure, **config}
    if start.__name__ == "java_start":
        config["serverCnxnFactory"] = "org.apache.zookeeper.server.NettyServerCnxnFactory"
        srv = start(config, classpath=NETTY)
        wait_for(lambda: f"bound to port {secure}" in srv.logs(), 20, what="Java's secure port")
        return srv, secure
    srv = start(config)

    def accepting() -> bool:                               # "binding to port" is logged before the bind
        try:
            socket.create_connection(("127.0.0.1", secure), timeout=1).close()
            return True
        except OSError:
            return False
    wait_for(accepting, 10, what="the secure port")
    return srv, secure


@pytest.fixture
def both_servers(java_zk, zkref_zk):
    "(name, factory) for Java 3.8 (Netty) and zkref."
    if not all(os.path.exists(j) for j in NETTY):
        pytest.skip("Netty jars are not installed")
    def java_start(config, **kw):
        return java_zk(config, **kw)
    def zkref_start(config, **kw):
        return zkref_zk(config, **kw)
    return [("java", java_start), ("zkref", zkref_start)]


@pytest.mark.parametrize("key_store, trust_store", [("server.p12", "trust.p12"), ("server.jks", "trust.jks"),
                                                     ("server-pkcs12.jks", "trust.p12"),
                                                     ("server-rc2-40.p12", "trust-rc2-40.p12")])
def test_keytool_stores_serve_tls_as_in_java(both_servers, java_stores, key_store, trust_store):
    """`ssl.keyStore.location` and `ssl.trustStore.location` may name PKCS#12 or JKS stores (the type from the
    extension; since Java 9 either type opens the other's files) with their passwords: with the stores `keytool`
    wrote, kazoo reaches the secure port with its client certificate, on Java's server and on zkref; without one
    it is refused (`ssl.clientAuth` is `need`). The last pair's certificate bags are encrypted with 40-bit RC2
    (`openssl pkcs12 -export -legacy`; `keytool` set to JDK 8's default), whose trusted CA zkref finds by decrypting
    them (RFC 2268).
    Reference: Java X509Util.createSSLContextAndOptionsFromConfig, KeyStoreFileType, PKCS12FileLoader,
    JKSFileLoader, ClientX509Util; JDK keystore.type.compat, PKCS12KeyStore.loadSafeContents."""
    from kazoo.handlers.threading import KazooTimeoutError
    for name, start in both_servers:
        srv, secure = _secure_server(start, {
            "ssl.keyStore.location": java_stores / key_store, "ssl.keyStore.password": "key-pw",
            "ssl.trustStore.location": java_stores / trust_store, "ssl.trustStore.password": "trust-pw"})
        assert _kazoo_tls(secure, java_stores) == b"", name
        if key_store == "server.p12":
            with pytest.raises(KazooTimeoutError):
                _kazoo_tls(secure, java_stores, client_cert=False, refused=True)


def test_without_a_trust_store_client_certificates_need_a_system_ca(both_servers, pki):
    """With no `ssl.trustStore.location` the client's certificate is checked against the platform's CAs (Java:
    the JVM's default trust store), so one signed by a private CA is refused, on both servers; with
    `ssl.clientAuth=none` no certificate is asked for and the same client is served.
    Reference: Java X509Util.createSSLContextAndOptionsFromConfig (null TrustManagers: the JDK's default),
    X509Util.ClientAuth."""
    from kazoo.handlers.threading import KazooTimeoutError
    for name, start in both_servers:
        srv, secure = _secure_server(start, {"ssl.keyStore.location": pki / "server.pem"})
        with pytest.raises(KazooTimeoutError):
            _kazoo_tls(secure, pki, refused=True)
        srv, secure = _secure_server(start, {"ssl.keyStore.location": pki / "server.pem", "ssl.clientAuth": "none"})
        assert _kazoo_tls(secure, pki, client_cert=False) == b"", name


@pytest.mark.parametrize("settings, message", [
    ({}, "secureClientPort needs a key store: zookeeper.ssl.keyStore.location (ssl.keyStore.location in zoo.cfg) is not set"),
    ({"ssl.keyStore.location": "{pki}/server.jks", "ssl.keyStore.type": "BCFKS"},
     "zookeeper.ssl.keyStore.type (ssl.keyStore.type in zoo.cfg) is BCFKS; zkref reads PEM, PKCS12 and JKS key and "
     "trust stores (convert it: keytool -importkeystore -srckeystore {pki}/server.jks"),
    ({"ssl.keyStore.location": "{pki}/server.jks", "ssl.keyStore.password": "not-it"},
     "Failed to create KeyManager: {pki}/server.jks: Keystore was tampered with, or password was incorrect"),
    ({"ssl.keyStore.location": "{pki}/server.p12", "ssl.keyStore.password": "not-it"},
     "Failed to create KeyManager: {pki}/server.p12: Invalid password or PKCS12 data"),
    ({"ssl.keyStore.location": "{pki}/server.pem", "ssl.trustStore.location": "{pki}/trust.p12"},
     "Failed to create TrustManager: {pki}/trust.p12: "),
    ({"ssl.keyStore.location": "{pki}/server.pem", "ssl.trustStore.location": "{pki}/trust.jks"},
     "Failed to create TrustManager: {pki}/trust.jks: Keystore was tampered with, or password was incorrect"),
    ({"ssl.keyStore.location": "{pki}/server.pem", "ssl.keyStore.type": "PKCS11"},
     "No enum constant org.apache.zookeeper.common.KeyStoreFileType.PKCS11"),
    ({"ssl.keyStore.location": "{pki}/server.pem", "ssl.clientAuth": "sometimes"},
     "No enum constant org.apache.zookeeper.common.X509Util.ClientAuth.SOMETIMES"),
])
def test_bad_client_tls_settings_stop_the_server(zkref_zk, java_stores, settings, message):
    """A client-port TLS setting zkref cannot use stops `python -m zkref` at start-up with exit code 2 ("Invalid
    config, exiting abnormally") and a message naming the key: no key store, a BCFKS store (with the keytool line
    that converts it), a wrong JKS or PKCS#12 password, a trust store whose password is not given (the JDK checks a
    JKS store's integrity with the empty password then), an unknown store type or clientAuth. (Java's Netty factory builds the context at the first TLS connection and fails each one instead.)
    Reference: Java X509Util.createSSLContextAndOptionsFromConfig ("Failed to create KeyManager"),
    KeyStoreFileType.fromPropertyValue, X509Util.ClientAuth.fromPropertyValue, ZooKeeperServerMain.main."""
    config = {"secureClientPort": free_port(), **{k: str(v).format(pki=java_stores) for k, v in settings.items()}}
    srv = zkref_zk(config, wait=False)
    assert srv.proc.wait(30) == 2
    assert "Invalid config, exiting abnormally" in srv.logs()
    assert message.format(pki=java_stores) in srv.logs(), srv.logs()[-2000:]


def test_port_unification_without_a_key_store_stops_the_server(zkref_zk):
    """`client.portUnification=true` with no `ssl.keyStore.location` stops zkref at start-up with exit code 2 and the
    key's name, as a secure client port without one does (divergences page: Java's Netty factory serves the port's
    plain-text clients and fails each TLS one). Reference: Java NettyServerCnxnFactory (DualModeSslHandler, initSSL)"""
    srv = zkref_zk({"client.portUnification": "true"}, wait=False)
    assert srv.proc.wait(30) == 2
    assert "Invalid config, exiting abnormally" in srv.logs()
    assert ("client.portUnification needs a key store: zookeeper.ssl.keyStore.location (ssl.keyStore.location in "
            "zoo.cfg) is not set") in srv.logs()


@pytest.mark.parametrize("store", ["ca-only.p12", "client-and-ca.p12", "client-and-ca.jks", "ca-only-rc2-40.p12"])
def test_trust_store_without_trusted_entries_has_no_anchor_as_in_java(both_servers, pki, store):
    """ZooKeeper's trust manager takes only a store's trusted certificate entries (`new PKIXBuilderParameters(
    trustStore, …)`), and a PKCS#12 certificate is one only with the trusted key usage attribute that `keytool
    -importcert` adds and `openssl pkcs12 -export` does not. So an openssl store of the CA alone (also with its
    certificate bag encrypted with 40-bit RC2, `-legacy`, OpenSSL 1.x's default), or of the client's key,
    certificate and CA, and a JKS store of that key entry alone, hold no trust anchor: Java's TLS clients all
    fail with "the trustAnchors parameter must be non-empty", and zkref refuses to start with those words (the
    divergences page: zkref builds the context at start).
    Reference: ZooKeeper X509Util.createTrustManager; JDK PKCS12KeyStore.loadSafeContents (TrustedKeyUsage),
    PKIXParameters(KeyStore)"""
    from kazoo.handlers.threading import KazooTimeoutError
    openssl("pkcs12", "-export", "-nokeys", "-in", "ca.pem", "-out", "ca-only.p12", "-passout", "pass:trust-pw", cwd=pki)
    openssl("pkcs12", "-export", "-nokeys", "-legacy", "-in", "ca.pem", "-out", "ca-only-rc2-40.p12",
            "-passout", "pass:trust-pw", cwd=pki)
    openssl("pkcs12", "-export", "-inkey", "client.key", "-in", "client.crt", "-certfile", "ca.pem",
            "-out", "client-and-ca.p12", "-passout", "pass:trust-pw", cwd=pki)
    if store.endswith(".jks"):
        if shutil.which("keytool") is None:
            pytest.skip("keytool is not installed")
        subprocess.run(["keytool", "-importkeystore", "-noprompt", "-srckeystore", "client-and-ca.p12", "-srcstoretype",
                        "PKCS12", "-srcstorepass", "trust-pw", "-destkeystore", store, "-deststoretype", "JKS",
                        "-deststorepass", "trust-pw", "-destkeypass", "trust-pw"], cwd=pki, check=True, capture_output=True)
    words = "the trustAnchors parameter must be non-empty"
    for name, start in both_servers:
        config = {"ssl.keyStore.location": pki / "server.pem", "ssl.trustStore.location": pki / store,
                  "ssl.trustStore.password": "trust-pw"}
        if name == "java":
            srv, secure = _secure_server(start, config)
            with pytest.raises(KazooTimeoutError):
                _kazoo_tls(secure, pki, refused=True)
            wait_for(lambda: words in srv.logs(), 10, what="Java's error")
        else:
            srv = start({"secureClientPort": free_port(), **config}, wait=False)
            assert srv.proc.wait(30) == 2
            assert f"Failed to create TrustManager: {pki / store}: {words}" in srv.logs(), srv.logs()[-2000:]


def test_damaged_stores_are_refused_with_a_message(java_stores, tmp_path):
    """A key or trust store cut short or with a byte changed anywhere is refused with Java's kind of message
    ("Failed to create KeyManager/TrustManager: <file>: …", e.g. "Keystore was tampered with, or password was
    incorrect", "Invalid keystore format"), never with another error, and never accepted with a changed key.
    Reference: Java X509Util.createKeyManager/createTrustManager (KeyManagerException, TrustManagerException),
    JavaKeyStore.engineLoad."""
    from zkref.quorum.x509_util import ClientX509Util, SSLContextException
    damaged = tmp_path / "damaged"
    for store, password, which in (("server.jks", "key-pw", "keyStore"), ("server.p12", "key-pw", "keyStore"),
                                   ("trust.jks", "trust-pw", "trustStore"), ("trust.p12", "trust-pw", "trustStore")):
        good = (java_stores / store).read_bytes()
        cuts = [good[:n] for n in range(0, len(good), max(1, len(good) // 40))]
        flips = [good[:i] + bytes([good[i] ^ 0x5A]) + good[i + 1:] for i in range(4, len(good), max(1, len(good) // 40))]
        for data in cuts + flips:
            damaged.with_suffix(store[-4:]).write_bytes(data)
            props = {f"zookeeper.ssl.{which}.location": str(damaged.with_suffix(store[-4:])),
                     f"zookeeper.ssl.{which}.password": password}
            if which == "trustStore":
                props["zookeeper.ssl.keyStore.location"] = str(java_stores / "server.pem")
            else:
                props["zookeeper.ssl.trustStore.location"] = str(java_stores / "ca.pem")
            with pytest.raises(SSLContextException, match="Failed to create (Key|Trust)Manager: "):
                ClientX509Util(props.get)


def test_client_cert_reload_serves_renewed_stores_without_a_restart(zkref_zk, pki, tmp_path):
    """With `client.certReload=true` the secure port watches its key and trust store files: after both are
    overwritten with another CA's (a renewal), new TLS connections get the new server certificate and are
    checked against the new trust store — a client of the new CA is served and one of the old CA no longer —
    without a restart. (Java has this from 3.8.5, ZOOKEEPER-4546; Debian's 3.8.0 has not, so zkref is tested
    alone here.) Reference: Java NettyServerCnxnFactory (zookeeper.client.certReload),
    X509Util.enableCertFileReloading, resetDefaultSSLContextAndOptions (branch-3.8)."""
    from kazoo.handlers.threading import KazooTimeoutError
    from zkref.quorum.x509_util import make_test_pki
    new_pki = make_test_pki(tmp_path / "renewed")
    live = tmp_path / "live"
    live.mkdir()
    shutil.copy(pki / "server.pem", live / "server.pem")
    shutil.copy(pki / "ca.pem", live / "ca.pem")
    srv, secure = _secure_server(zkref_zk, {"client.certReload": "true", "ssl.keyStore.location": live / "server.pem",
                                            "ssl.trustStore.location": live / "ca.pem"})
    assert _kazoo_tls(secure, pki) == b""
    with pytest.raises(KazooTimeoutError):
        _kazoo_tls(secure, new_pki, refused=True)
    for name in ("server.pem", "ca.pem"):              # as a renewal script writes them: a new file, renamed
        shutil.copy(new_pki / name, live / f"{name}.new")
        os.replace(live / f"{name}.new", live / name)

    def renewed() -> bool:
        try:
            return _kazoo_tls(secure, new_pki, refused=True) == b""
        except KazooTimeoutError:
            return False
    wait_for(renewed, 30, what="the renewed certificates")
    with pytest.raises(KazooTimeoutError):
        _kazoo_tls(secure, pki, refused=True)
    assert "Reloaded the client TLS key and trust stores" in srv.logs()


def _unified_server(name: str, start, pki, x509_provider: bool = True, **extra):
    """Java (its Netty factory: NIO has no port unification) or zkref with `client.portUnification=true`, the test
    PKI's stores, every four-letter word, and `extra` zoo.cfg lines. Without secureClientPort nothing registers the
    x509 provider Java's TLS connections need, so an `authProvider.x509` line does unless `x509_provider` is False."""
    config = {"client.portUnification": "true", "4lw.commands.whitelist": "*",
              "ssl.keyStore.location": pki / "server.pem", "ssl.trustStore.location": pki / "ca.pem", **extra}
    if x509_provider:
        config["authProvider.x509"] = "org.apache.zookeeper.server.auth.X509AuthenticationProvider"
    if name == "java":
        config["serverCnxnFactory"] = "org.apache.zookeeper.server.NettyServerCnxnFactory"
        return start(config, classpath=NETTY)
    return start(config)


def test_client_port_unification_takes_tls_and_plain_text_as_java(both_servers, pki):
    """With `client.portUnification=true` the plain client port also speaks TLS: a plain kazoo session, a TLS
    kazoo session with its client certificate and a plain four-letter word are all served on the one port, and
    a TLS client without a certificate is refused, on Java's Netty factory and on zkref alike.
    Reference: Java NettyServerCnxnFactory (zookeeper.client.portUnification, DualModeSslHandler,
    TLS_HANDSHAKE_RECORD_TYPE)."""
    from kazoo.client import KazooClient
    from kazoo.handlers.threading import KazooTimeoutError
    seen = {}
    for name, start in both_servers:
        srv = _unified_server(name, start, pki)
        port = srv.client_port
        plain = KazooClient(hosts=f"127.0.0.1:{port}", timeout=10)
        plain.start(timeout=15)
        plain.create("/unified", b"plain")
        assert _kazoo_tls(port, pki) == b"", name                 # ensure_path("/tls-check") over TLS
        assert plain.exists("/tls-check") is not None, name
        with pytest.raises(KazooTimeoutError):
            _kazoo_tls(port, pki, client_cert=False, refused=True)
        seen[name] = four_letter_word(port, "ruok")
        plain.stop(); plain.close()
    assert seen == {"java": "imok", "zkref": "imok"}


def test_unified_port_counts_connections_once_their_first_bytes_decide_as_java(both_servers, pki):
    """On a `client.portUnification` port a connection counts against `maxClientCnxns` only once its first bytes have
    said TLS or plain text: three silent connections (one stalled after a lone TLS record type byte) leave a
    four-letter word served with the limit at 3, while three plain sessions fill it and the next one is closed
    unanswered, on Java's Netty factory and on zkref alike.
    Reference: Java NettyServerCnxnFactory.CnxnChannelHandler.channelActive (no addCnxn with port unification),
    DualModeSslHandler.newNonSslHandler (addCnxn)"""
    from kazoo.client import KazooClient

    def answer(port: int) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            try:
                s.sendall(b"ruok")
                return s.recv(16)
            except (ConnectionResetError, BrokenPipeError):
                return b""
    seen = {}
    for name, start in both_servers:
        srv = _unified_server(name, start, pki, maxClientCnxns=3)
        port = srv.client_port
        silent = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(3)]
        sessions = []
        try:
            silent[0].sendall(b"\x16")                       # a TLS handshake record cut short
            time.sleep(0.5)
            with_silent = answer(port)
            for _ in range(3):
                k = KazooClient(hosts=f"127.0.0.1:{port}", timeout=10)
                k.start(timeout=15)
                sessions.append(k)
            with_sessions = answer(port)
            seen[name] = (with_silent, with_sessions)
        finally:
            for s in silent:
                s.close()
            for k in sessions:
                k.stop(); k.close()
    assert seen == {"java": (b"imok", b""), "zkref": (b"imok", b"")}


def _tls_raw_client(port: int, pki, name: str) -> RawClient:
    "A raw session over TLS with the certificate `<name>.crt`/`<name>.key` of the test CA."
    from zkref.jute import ConnectRequest, ConnectResponse
    from zkref.proto import frame
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    ctx.load_cert_chain(str(pki / f"{name}.crt"), str(pki / f"{name}.key"))
    raw = RawClient.__new__(RawClient)
    raw.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="127.0.0.1")
    raw.events, raw.xid = [], 0
    raw.sock.sendall(frame(ConnectRequest(time_out=10000, passwd=bytes(16)).to_bytes() + b"\0"))
    raw.connect = ConnectResponse.from_bytes(raw.read_frame())
    return raw


def test_tls_clients_are_authenticated_by_their_certificates_as_in_java(both_servers, pki):
    """A TLS client with a certificate is `x509:<subject>` at once, the subject written as Java's
    X500Principal.getName() writes it (RFC 2253: most specific first, keywords, escapes, an e-mail address as
    its OID and DER in hex): whoAmI lists it after the `ip` id; an ACL on that id lets that client in and keeps
    another certificate's client out; `X509AuthenticationProvider.superUser` makes its subject `super`. The
    same on Java 3.8's Netty factory and on zkref, compared field by field.
    Reference: Java X509AuthenticationProvider.handleAuthentication/getClientId/matches,
    NettyServerCnxnFactory.CertificateVerifier, QuorumPeerConfig.configureSSLAuth."""
    from zkref.jute import ACL, CreateRequest, GetDataRequest, Id, WhoAmIResponse
    from zkref.proto import OpCode
    for name, subject in (("fancy", "/C=US/ST=Some State/O=Acme, Inc./OU=eng=ops/CN=client #1/emailAddress=ops@example.com"),
                          ("other", "/CN=other")):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", subject, cwd=pki)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.crt", "-days", "2", cwd=pki)
    seen = {}
    for name, start in both_servers:
        srv, secure = _secure_server(start, {"ssl.keyStore.location": pki / "server.pem",
                                             "ssl.trustStore.location": pki / "ca.pem",
                                             "X509AuthenticationProvider.superUser": "CN=client"})
        fancy, other, root = (_tls_raw_client(secure, pki, n) for n in ("fancy", "other", "client"))
        who = lambda c: [(i.auth_scheme, i.user) for i in   # noqa: E731
                         WhoAmIResponse.from_bytes(c.call(OpCode.whoAmI)[1]).client_info]
        ids = who(fancy)
        acl = [ACL(perms=31, id=Id(scheme="x509", id=dict(ids)["x509"]))]
        created = fancy.call(OpCode.create, CreateRequest(path="/mine", data=b"x", acl=acl, flags=0))[0].err
        reads = [c.call(OpCode.getData, GetDataRequest(path="/mine", watch=False))[0].err for c in (fancy, other, root)]
        seen[name] = (ids, who(other), sorted(who(root)), created, reads)
        for c in (fancy, other, root):
            c.close()
    assert "x509" in dict(seen["java"][0]) and seen["java"][3:] == (0, [0, -102, 0]), seen["java"]
    assert seen["zkref"] == seen["java"], seen


def test_unified_port_without_the_x509_provider_drops_tls_clients_as_java(both_servers, pki):
    """`client.portUnification` alone does not register the x509 provider (only `secureClientPort` or an
    `authProvider.*` key does), so a TLS client with a certificate is dropped after its handshake with
    "X509 Auth provider not found: x509", while plain clients are served: Java 3.8's behaviour, kept.
    Reference: Java NettyServerCnxnFactory.CertificateVerifier (AUTH_PROVIDER_NOT_FOUND),
    QuorumPeerConfig.configureSSLAuth."""
    from kazoo.handlers.threading import KazooTimeoutError
    for name, start in both_servers:
        srv = _unified_server(name, start, pki, x509_provider=False)
        with pytest.raises(KazooTimeoutError):
            _kazoo_tls(srv.client_port, pki, refused=True)
        wait_for(lambda: "X509 Auth provider not found: x509" in srv.logs(), 10, what=f"{name}'s refusal line")
        assert four_letter_word(srv.client_port, "ruok") == "imok", name


def test_client_auth_want_serves_clients_with_and_without_certificates_as_java(both_servers, pki):
    """With `ssl.clientAuth=want` a client certificate is asked for but not required: a TLS client without one is
    served with only its `ip` id, one with a certificate gets `x509:<subject>` too, on Java 3.8's Netty factory
    and on zkref alike. Reference: Java X509Util.ClientAuth.WANT, NettyServerCnxnFactory.CertificateVerifier
    ("Certificate was requested but was optional")."""
    from zkref.jute import ConnectRequest, ConnectResponse, WhoAmIResponse
    from zkref.proto import OpCode, frame
    seen = {}
    for name, start in both_servers:
        srv, secure = _secure_server(start, {"ssl.keyStore.location": pki / "server.pem",
                                             "ssl.trustStore.location": pki / "ca.pem", "ssl.clientAuth": "want"})
        anonymous = RawClient.__new__(RawClient)
        ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        anonymous.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", secure), timeout=10),
                                         server_hostname="127.0.0.1")
        anonymous.events, anonymous.xid = [], 0
        anonymous.sock.sendall(frame(ConnectRequest(time_out=10000, passwd=bytes(16)).to_bytes() + b"\0"))
        anonymous.connect = ConnectResponse.from_bytes(anonymous.read_frame())
        known = _tls_raw_client(secure, pki, "client")
        who = lambda c: sorted((i.auth_scheme, i.user) for i in   # noqa: E731
                               WhoAmIResponse.from_bytes(c.call(OpCode.whoAmI)[1]).client_info)
        seen[name] = (who(anonymous), who(known))
        anonymous.close(); known.close()
    assert seen["java"] == ([("ip", "127.0.0.1")], [("ip", "127.0.0.1"), ("x509", "CN=client")]), seen
    assert seen["zkref"] == seen["java"], seen
