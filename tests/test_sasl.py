"""Client SASL with DIGEST-MD5: a JAAS file's `Server` section names the users, a client proves its password in
the `sasl` packets after its session is made, and its connection gets the id `sasl:<user>`. Each test runs the
same steps against Java 3.8 (Debian's 3.8.0) and zkref, with kazoo's SASL client (pure-sasl) or Java's own
(`zkCli.sh` with a client JAAS section), and compares what the clients see.
Reference: Java ServerCnxnFactory.configureSaslLogin, ZooKeeperServer.processSasl, SaslServerCallbackHandler,
SASLAuthenticationProvider, JDK com.sun.security.sasl.digest.DigestMD5Server; the ZooKeeper Programmer's Guide
("Pluggable ZooKeeper authentication") and the SASL wiki page.
"""
from __future__ import annotations

import os
import subprocess

import pytest

from conftest import wait_for

pytest.importorskip("puresasl", reason="kazoo's SASL needs pure-sasl (a dev requirement)")

JAAS = '''
// the server's users, and the section Java's client reads
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="adminsecret"
    user_bob="bobsecret";
};
Client {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="bob"
    password="bobsecret";
};
'''
SASL_PROVIDER = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"


@pytest.fixture
def jaas(tmp_path):
    path = tmp_path / "jaas.conf"
    path.write_text(JAAS)
    return path


@pytest.fixture
def both(java_zk, zkref_zk):
    return [("java", java_zk), ("zkref", zkref_zk)]


def _kazoo(port: int, user: str | None = None, password: str = "", **kw):
    from kazoo.client import KazooClient
    options = {"sasl_options": {"mechanism": "DIGEST-MD5", "username": user, "password": password}} if user else {}
    return KazooClient(hosts=f"127.0.0.1:{port}", timeout=10, **options, **kw)


def _attempt(port: int, user: str, password: str) -> tuple[str, str]:
    "Start and stop a kazoo client logging in as `user`, whatever the server does: (how start ended, the state then)."
    client = _kazoo(port, user, password, connection_retry={"max_tries": 0})
    try:
        client.start(timeout=8)
        outcome = "started"
    except Exception as e:                         # noqa: BLE001 - the kind of end is compared, the server's log read
        outcome = type(e).__name__
    finally:
        state = str(client.client_state)
        client.stop(); client.close()
    return outcome, state


def _start(start, jaas, config=None, flags=()):
    cfg = {"authProvider.1": SASL_PROVIDER, **(config or {})}
    return start(cfg, jvm_flags=[f"-Djava.security.auth.login.config={jaas}", *flags])


def test_digest_md5_login_gives_the_sasl_id_and_acls_use_it_as_in_java(both, jaas):
    """A kazoo client with DIGEST-MD5 and bob's password is served; `whoami`-like ids: its node with ACL
    `sasl:bob:cdrwa` is readable by it and by another bob session, and refused (NOAUTH) to a session without SASL.
    Reference: ZooKeeperServer.processSasl (addAuthInfo(new Id("sasl", authorizationID))), SASLAuthenticationProvider.matches"""
    from kazoo.exceptions import NoAuthError
    from kazoo.security import make_acl
    seen = {}
    for name, start in both:
        srv = _start(start, jaas)
        bob = _kazoo(srv.client_port, "bob", "bobsecret")
        bob.start(timeout=20)
        bob.create("/mine", b"secret", acl=[make_acl("sasl", "bob", all=True)])
        other_bob = _kazoo(srv.client_port, "bob", "bobsecret")
        other_bob.start(timeout=20)
        anonymous = _kazoo(srv.client_port)
        anonymous.start(timeout=20)
        with pytest.raises(NoAuthError):
            anonymous.get("/mine")
        acl = bob.get_acls("/mine")[0]
        seen[name] = (bob.get("/mine")[0], other_bob.get("/mine")[0], [(a.perms, a.id.scheme, a.id.id) for a in acl])
        for c in (bob, other_bob, anonymous):
            c.stop(); c.close()
        wait_for(lambda: "adding SASL authorization for authorizationID: bob" in srv.logs(), 10, what="the log line")
        assert "Server successfully logged in." in srv.logs(), name          # Java: Login.login, at start
    assert seen["java"] == (b"secret", b"secret", [(31, "sasl", "bob")]), seen
    assert seen["zkref"] == seen["java"]


