"""Read-only mode (`-Dreadonlymode.enabled=true`): a peer cut off from the quorum serves read-only clients.

Each scenario runs on three zkref processes (`python -m zkref`, the flag in SERVER_JVMFLAGS as zkServer.sh
passes it) and on three Java 3.8 servers (the flag on java's command line), through the same steps, and
checks the same answers from both.
"""
from __future__ import annotations

import json
import socket
import struct
import time
import urllib.request
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NotReadOnlyCallError
from kazoo.handlers.threading import KazooTimeoutError

import conftest
from conftest import SERVLET_API_JAR, four_letter_word, free_port, java_available, wait_for
from zkref.config import QuorumPeerConfig
from zkref.main import jvm_system_properties

pytestmark = pytest.mark.timeout(300)
TICK_MS = 500
READ_ONLY_FLAG = "-Dreadonlymode.enabled=true"
BANNER = "READ-ONLY mode; serving only read-only clients"
HAS_SERVLET_API = Path(SERVLET_API_JAR).exists()
KINDS = ["zkref", pytest.param("java", marks=pytest.mark.java)]


class Ensemble(conftest.Ensemble):
    """Three read-only-mode servers (conftest's Ensemble with `-Dreadonlymode.enabled=true`), all `zkref` or all
    `java`, each with its AdminServer on a free loopback port where it can run (Java's needs servlet-api.jar)."""

    def __init__(self, root: Path, kind: str, **extra):
        self.kind = kind
        self.admin_ports = dict(zip((1, 2, 3), conftest.free_ports(3)))
        super().__init__(root, (kind,) * 3, tick_ms=TICK_MS, jvm_flags=[READ_ONLY_FLAG],
                         classpath=[SERVLET_API_JAR] if HAS_SERVLET_API else [], **extra)

    def server_config(self, i: int) -> dict:
        if self.kind == "java" and not HAS_SERVLET_API:
            return {"admin.enableServer": "false"}
        return {"admin.enableServer": "true", "admin.serverAddress": "127.0.0.1", "admin.serverPort": self.admin_ports[i]}

    def admin(self, i: int, command: str) -> dict | None:
        "GET /commands/<command> from server i's AdminServer as JSON (None if it is off)."
        if self.kind == "java" and not HAS_SERVLET_API:
            return None
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_ports[i]}/commands/{command}", timeout=10) as r:
            return json.loads(r.read())

    def lose_quorum(self) -> int:
        "Form, then stop the leader and one follower; the survivor, once it says `ro` to isro."
        leader = self.wait_formed()
        lone = next(i for i in self.ids if i != leader)
        last_zxid = lambda i: four_letter_word(self.client(i), "srvr").partition("Zxid: ")[2].split("\n")[0]
        wait_for(lambda: last_zxid(lone) == last_zxid(leader) != "", 30, 0.1,   # the survivor has every commit
                 what="the survivor to apply what the leader applied")
        for i in [i for i in self.ids if i != lone]:
            self.stop(i)
        wait_for(lambda: four_letter_word(self.client(lone), "isro") == "ro", 60, 0.1,
                 what="the survivor to start its read-only server")
        return lone


def close(zk: KazooClient) -> None:
    try:
        zk.stop()
    finally:
        zk.close()


def connect_request(read_only: bool | None, session_id: int = 0, passwd: bytes = bytes(16),
                    last_zxid: int = 0, timeout_ms: int = 30000) -> bytes:
    "A framed ConnectRequest; read_only=None leaves the trailing byte out (an old client)."
    body = struct.pack(">iqiqi", 0, last_zxid, timeout_ms, session_id, len(passwd)) + passwd
    if read_only is not None:
        body += b"\x01" if read_only else b"\x00"
    return struct.pack(">i", len(body)) + body


def handshake(port: int, data: bytes, timeout: float = 10) -> bytes:
    "Send a handshake and return everything the server sends before it closes (or goes quiet for 3 s)."
    got = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        s.settimeout(3)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
    return got


