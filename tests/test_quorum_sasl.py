"""Quorum SASL (DIGEST-MD5): with `quorum.auth.enableSasl`, `learnerRequireSasl` and `serverRequireSasl`, every
connection between two servers (election and Zab) starts with a login from the JAAS file's `QuorumLearner`
section, checked against the `QuorumServer` section's users. Ensembles of Java 3.8 servers, of zkref servers and of
both together form and serve; a server with a wrong password cannot join, on either kind.
Reference: Java QuorumPeer.initialize, SaslQuorumAuthServer/Learner, QuorumCnxManager.startConnection/
handleConnection, Learner.connectToLeader, LearnerHandler; the ZooKeeper wiki "Server-Server mutual authentication".
"""
from __future__ import annotations

import time

import pytest

from conftest import Ensemble, java_available, wait_for

JAAS = '''
QuorumServer {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_zkpeer="peersecret";
};
QuorumLearner {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="zkpeer"
    password="%s";
};
'''
SASL = {"quorum.auth.enableSasl": "true", "quorum.auth.learnerRequireSasl": "true",
        "quorum.auth.serverRequireSasl": "true"}


def _ensemble(tmp_path, kinds, passwords=("peersecret",) * 3):
    if "java" in kinds and not java_available():
        pytest.skip("Java ZooKeeper (Debian package zookeeper) is not installed")
    e = Ensemble(tmp_path / "-".join(kinds), kinds, **SASL)
    for i, password in zip(e.ids, passwords):
        jaas = tmp_path / f"jaas-{i}.conf"
        jaas.write_text(JAAS % password)
        e.servers[i].jvm_flags.append(f"-Djava.security.auth.login.config={jaas}")
    return e


@pytest.mark.parametrize("kinds", [("zkref",) * 3, ("java", "zkref", "zkref"), ("zkref", "java", "java")],
                         ids=["zkref", "java-zkref-zkref", "zkref-java-java"])
def test_an_ensemble_whose_servers_log_in_to_each_other_forms_and_serves(tmp_path, kinds):
    """Every server logs in to every other with DIGEST-MD5 before the election's notifications and the Zab
    handshake: the ensemble elects a leader, a write on one server is read on the others, the leader logs the
    accepting side's "Successfully completed the authentication using SASL. learner addr:" and each follower the
    dialling side's "… server addr: …, status: SUCCESS", whatever the mix of Java and zkref servers."""
    from kazoo.client import KazooClient
    e = _ensemble(tmp_path, kinds)
    try:
        e.start()
        leader = e.wait_formed()
        writer = KazooClient(hosts=e.hosts([leader]), timeout=10)
        writer.start(timeout=30)
        writer.create("/sasl-quorum", b"v")
        for i in e.ids:
            reader = KazooClient(hosts=e.hosts([i]), timeout=10)
            reader.start(timeout=30)
            reader.sync("/sasl-quorum")
            assert reader.get("/sasl-quorum")[0] == b"v", i
            reader.stop(); reader.close()
        writer.stop(); writer.close()
        # the leader accepted its followers' Zab logins, each follower logged in to the leader (the election
        # connections' logins depend on who dialled first)
        assert "Successfully completed the authentication using SASL. learner addr:" in e.log(leader), e.log(leader)[-3000:]
        for i in e.ids:
            if i != leader:
                assert "Successfully completed the authentication using SASL. server addr:" in e.log(i), i
    finally:
        e.stop_all()


@pytest.mark.parametrize("kinds", [("zkref",) * 3, ("java",) * 3, ("java", "java", "zkref"), ("zkref", "zkref", "java")],
                         ids=["zkref", "java", "zkref-intruder-among-java", "java-intruder-among-zkref"])
def test_a_server_with_a_wrong_password_cannot_join(tmp_path, kinds):
    """Server 3's QuorumLearner password is wrong: servers 1 and 2 form a quorum without it, and it never
    follows (its logins are refused: "Failed to authenticate using SASL" on the accepting side), on Java and on
    zkref alike, and when the intruder is of the other kind."""
    e = _ensemble(tmp_path, kinds, passwords=("peersecret", "peersecret", "a-guess"))
    try:
        e.start()
        leader = e.wait_formed([1, 2])
        wait_for(lambda: any("Failed to authenticate using SASL" in e.log(i) for i in (1, 2)), 30,
                 what="a refused login")
        time.sleep(3)                                  # time enough to have joined, were it let in
        assert e.mode(3) not in ("follower", "leader"), e.log(3)[-3000:]
        assert e.mode(leader) == "leader"
    finally:
        e.stop_all()