@pytest.mark.parametrize("user, password", [("bob", "not-it"), ("eve", "bobsecret")])
def test_a_wrong_password_or_unknown_user_is_refused_and_closed_as_in_java(both, jaas, user, password):
    """A wrong password, or a user the JAAS section does not list, fails the exchange: the server logs
    "failed to SASL authenticate" with the JDK's reason and "Closing client connection due to SASL authentication
    failure.", answers AUTHFAILED and closes the connection; kazoo's start fails the same way on both servers, and
    the server goes on serving others.
    Reference: ZooKeeperServer.processSasl (the SaslException branch), DigestMD5Server.validateClientResponse"""
    seen = {}
    for name, start in both:
        srv = _start(start, jaas)
        outcome = _attempt(srv.client_port, user, password)
        wait_for(lambda: "Closing client connection due to SASL authentication failure." in srv.logs(), 10,
                 what="the closing line")
        reason = ("Mismatched response." if user == "bob" else
                  f"DIGEST-MD5: cannot acquire password for {user} in realm : zk-sasl-md5")
        assert "failed to SASL authenticate: {}\njavax.security.sasl.SaslException: DIGEST-MD5: " in srv.logs(), name
        assert reason in srv.logs(), (name, srv.logs()[-3000:])
        if user == "eve":
            assert "User 'eve' not found in list of DIGEST-MD5 authenticateable users." in srv.logs(), name
            assert "No password found for user: null" in srv.logs(), name
        fine = _kazoo(srv.client_port, "bob", "bobsecret")
        fine.start(timeout=20)
        fine.ensure_path("/still-serving")
        fine.stop(); fine.close()
        seen[name] = outcome
    assert seen["zkref"] == seen["java"], seen
    print(seen)


ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"


def _zkcli(port: int, jaas, *cmd: str) -> str:
    "One zkCli.sh command with the JAAS file's Client section (Java's own DIGEST-MD5 client); its whole output."
    env = dict(os.environ, ZOO_LOG4J_PROP="ERROR,CONSOLE", CLIENT_JVMFLAGS=f"-Djava.security.auth.login.config={jaas}")
    out = subprocess.run([ZKCLI, "-server", f"127.0.0.1:{port}", *cmd], capture_output=True, text=True, timeout=90,
                         env=env)
    return out.stdout + "\n" + out.stderr


def test_javas_own_client_logs_in_with_its_jaas_section_as_with_java(both, jaas):
    """zkCli.sh, given a JAAS file whose Client section names bob, authenticates with the JDK's DIGEST-MD5 client
    before its command: `whoami` lists `sasl: bob` beside its `ip` id, on both servers.
    Reference: ZooKeeper Programmer's Guide (SASL); ZooKeeperSaslClient; ZooKeeperServer.processSasl"""
    if not os.path.exists(ZKCLI):
        pytest.skip("zkCli.sh (Debian package zookeeper) is not installed")
    seen = {}
    for name, start in both:
        srv = _start(start, jaas)
        out = _zkcli(srv.client_port, jaas, "whoami")
        seen[name] = sorted(line.strip() for line in out.splitlines() if line.startswith(("sasl:", "ip:", "super:")))
    assert seen["java"] == ["ip: 127.0.0.1", "sasl: bob"], seen
    assert seen["zkref"] == seen["java"]