@pytest.mark.timeout(240)
@pytest.mark.parametrize("kind", KINDS)
def test_a_lone_server_serves_read_only_clients_until_the_quorum_returns(kind, tmp_path):
    """Three servers with read-only mode and local sessions; two stop. About two seconds later the survivor
    answers `isro` with `ro`, `srvr` says `Mode: read-only` under Java's "READ-ONLY mode; serving only
    read-only clients" banner, `conf` lists the peer's settings, `mntr` `zk_server_state read-only` and the
    AdminServer's `is_read_only` and `server_stats` `read_only: true`. A kazoo
    client with read_only=True connects (state CONNECTED_RO) and reads what was written before; its writes
    (setData, create, sync) fail with NOTREADONLY; a client that did not ask for read-only is dropped with
    "Refusing session request for not-read-only client". When one server comes back the two elect a leader,
    the survivor says `rw`, and the read-only client moves to a read-write session and writes again.
    Reference: Java QuorumPeer.run (LOOKING, roZkMgr), ReadOnlyZooKeeperServer, ReadOnlyRequestProcessor,
    ZooKeeperServer.processConnectRequest, IsroCommand, StatCommand; ZooKeeper Administrator's Guide,
    "readonlymode.enabled"; Java ReadOnlyModeTest.testReadOnlyClient"""
    if kind == "java" and not java_available():
        pytest.skip("Java ZooKeeper is not installed")
    e = Ensemble(tmp_path, kind, localSessionsEnabled="true")
    try:
        e.start()
        e.wait_formed()
        assert [four_letter_word(e.client(i), "isro") for i in e.ids] == ["rw"] * 3
        zk = KazooClient(hosts=e.hosts(), timeout=10)
        zk.start(30)
        try:
            zk.create("/before", b"1")
        finally:
            close(zk)

        lone = e.lose_quorum()
        srvr = four_letter_word(e.client(lone), "srvr").splitlines()
        assert srvr[1] == BANNER and "Mode: read-only" in srvr, srvr
        assert four_letter_word(e.client(lone), "stat").splitlines()[1] == BANNER
        conf = dict(line.split("=", 1) for line in four_letter_word(e.client(lone), "conf").splitlines())
        assert list(conf)[-7:] == ["serverId", "initLimit", "syncLimit", "electionAlg", "electionPort",
                                   "quorumPort", "peerType"], conf
        assert conf["serverId"] == str(lone) and conf["peerType"] == "0"
        assert "zk_server_state\tread-only" in four_letter_word(e.client(lone), "mntr")
        for command in ("is_read_only", "server_stats"):     # Java: IsroCommand, SrvrCommand
            answer = e.admin(lone, command)
            assert answer is None or answer["read_only"] is True, answer

        # a local session, made and abandoned: the ConnectResponse ends with readOnly=true; it expires here
        with socket.create_connection(("127.0.0.1", e.client(lone)), timeout=10) as s:
            s.sendall(connect_request(True, timeout_ms=4000))
            f = s.makefile("rb")
            (n,) = struct.unpack(">i", f.read(4))
            body = f.read(n)
            protocol, timeout_ms, session_id, plen = struct.unpack_from(">iiqi", body)
            assert (n, protocol, timeout_ms, plen, body[-1:]) == (4 + 4 + 8 + 4 + 16 + 1, 0, 4000, 16, b"\x01")
            assert session_id >> 56 == lone
            assert f"0x{session_id:x}" in four_letter_word(e.client(lone), "dump")
        wait_for(lambda: f"0x{session_id:x}" not in four_letter_word(e.client(lone), "dump"), 30, 0.2,
                 what="the abandoned local session to expire")

        ro = KazooClient(hosts=e.hosts([lone]), read_only=True, timeout=4)
        ro.start(20)
        try:
            assert ro.client_state == "CONNECTED_RO"
            assert ro.get("/before")[0] == b"1"
            assert "before" in ro.get_children("/")
            for write in (lambda: ro.set("/before", b"2"), lambda: ro.create("/during", b"x"),
                          lambda: ro.sync("/before")):
                with pytest.raises(NotReadOnlyCallError):
                    write()
            assert ro.exists("/during") is None

            rw = KazooClient(hosts=e.hosts([lone]), timeout=4)
            with pytest.raises(KazooTimeoutError):
                rw.start(6)
            close(rw)
            assert "Refusing session request for not-read-only client /127.0.0.1:" in e.log(lone)

            back = next(i for i in e.ids if i != lone)
            e.start(back)
            e.wait_formed([lone, back])
            assert four_letter_word(e.client(lone), "isro") == "rw"
            wait_for(lambda: ro.client_state == "CONNECTED", 60, 0.1, what="the client to find a read-write server")
            ro.create("/after", b"3")
            assert ro.get("/before")[0] == b"1"
        finally:
            close(ro)
    finally:
        e.stop_all()
    log = e.log(lone)
    assert "Attempting to start ReadOnlyZooKeeperServer" in log and "Read-only server started" in log