@pytest.mark.parametrize("settings", [{"quorum.auth.enableSasl": "true"},
                                      {"quorum.auth.enableSasl": "true", "quorum.auth.learnerRequireSasl": "true"}],
                         ids=["enabled-only", "learners-log-in"])
@pytest.mark.parametrize("kinds", [("zkref",) * 3, ("java", "zkref", "java")], ids=["zkref", "java-zkref-java"])
def test_the_rolling_upgrade_steps_form_an_ensemble(tmp_path, kinds, settings):
    """The ZooKeeper guide's rolling upgrade to quorum SASL: first `enableSasl` alone (nobody logs in; an
    accepting server peeks at the first eight bytes, sees no login and lets the peer through), then
    `learnerRequireSasl` too (everybody logs in, nobody requires it). Both steps form an ensemble that serves.
    Reference: SaslQuorumAuthServer.authenticate (QuorumAuth.nextPacketIsAuth), SaslQuorumAuthLearner.authenticate"""
    from kazoo.client import KazooClient
    if "java" in kinds and not java_available():
        pytest.skip("Java ZooKeeper (Debian package zookeeper) is not installed")
    e = Ensemble(tmp_path / "-".join(kinds), kinds, **settings)
    jaas = tmp_path / "jaas.conf"
    jaas.write_text(JAAS % "peersecret")
    for i in e.ids:
        e.servers[i].jvm_flags.append(f"-Djava.security.auth.login.config={jaas}")
    try:
        e.start()
        leader = e.wait_formed()
        client = KazooClient(hosts=e.hosts([i for i in e.ids if i != leader][:1]), timeout=10)
        client.start(timeout=30)
        client.create("/step", b"ok")
        assert client.get("/step")[0] == b"ok"
        client.stop(); client.close()
        logged_in = any("Successfully completed the authentication using SASL" in e.log(i) for i in e.ids)
        assert logged_in == ("quorum.auth.learnerRequireSasl" in settings)
        if "quorum.auth.learnerRequireSasl" not in settings:
            assert all("Skipping SASL authentication as quorum.auth.learnerRequireSasl=false" in e.log(i)
                       for i in e.ids if i != leader)      # each follower, at least as it dialled the leader
    finally:
        e.stop_all()


@pytest.mark.parametrize("kind", ["java", "zkref"])
def test_a_missing_jaas_section_stops_the_server_as_in_java(tmp_path, kind):
    """`quorum.auth.enableSasl=true` with a JAAS file that has no QuorumLearner section: QuorumPeer.initialize
    fails ("SASL-authentication failed because the specified JAAS configuration section 'QuorumLearner' could not
    be found.") and the server exits with code 1 ("Unexpected exception, exiting abnormally"), on both servers.
    Reference: QuorumPeer.initialize, SaslQuorumAuthLearner's constructor, QuorumPeerMain.main"""
    if kind == "java" and not java_available():
        pytest.skip("Java ZooKeeper (Debian package zookeeper) is not installed")
    e = Ensemble(tmp_path / kind, (kind,) * 3, **SASL)
    jaas = tmp_path / "jaas.conf"
    jaas.write_text(JAAS.split("QuorumLearner")[0])
    e.servers[1].jvm_flags.append(f"-Djava.security.auth.login.config={jaas}")
    proc = e.servers[1].start(wait=False)
    try:
        assert proc.proc.wait(60) == 1
        log = e.log(1)
        assert "section 'QuorumLearner' could not be found." in log, log[-3000:]
        assert "Unexpected exception, exiting abnormally" in log
    finally:
        proc.stop()


@pytest.mark.parametrize("kinds, observer_master", [(("zkref",) * 4, False), (("java", "java", "java", "zkref"), False),
                                                    (("zkref",) * 4, True)],
                         ids=["zkref", "zkref-observer-of-java", "zkref-observer-master"])