def test_super_user_named_by_zookeeper_super_user_passes_every_acl_as_in_java(both, jaas):
    """With `-Dzookeeper.superUser=super`, the SASL user `super` also gets the `super` id and reads a node whose
    ACL names only bob. Reference: ZooKeeperServer.isSaslSuperUser, processSasl"""
    from kazoo.security import make_acl
    seen = {}
    for name, start in both:
        srv = _start(start, jaas, flags=["-Dzookeeper.superUser=super"])
        bob = _kazoo(srv.client_port, "bob", "bobsecret")
        bob.start(timeout=20)
        bob.create("/bobs", b"b", acl=[make_acl("sasl", "bob", all=True)])
        admin = _kazoo(srv.client_port, "super", "adminsecret")
        admin.start(timeout=20)
        seen[name] = admin.get("/bobs")[0]
        for c in (bob, admin):
            c.stop(); c.close()
        assert "Authenticated Id 'super' as super user" in srv.logs(), name
    assert seen == {"java": b"b", "zkref": b"b"}


def test_session_require_client_sasl_auth_closes_other_sessions_as_in_java(both, jaas):
    """`sessionRequireClientSASLAuth=true`: a session without SASL is answered SESSIONCLOSEDREQUIRESASLAUTH at its
    first request and closed; a SASL session is served; a failed SASL exchange is closed with the "requires client
    SASL authentication" line. Reference: AuthenticationHelper, ZooKeeperServer.processSasl"""
    from kazoo.exceptions import KazooException
    seen = {}
    for name, start in both:
        srv = _start(start, jaas, {"sessionRequireClientSASLAuth": "true"})
        bob = _kazoo(srv.client_port, "bob", "bobsecret")
        bob.start(timeout=20)
        bob.ensure_path("/served")
        bob.stop(); bob.close()
        anonymous = _kazoo(srv.client_port, connection_retry={"max_tries": 0}, command_retry={"max_tries": 0})
        anonymous.start(timeout=20)
        try:
            anonymous.get("/served")
            outcome = "served"
        except KazooException as e:
            outcome = type(e).__name__
        finally:
            anonymous.stop(); anonymous.close()
        _attempt(srv.client_port, "bob", "wrong")   # only the server's lines are compared
        wait_for(lambda: "Closing client connection due to server requires client SASL authenticaiton" in srv.logs(),
                 10, what="the line")
        seen[name] = outcome
    assert seen["java"] != "served", seen
    assert seen["zkref"] == seen["java"], seen


def test_sasl_acls_need_the_provider_as_in_java(both, jaas):
    """Without `authProvider.N=…SASLAuthenticationProvider` a SASL login still works, but an ACL with the `sasl`
    scheme is refused with INVALIDACL, as in Java (the ZooKeeper guide: the provider must be configured).
    Reference: ProviderRegistry.initialize, PrepRequestProcessor.fixupACL"""
    from kazoo.exceptions import InvalidACLError
    from kazoo.security import make_acl
    for name, start in both:
        srv = start({}, jvm_flags=[f"-Djava.security.auth.login.config={jaas}"])
        bob = _kazoo(srv.client_port, "bob", "bobsecret")
        bob.start(timeout=20)
        with pytest.raises(InvalidACLError):
            bob.create("/bobs", b"", acl=[make_acl("sasl", "bob", all=True)])
        bob.stop(); bob.close()
        assert "adding SASL authorization for authorizationID: bob" in srv.logs(), name


@pytest.mark.parametrize("content", [None, 'Server { org.apache.zookeeper.server.auth.DigestLoginModule required user_bob "x"; };'])
def test_a_missing_or_broken_jaas_file_stops_the_server_as_in_java(both, tmp_path, content):
    """`java.security.auth.login.config` naming a file that does not exist or does not parse stops the server at
    start with "No JAAS configuration section named 'Server' was found in '<file>'.".
    Reference: ServerCnxnFactory.configureSaslLogin"""
    path = tmp_path / "jaas-bad.conf"
    if content is not None:
        path.write_text(content)
    seen = {}
    for name, start in both:
        srv = start({}, jvm_flags=[f"-Djava.security.auth.login.config={path}"], wait=False)
        code = srv.proc.wait(60)
        assert f"No JAAS configuration section named 'Server' was found in '{path}'." in srv.logs(), \
            (name, srv.logs()[-3000:])
        seen[name] = code
    assert seen["zkref"] == seen["java"], seen