@pytest.mark.timeout(240)
@pytest.mark.parametrize("kind", KINDS)
def test_without_local_sessions_a_read_only_server_makes_no_session(kind, tmp_path):
    """Read-only mode without localSessionsEnabled: the read-only server can create no session, because its
    createSession is refused like a write — a read-only client's handshake is answered with a bare
    ReplyHeader(xid 0, the server's last zxid, NOTREADONLY = -119) instead of a ConnectResponse. A client
    that sends no readOnly byte (an old client) is closed without an answer ("Connection request from old
    client … will be dropped if server is in r-o mode", then the not-read-only refusal), and so is a client
    reconnecting with a session the database knows ("Refusing global session reconnection in RO mode").
    Reference: Java ReadOnlyZooKeeperServer.setLocalSessionFlag and validateSession, ReadOnlyRequestProcessor
    (createSession without a local session), ZooKeeperServer.processConnectRequest;
    ReadOnlyModeTest.testGlobalSessionInRO"""
    if kind == "java" and not java_available():
        pytest.skip("Java ZooKeeper is not installed")
    e = Ensemble(tmp_path, kind)
    try:
        e.start()
        e.wait_formed()
        zk = KazooClient(hosts=e.hosts(), timeout=30)   # its session outlives the quorum: it stays global
        zk.start(30)
        zk.create("/before", b"1")
        session_id, passwd = zk.client_id
        zxid = zk.exists("/before").mzxid
        try:
            lone = e.lose_quorum()
            reply = handshake(e.client(lone), connect_request(True))
            assert len(reply) == 4 + 16, reply
            (n, xid, last_zxid, err) = struct.unpack(">iiqi", reply)
            assert (n, xid, err) == (16, 0, -119) and last_zxid >= zxid

            assert handshake(e.client(lone), connect_request(None)) == b""
            wait_for(lambda: "will be dropped if server is in r-o mode" in e.log(lone), 10, what="the old-client warning")

            assert handshake(e.client(lone), connect_request(True, session_id, passwd)) == b""
            wait_for(lambda: "Refusing global session reconnection in RO mode /127.0.0.1:" in e.log(lone), 10,
                     what="the global-session refusal")
        finally:
            zk.stop()
            zk.close()
    finally:
        e.stop_all()


def test_the_flag_comes_from_jvmflags_not_from_zoo_cfg(tmp_path):
    """`readonlymode.enabled` is a JVM system property without the `zookeeper.` prefix: zkServer.sh passes
    `-D` flags through SERVER_JVMFLAGS and JVMFLAGS (in that order, a later flag winning), and a
    `readonlymode.enabled=true` line in zoo.cfg only sets `zookeeper.readonlymode.enabled`, which nothing reads.
    Reference: zkServer.sh (JVMFLAGS="$SERVER_JVMFLAGS $JVMFLAGS"); Java QuorumPeerConfig.parseProperties
    (unknown keys become "zookeeper." + key); QuorumPeer.run (Boolean.getBoolean("readonlymode.enabled"))"""
    props = jvm_system_properties({"SERVER_JVMFLAGS": "-Xmx1g -Dreadonlymode.enabled=true -Da=1",
                                   "JVMFLAGS": "-Da=2 -Dflag -D -D=x -verbose"})
    assert props == {"readonlymode.enabled": "true", "a": "2", "flag": ""}
    assert jvm_system_properties({}) == {}

    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(f"dataDir={tmp_path}\nclientPort={free_port()}\nreadonlymode.enabled=true\n")
    config = QuorumPeerConfig()
    config.parse(str(cfg))
    assert config.get_system_property("readonlymode.enabled") is None
    assert config.get_system_property("zookeeper.readonlymode.enabled") == "true"