def test_an_observer_logs_in_to_its_leader_or_observer_master(tmp_path, kinds, observer_master):
    """An observer logs in like a follower: to the leader, or, with `observerMasterPort`, to the follower whose
    ObserverMaster it syncs from (LearnerHandler's authenticate on both); it then serves the ensemble's data.
    Reference: Learner.connectToLeader, LearnerHandler (constructor), ObserverMaster"""
    from kazoo.client import KazooClient
    from conftest import WithObserver, free_port
    if "java" in kinds and not java_available():
        pytest.skip("Java ZooKeeper (Debian package zookeeper) is not installed")
    e = WithObserver(tmp_path / "-".join(kinds), kinds, **SASL)
    jaas = tmp_path / "jaas.conf"
    jaas.write_text(JAAS % "peersecret")
    om_port = {i: free_port() for i in (1, 2, 3)}
    for i, s in e.servers.items():
        s.jvm_flags.append(f"-Djava.security.auth.login.config={jaas}")
        if observer_master:
            s.config["observerMasterPort"] = om_port[i] if i != 4 else None
        s.config = {k: v for k, v in s.config.items() if v is not None}
        s.cfg_path.write_text("".join(f"{k}={v}\n" for k, v in s.config.items()))
    try:
        e.start(1, 2, 3)
        leader = e.wait_formed([1, 2, 3])
        if observer_master:                        # the observer syncs from a follower's ObserverMaster
            master = next(i for i in (1, 2, 3) if i != leader)
            s = e.servers[4]
            s.config["observerMasterPort"] = om_port[master]
            s.cfg_path.write_text("".join(f"{k}={v}\n" for k, v in s.config.items()))
        e.start(4)
        wait_for(lambda: e.mode(4) == "observer", 60, what="the observer")
        writer = KazooClient(hosts=e.hosts([leader]), timeout=10)
        writer.start(timeout=30)
        writer.create("/seen-by-observer", b"o")
        writer.stop(); writer.close()
        reader = KazooClient(hosts=e.hosts([4]), timeout=10)
        reader.start(timeout=30)
        reader.sync("/seen-by-observer")
        assert reader.get("/seen-by-observer")[0] == b"o"
        reader.stop(); reader.close()
        assert "Successfully completed the authentication using SASL. server addr:" in e.log(4)
        if observer_master:
            assert "Successfully completed the authentication using SASL. learner addr:" in e.log(master)
    finally:
        e.stop_all()


@pytest.mark.parametrize("kind", ["java", "zkref"])
def test_damaged_logins_on_the_election_port_are_refused_and_the_server_goes_on(tmp_path, kind):
    """Bad peer packets: after a valid initial message, a login packet cut short, one with an absurd token length,
    one with an unknown status and one whose DIGEST-MD5 response is garbage each end that connection (the
    accepting side's "Exception handling connection … closing server connection" or "Failed to authenticate using
    SASL"); the server keeps listening and still takes a proper login. Run on Java's server and zkref's.
    Reference: QuorumCnxManager.receiveConnection/handleConnection, SaslQuorumAuthServer.authenticate"""
    import socket
    import struct
    from zkref.quorum.cnx_initial_message import build_initial_message
    from zkref.quorum.quorum_auth import IN_PROGRESS, QUORUM_AUTH_MAGIC_NUMBER, auth_packet
    e = _ensemble(tmp_path, (kind,) * 3)
    host, election = "127.0.0.1", e.ports[1][1]

    def listening() -> bool:
        try:
            socket.create_connection((host, election), timeout=1).close()
            return True
        except OSError:
            return False
    hello = build_initial_message(3, [("127.0.0.1", e.ports[3][1])])
    bad = [auth_packet(IN_PROGRESS, b"")[:10],                                   # cut short
           struct.pack(">qii", QUORUM_AUTH_MAGIC_NUMBER, IN_PROGRESS, 0x7FFFFFF0),  # absurd length
           None]                                                                  # a garbage response
    try:                                                                          # every server it starts stops
        e.start(1)
        wait_for(listening, 30, what="the election port")
        for packet in bad:
            with socket.create_connection((host, election), timeout=10) as s:
                s.sendall(hello)
                if packet is None:
                    s.sendall(auth_packet(IN_PROGRESS, b""))
                    s.recv(4096)                                                  # the challenge
                    s.sendall(auth_packet(IN_PROGRESS, b"username=\"zkpeer\",\x00\xff garbage"))
                else:
                    s.sendall(packet)
                    s.shutdown(socket.SHUT_WR)
                s.settimeout(10)
                try:
                    while s.recv(4096):                                           # until the server closes it
                        pass
                except OSError:
                    pass
        assert e.procs[1].proc.poll() is None, e.log(1)[-3000:]
        wait_for(lambda: "Failed to authenticate using SASL" in e.log(1), 10, what="the refusal")
        e.start(2)                                                                # a proper peer logs in
        e.wait_formed([1, 2])
    finally:
        e.stop_all()