def test_a_jaas_file_without_the_server_section_leaves_sasl_off_as_in_java(both, tmp_path):
    """A JAAS file with no `Server` section (only a client's) leaves SASL off: the server starts, and a `sasl`
    packet gets an empty answer with the "saslServer is null" error line, as in Java.
    Reference: ServerCnxnFactory.configureSaslLogin (no entries, no exception: return), processSasl"""
    path = tmp_path / "jaas-client-only.conf"
    path.write_text('Client { org.apache.zookeeper.server.auth.DigestLoginModule required username="bob" '
                    'password="bobsecret"; };\n')
    for name, start in both:
        srv = start({}, jvm_flags=[f"-Djava.security.auth.login.config={path}"])
        _attempt(srv.client_port, "bob", "bobsecret")   # the server's line is what is compared
        wait_for(lambda: "cnxn.saslServer is null: cnxn object did not initialize its saslServer properly." in srv.logs(),
                 10, what=f"{name}'s line")


def test_kerberos_login_module_is_refused_at_start_by_zkref(zkref_zk, tmp_path):
    """A `Krb5LoginModule` section (Kerberos, GSSAPI) stops zkref at start with a message naming the module and
    the one zkref runs (divergences page: zkref has no Kerberos)."""
    path = tmp_path / "jaas-krb.conf"
    path.write_text('Server { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true '
                    'keyTab="/etc/zk.keytab" principal="zookeeper/host@EXAMPLE.COM"; };\n')
    srv = zkref_zk({}, jvm_flags=[f"-Djava.security.auth.login.config={path}"], wait=False)
    assert srv.proc.wait(60) != 0
    assert "com.sun.security.auth.module.Krb5LoginModule in the 'Server' section" in srv.logs(), srv.logs()[-2000:]
    assert "it does not implement Kerberos (GSSAPI)" in srv.logs()


def test_an_unknown_user_with_an_earlier_users_password_is_refused_unlike_java(both, jaas):
    """Divergence (divergences page): Java's SaslServerCallbackHandler is shared by all connections and keeps the
    last user name it found, so after bob has logged in, a client naming a user the JAAS file does not list ("eve")
    is checked against bob's password, and with it is authenticated as `sasl:eve`. zkref looks up each exchange's own
    user, so eve is refused ("cannot acquire password for eve"). Both behaviours are pinned here, so a fixed Java
    shows up. Reference: SaslServerCallbackHandler.handleNameCallback/handlePasswordCallback (the userName field)"""
    accepted = {}
    for name, start in both:
        srv = _start(start, jaas)
        bob = _kazoo(srv.client_port, "bob", "bobsecret")
        bob.start(timeout=20)
        bob.stop(); bob.close()
        _attempt(srv.client_port, "eve", "bobsecret")   # the server's log says what happened
        wait_for(lambda: "authorizationID: eve" in srv.logs() or "cannot acquire password for eve" in srv.logs(), 10,
                 what=f"{name}'s verdict on eve")
        accepted[name] = "authorizationID: eve" in srv.logs()
    assert accepted == {"java": True, "zkref": False}


@pytest.mark.parametrize("kind", ["java", "zkref"])
def test_digest_md5_on_every_server_of_an_ensemble(tmp_path, jaas, kind):
    """A quorum peer's client port takes SASL as a standalone server's does, whatever its role: bob logs in on a
    follower, creates a node only `sasl:bob` may read, and reads it back through the leader and the other follower
    after logging in there; a session without SASL on a follower is refused (NOAUTH). Run on a Java and a zkref
    ensemble. Reference: QuorumPeerMain.runFromConfig (cnxnFactory.configure → configureSaslLogin),
    ZooKeeperServer.processSasl (inherited by the leader's, followers' and observers' servers)"""
    from conftest import Ensemble, java_available
    from kazoo.exceptions import NoAuthError
    from kazoo.security import make_acl
    if kind == "java" and not java_available():
        pytest.skip("Java ZooKeeper (Debian package zookeeper) is not installed")
    e = Ensemble(tmp_path / kind, (kind,) * 3, jvm_flags=[f"-Djava.security.auth.login.config={jaas}"],
                 **{"authProvider.1": SASL_PROVIDER})
    try:
        e.start()
        leader = e.wait_formed()
        first, second = [i for i in e.ids if i != leader]
        clients = []
        for i in (first, leader, second):
            c = _kazoo(e.client(i), "bob", "bobsecret")
            c.start(timeout=30)
            clients.append(c)
        clients[0].create("/bobs", b"mine", acl=[make_acl("sasl", "bob", all=True)])
        for c in clients[1:]:
            c.sync("/bobs")                        # the create has reached this server
        assert [c.get("/bobs")[0] for c in clients[1:]] == [b"mine", b"mine"]
        anonymous = _kazoo(e.client(second))
        anonymous.start(timeout=30)
        with pytest.raises(NoAuthError):
            anonymous.get("/bobs")
        for c in (*clients, anonymous):
            c.stop(); c.close()
    finally:
        e.stop_all()


# ------------------------------------------------------------------------------------------ malformed responses

def _sasl_call(raw, token: bytes) -> tuple[int, bytes | None] | str:
    "Send one `sasl` packet; (err, the answer's token) or 'closed'."
    from zkref.jute import GetSASLRequest, SetSASLResponse
    from zkref.proto import OpCode
    try:
        h, body = raw.call(OpCode.sasl, GetSASLRequest(token=token))
    except (EOFError, OSError):
        return "closed"
    return h.err, SetSASLResponse.from_bytes(body).token


def _response(nonce: bytes, /, **fields) -> bytes:
    """bob's DIGEST-MD5 response to `nonce`, RFC 2831's `response` computed from the fields as sent; a field given
    as None is left out, `raw=` replaces the whole token, `extra=` is appended."""
    from zkref.server.sasl import response_value
    f = {"username": '"bob"', "realm": '"zk-sasl-md5"', "nonce": f'"{nonce.decode()}"', "cnonce": '"OA6MG9tEQGm2hh"',
         "nc": "00000001", "qop": "auth", "digest-uri": '"zookeeper/zk-sasl-md5"', "charset": "utf-8"}
    password = fields.pop("password", "bobsecret")
    raw, extra = fields.pop("raw", None), fields.pop("extra", "")
    f.update(fields)
    unq = lambda k, d: (f[k] or d).strip('"') if f.get(k) is not None else d
    if "response" not in f:
        authzid = unq("authzid", None)
        f["response"] = response_value("AUTHENTICATE", unq("digest-uri", ""), unq("qop", "auth"), unq("username", ""),
                                       unq("realm", ""), password, unq("nonce", "").encode(),
                                       unq("cnonce", "").encode(), 1,
                                       authzid.encode() if authzid is not None else None).decode()
    if raw is not None:
        return None if raw == "null" else raw
    return (",".join(f"{k}={v}" for k, v in f.items() if v is not None) + extra).encode()


MALFORMED = {                  # name -> the fields of the second token (see _response)
    # first, before any login: afterwards Java checks an unknown user against the last user's password (see
    # test_an_unknown_user_with_an_earlier_users_password_is_refused_unlike_java)
    "unknown user": {"username": '"eve"'},
    "valid": {},
    "authzid is not the id": {"authzid": '"alice"'},
    "uri in capitals": {"digest-uri": '"ZOOKEEPER/ZK-SASL-MD5"'},
    "wrong password": {"password": "nope"},
    "no username": {"username": None},
    "other realm": {"realm": '"elsewhere"'},
    "no realm": {"realm": None},
    "no nonce": {"nonce": None},
    "other nonce": {"nonce": '"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"'},
    "no cnonce": {"cnonce": None},
    "nonce count 2": {"nc": "00000002"},
    "no nonce count": {"nc": None},
    "nonce count not hex": {"nc": "zz"},
    "qop auth-int": {"qop": "auth-int"},
    "qop bogus": {"qop": "bogus"},
    "no qop": {"qop": None},
    "no digest-uri": {"digest-uri": None},
    "other digest-uri": {"digest-uri": '"zookeeper/elsewhere"'},
    "no response": {"response": None},
    "bad response": {"response": "0" * 32},
    "latin-1 charset": {"charset": "iso-8859-1"},
    "no charset": {"charset": None},
    "username twice": {"extra": ',username="bob"'},
    "unknown directive": {"extra": ',shoe-size=44'},
    "unmatched quote": {"extra": ',cipher="rc4'},
    "key without value": {"extra": ',maxbuf='},
    "maxbuf not a number": {"extra": ',maxbuf=lots'},
    "maxbuf a number": {"extra": ',maxbuf=4096'},
    "empty key": {"extra": ',=x'},
    "junk after quote": {"username": '"bob"x'},
    "too long": {"extra": "," + "x" * 5000 + "=1"},
    "empty": {"raw": b""},
    "null token": {"raw": "null"},
    "not directives": {"raw": b"\x00\xff\x10garbage"},
}


def test_malformed_digest_md5_responses_are_judged_as_java_judges_them(both, jaas):
    """The second token of the exchange, right and wrong in thirty-five ways (each directive missing, repeated
    or wrong, the quoting broken, too long, not text): Java's and zkref's servers give the same answer (the error
    code, `rspauth` or not, whether the connection stays open, what a later request gets) and log the same
    JDK reason ("javax.security.sasl.SaslException: DIGEST-MD5: …"). A third token after a success is refused
    as the JDK refuses it ("Server at illegal state"). A `maxbuf` or nonce count that is not a number is no
    SaslException in the JDK: the NumberFormatException ends the connection without an answer, on both.
    Reference: JDK DigestMD5Server.evaluateResponse/validateClientResponse, DigestMD5Base.parseDirectives;
    ZooKeeperServer.processSasl"""
    import re
    from test_standalone_server import RawClient
    from zkref.jute import ExistsRequest
    from zkref.proto import OpCode
    seen = {}
    for name, start in both:
        srv = _start(start, jaas)
        results = {}
        for case, fields in MALFORMED.items():
            raw = RawClient(srv.client_port)
            err, challenge = _sasl_call(raw, b"")
            nonce = re.search(rb'nonce="([^"]+)"', challenge).group(1)
            before = srv.logs().count("javax.security.sasl.SaslException")
            answer = _sasl_call(raw, _response(nonce, **dict(fields)))
            if answer == "closed" or answer[0] != 0:
                third = None
            else:
                third = _sasl_call(raw, b"")       # the exchange is over: Java refuses another step
            try:
                h, _ = raw.call(OpCode.exists, ExistsRequest(path="/", watch=False))
                later = h.err
            except (EOFError, OSError):
                later = "closed"
            raw.close()
            if answer != "closed" and answer[0] != 0 or third not in (None, "closed") and third[0] != 0:
                wait_for(lambda: srv.logs().count("javax.security.sasl.SaslException") > before, 10,
                         what=f"{name}'s reason for {case}")
            reasons = [line for line in srv.logs().splitlines()[-60:]
                       if line.startswith("javax.security.sasl.SaslException")]
            shape = lambda a: a if a in ("closed", None) else (a[0], None if a[1] is None else a[1][:8])
            results[case] = (shape(answer), shape(third), later, reasons[-1] if reasons and
                             srv.logs().count("javax.security.sasl.SaslException") > before else None)
        seen[name] = results
    assert seen["java"]["valid"][0] == (0, b"rspauth="), seen["java"]["valid"]
    refused = [c for c, r in seen["java"].items() if r[3] is not None]
    assert len(refused) >= 20, refused               # most cases are refusals with a reason in the log
    differing = {c: (seen["java"][c], seen["zkref"][c]) for c in MALFORMED if seen["java"][c] != seen["zkref"][c]}
    assert not differing, differing


def test_an_auth_provider_class_that_does_not_exist_is_warned_about_as_in_java(both):
    """`authProvider.1=com.example.NoSuchProvider`: the server starts and serves, and logs "Problems loading
    com.example.NoSuchProvider" with Java's ClassNotFoundException line; the SASL provider beside it still works.
    Reference: ProviderRegistry.addOrUpdateProvider"""
    from kazoo.client import KazooClient
    for name, start in both:
        srv = start({"authProvider.1": "com.example.NoSuchProvider", "authProvider.2": SASL_PROVIDER})
        wait_for(lambda: "Problems loading com.example.NoSuchProvider" in srv.logs(), 10, what=f"{name}'s warning")
        assert "java.lang.ClassNotFoundException: com.example.NoSuchProvider" in srv.logs(), name
        k = KazooClient(hosts=f"127.0.0.1:{srv.client_port}", timeout=10)
        k.start(timeout=20)
        k.ensure_path("/served")
        k.stop(); k.close()


JAAS_PROGRAM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "java", "JaasConfig.java")
JAAS_SAMPLES = [
    JAAS,
    'Server { org.x.Y required; };',
    'Server { a required k=v; b optional; c sufficient x="1"; d requisite; };',
    'Server {};',
    'Other { a required; };',
    '/* a comment */ Server // another\n { a REQUIRED k = "v w" ; } ;',
    'Server { a required k="esc\\"aped\\\\" t="tab\\there"; };',
    "Server { a required k='single'; };",
    'Server { a required user_bob "x"; };',
    'Server { a always; };',
    'Server { a required;',
    'Server { a required k=; };',
    'Server { a required k=v };',
    'Server { a required; }',
    'Server a required; };',
    'Server { a required; }; Server { b required; };',
    'Server { a required k=1; };',
    'Server { a required k=v.w-x_y$z*; };',
    'Server { 1a required; };',
    'Server { a required, k=v; };',
    '',
    '"Server" { a required; };',
    'Server { a required k="multi\nline"; };',
    'Server { a required k="${user.nope}"; };',
    'Server { a required k="${{x}}" h="${/}z" u="${unclosed"; };',
]


def _jaas_line(text: str) -> str:
    "What tests/java/JaasConfig.java prints for a file, from zkref's parser (escaped the same way)."
    from zkref.server.sasl import JaasConfigError, parse_jaas_config
    try:
        entries = parse_jaas_config(text).get("Server")
        if not entries:                   # Java's getAppConfigurationEntry: null for an empty section too
            line = "NONE"
        else:
            line = "".join(f"ENTRY {e.login_module} {e.flag} {{"
                           + ", ".join(f"{k}={v}" for k, v in sorted(e.options.items())) + "};" for e in entries)
    except JaasConfigError as e:
        line = f"ERROR {e}"
    for raw, shown in (("\\", "\\\\"), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"), ("\x85", "\\x85"),
                       ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        line = line.replace(raw, shown)
    return line


def test_jaas_files_are_read_as_the_jdk_reads_them(tmp_path):
    """JAAS files, valid and broken (hand-picked, and 300 mutations of valid ones: a character deleted, inserted
    or doubled), read by zkref's parser and by the JDK's `Configuration` (tests/java/JaasConfig.java): the same
    entries, flags and options, or the same error ("Configuration Error: Line N: expected [=], found [x]", "read
    [end of file]", "Invalid control flag", "Can not specify multiple entries"). The mutations found the
    tokenizer's corners that the parser now follows: a lone `/` is a comment (and takes the next line with it when
    a line end follows it), a quote ends at its line's end, `'…'` is a token ConfigFile refuses, a number has one
    dot, block comments' line ends are not counted, an empty section is none. (Session 24 also ran 48,000 such
    mutations, with up to three changes each, against the JDK: all equal.)
    Reference: JDK sun.security.provider.ConfigFile.Spi (readConfig, parseLoginEntry, match, peek),
    java.io.StreamTokenizer"""
    import random
    import shutil
    if shutil.which("java") is None:
        pytest.skip("java is not installed")
    rng = random.Random(2831)
    texts = list(JAAS_SAMPLES)
    for _ in range(300):
        t = list(rng.choice(JAAS_SAMPLES[:8]))
        i = rng.randrange(len(t) + 1)
        op = rng.choice(["delete", "insert", "double"])
        if op == "delete" and i < len(t):
            del t[i]
        elif op == "double" and i < len(t):
            t.insert(i, t[i])
        else:
            t.insert(i, rng.choice('{};="/*\n ab1.-_$\'\\'))
        texts.append("".join(t))
    files = []
    for n, text in enumerate(texts):
        f = tmp_path / f"jaas-{n:04d}.conf"
        f.write_text(text)
        files.append(f)
    run = subprocess.run(["java", JAAS_PROGRAM, "Server", *map(str, files)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    java = dict(line.split(" ", 1) for line in run.stdout.split("\n") if line)
    differ = {f.name: (texts[n], java[f.name], _jaas_line(texts[n])) for n, f in enumerate(files)
              if java[f.name] != _jaas_line(texts[n])}
    assert not differ, list(differ.items())[:5]


@pytest.mark.parametrize("user, flags", [("bob@EXAMPLE.COM", ()), ("bob/host", ()), ("bob/host@EXAMPLE.COM", ()),
                                         ("bob/host@", ()), ("bob/host@", ("-Dzookeeper.kerberos.removeHostFromPrincipal=true",)),
                                         ("bob@", ("-Dzookeeper.kerberos.removeRealmFromPrincipal=true",)), ("a@b@c", ())])
def test_user_names_shaped_like_kerberos_principals_get_javas_ids(both, tmp_path, user, flags):
    """Java runs a DIGEST-MD5 user's name through `KerberosName`'s short-name rules (DEFAULT, and on a machine
    without a Kerberos configuration the default realm ""): `bob/host` stays itself; a name with a realm matches no
    rule ("Failed to set name based on Kerberos authentication rules.") and keeps the client's id; an empty realm
    matches, so the `kerberos.removeHost/RealmFromPrincipal` switches apply; `a@b@c` is malformed and the
    connection ends ("Malformed Kerberos name"). zkref gives the same id, or the same end, for each.
    Reference: SaslServerCallbackHandler.handleAuthorizeCallback, KerberosName (nameParser, getShortName)"""
    import re
    jaas = tmp_path / "jaas-names.conf"
    jaas.write_text('Server { org.apache.zookeeper.server.auth.DigestLoginModule required "user_%s"="pw"; };\n' % user)
    seen = {}
    for name, start in both:
        srv = start({"authProvider.1": SASL_PROVIDER}, jvm_flags=[f"-Djava.security.auth.login.config={jaas}", *flags])
        _attempt(srv.client_port, user, "pw")      # the server's log says what happened
        wait_for(lambda: "adding SASL authorization for authorizationID:" in srv.logs()
                 or "Malformed Kerberos name" in srv.logs(), 10, what=f"{name}'s verdict")
        ids = re.findall(r"adding SASL authorization for authorizationID: (\S*)", srv.logs())
        seen[name] = (ids[:1], "Malformed Kerberos name: a@b@c" in srv.logs(),
                      "Failed to set name based on Kerberos authentication rules." in srv.logs())
    assert seen["zkref"] == seen["java"], seen


def test_javas_own_client_with_a_wrong_password_is_told_auth_failed_as_with_java(both, jaas, tmp_path):
    """zkCli.sh whose JAAS Client section has a wrong password: its session sees the AuthFailed event and its
    command ends in "KeeperErrorCode = AuthFailed for /", on both servers.
    Reference: ZooKeeperServer.processSasl (AUTHFAILED and close), ZooKeeperSaslClient"""
    if not os.path.exists(ZKCLI):
        pytest.skip("zkCli.sh (Debian package zookeeper) is not installed")
    bad = tmp_path / "client-bad.conf"
    bad.write_text('Client { org.apache.zookeeper.server.auth.DigestLoginModule required username="bob" '
                   'password="nope"; };\n')
    seen = {}
    for name, start in both:
        srv = _start(start, jaas)
        out = _zkcli(srv.client_port, bad, "ls", "/")
        seen[name] = [line for line in out.splitlines() if "AuthFailed" in line]
    assert seen["java"] == ["WatchedEvent state:AuthFailed type:None path:null", "KeeperErrorCode = AuthFailed for /"], seen
    assert seen["zkref"] == seen["java"]
