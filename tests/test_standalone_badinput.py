"""Bad input at the client port: garbage, impossible lengths, truncated frames, unknown opcodes, invalid
paths, malformed records, a connection flood, and random frames (hypothesis). Each gets Java's answer, never a
traceback or a hang, and the server keeps serving other clients."""
from __future__ import annotations

import socket

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import four_letter_word, wait_for
from test_standalone_server import RawClient, kazoo
from zkref.jute import (CheckVersionRequest, CreateRequest, ExistsRequest, GetDataRequest, MultiHeader,
                        RequestHeader)
from zkref.proto import OPEN_ACL_UNSAFE, OpCode, encode_request, frame


def send_and_drain(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    "Send bytes on a fresh connection and read until the server closes (or resets) it."
    out = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(data)
            while chunk := s.recv(65536):
                out += chunk
    except ConnectionResetError:
        pass                      # a rejected connection is reset, as Java's fastCloseSock does
    return out


def still_serving(port: int) -> None:
    c = RawClient(port)
    h, _ = c.call(OpCode.exists, ExistsRequest(path="/", watch=False))
    assert h.err == 0
    c.close()


@pytest.fixture
def srv(zkref_zk):  # noqa: F811
    return zkref_zk({"maxClientCnxns": 5})


def test_garbage_and_bad_lengths_close_the_connection(srv):
    """Before the handshake, bytes that are neither a four-letter word nor a sane length close the connection
    with Java's "Len error" (a negative length, one above jute.maxbuffer, an HTTP request line).
    Reference: Java NIOServerCnxn.readLength."""
    for data in (b"hello world\n", (2 ** 30).to_bytes(4, "big"), (-5).to_bytes(4, "big", signed=True),
                 b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"):
        assert send_and_drain(srv.client_port, data) == b""
    wait_for(lambda: "Len error. A message from /127.0.0.1:" in srv.logs(), 5, what="the Len error log line")
    assert "is either a malformed message or too large to process (length is greater than jute.maxbuffer=1048575)" in srv.logs()
    still_serving(srv.client_port)


def test_truncated_and_malformed_handshakes(srv):
    """A ConnectRequest cut short, an empty frame or a frame cut off by the client's close ends that
    connection only. Reference: Java ZooKeeperServer.processConnectRequest (EOFException -> close)."""
    assert send_and_drain(srv.client_port, frame(b"\x00\x00\x00\x00abc")) == b""
    assert send_and_drain(srv.client_port, frame(b"")) == b""
    with socket.create_connection(("127.0.0.1", srv.client_port), timeout=5) as s:
        s.sendall((100).to_bytes(4, "big") + b"only-part")
        s.shutdown(socket.SHUT_WR)
        assert s.recv(10) == b""
    still_serving(srv.client_port)
    assert "Traceback" not in srv.logs()


def test_bad_requests_after_the_handshake(srv):
    """After the handshake: an unknown opcode or a bare `check` answers Unimplemented (-6) and closes; an
    invalid path answers BadArguments (-8) or NoNode as Java does, keeping the connection; a body cut short
    answers MarshallingError (-5); a header cut short closes the connection.
    Reference: Java ZooKeeperServer.submitRequestNow, UnimplementedRequestProcessor, PrepRequestProcessor."""
    c = RawClient(srv.client_port)
    h, _ = c.call(OpCode.create, CreateRequest(path="/a/", acl=OPEN_ACL_UNSAFE))
    assert h.err == -101                                       # parent "/a" does not exist: NoNode first
    h, _ = c.call(OpCode.create, CreateRequest(path="/a//b", acl=OPEN_ACL_UNSAFE))
    assert h.err == -101
    h, _ = c.call(OpCode.create, CreateRequest(path="/bad\u0001", acl=OPEN_ACL_UNSAFE))
    assert h.err == -8
    h, _ = c.call(OpCode.create, CreateRequest(path="nope", acl=OPEN_ACL_UNSAFE))
    assert h.err == -8
    h, _ = c.call(OpCode.delete, CreateRequest(path="/", acl=OPEN_ACL_UNSAFE))
    assert h.err in (-8, -5)
    c.sock.sendall(frame(RequestHeader(xid=50, type=OpCode.getData).to_bytes() + b"\x00\x00\x00\x10/a"))
    h, _ = c.reply()
    assert (h.xid, h.err) == (50, -5)
    c.sock.sendall(frame(RequestHeader(xid=51, type=OpCode.multi).to_bytes()
                         + MultiHeader(type=77, done=False, err=-1).to_bytes()))
    h, _ = c.reply()
    assert (h.xid, h.err) == (51, -5)
    h, _ = c.call(OpCode.exists, ExistsRequest(path="/", watch=False))
    assert h.err == 0                                           # the connection survived all of that
    h, _ = c.call(99)
    assert h.err == -6
    with pytest.raises((EOFError, OSError)):
        c.read_frame()
    c2 = RawClient(srv.client_port)
    h, _ = c2.call(OpCode.check, CheckVersionRequest(path="/", version=0))
    assert h.err == -6                                         # check outside a multi (ZOOKEEPER-2623)
    c3 = RawClient(srv.client_port)
    c3.sock.sendall(frame(b"\x00\x01"))
    with pytest.raises((EOFError, OSError)):
        c3.read_frame()
    assert "Received packet at server of unknown type 99" in srv.logs()
    still_serving(srv.client_port)


def test_connection_flood_over_max_client_cnxns(srv):
    """More than maxClientCnxns connections from one address: the extra ones are closed at once with
    Java's log line; the first ones keep working. Reference: Java NIOServerCnxnFactory.doAccept."""
    held = [RawClient(srv.client_port) for _ in range(5)]
    for _ in range(20):
        assert send_and_drain(srv.client_port, frame(b"x" * 10)) == b""
    wait_for(lambda: "Too many connections from /127.0.0.1 - max is 5" in srv.logs(), 5, what="the log line")
    for c in held:
        h, _ = c.call(OpCode.exists, ExistsRequest(path="/", watch=False))
        assert h.err == 0
    held.pop().close()
    wait_for(lambda: four_letter_word(srv.client_port, "srvr").startswith("Zookeeper version"), 10,
             what="a free slot")
    for c in held:
        c.close()


OPCODES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 100, 101, 102, 103, 104,
           105, 106, 107, -10, -11, 99]

frames = st.one_of(
    st.binary(max_size=64),
    st.builds(lambda xid, op, body: frame(RequestHeader(xid=xid, type=op).to_bytes() + body),
              st.integers(-10, 10 ** 6), st.sampled_from(OPCODES), st.binary(max_size=48)),
    st.builds(lambda b: frame(b), st.binary(max_size=64)),
    st.builds(lambda n, b: n.to_bytes(4, "big", signed=True) + b, st.integers(-2 ** 31, 2 ** 31 - 1), st.binary(max_size=32)),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=frames, after=st.lists(frames, max_size=3))
def test_fuzzed_frames_never_break_the_server(srv, before, after):
    """Random bytes before the handshake, and random frames after a valid handshake, never crash or wedge
    the server: a normal client still gets answers. Reference: Java NIOServerCnxn.doIO (IOException ->
    close of that connection only)."""
    try:
        with socket.create_connection(("127.0.0.1", srv.client_port), timeout=5) as s:
            s.sendall(before)
        c = RawClient(srv.client_port)
        for f in after:
            c.sock.sendall(f)
        c.close()
    except OSError:
        pass  # the server may close on us mid-send: that is an allowed answer
    still_serving(srv.client_port)
    assert "Traceback" not in srv.logs() and "Unexpected exception processing" not in srv.logs()


def test_after_fuzzing_no_tracebacks_and_kazoo_works(srv):
    """After a burst of malformed input the log has no Python traceback and kazoo works.
    Reference: CONTRIBUTING.md ("Bad input gets a clear error, never a traceback or a hang")."""
    for i in range(50):
        try:
            with socket.create_connection(("127.0.0.1", srv.client_port), timeout=5) as s:
                s.sendall(frame(bytes([i]) * (i * 3)) + bytes(range(i)))
        except OSError:
            pass
    k = kazoo(srv)
    k.create("/ok", b"yes")
    assert k.get("/ok")[0] == b"yes"
    k.stop(); k.close()
    assert "Traceback" not in srv.logs()


def test_sessionless_connection_is_closed(zkref_zk):  # noqa: F811
    """A connection that never sends its ConnectRequest is closed after zookeeper.nio.sessionlessCnxnTimeout
    (zoo.cfg: nio.sessionlessCnxnTimeout). Reference: Java NIOServerCnxnFactory (sessionlessCnxnTimeout)."""
    srv = zkref_zk({"nio.sessionlessCnxnTimeout": 300})
    with socket.create_connection(("127.0.0.1", srv.client_port), timeout=10) as s:
        s.sendall(b"\x00\x00")                                 # half a length, then silence
        assert s.recv(10) == b""                               # the server hung up (well before our 10 s)
    still_serving(srv.client_port)


def test_exit_codes(tmp_path):
    """A data directory that cannot be created exits with code 3 ("Unable to access datadir"); a client
    port already in use exits with code 1. Reference: Java ZooKeeperServerMain.main, ExitCode."""
    import subprocess
    import sys
    from conftest import free_port
    from conftest import ROOT
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    cases = [(f"dataDir=/proc/zkref-cannot-create\nclientPort={free_port()}\nclientPortAddress=127.0.0.1\n", 3),
             (f"dataDir={tmp_path}/d\nclientPort={busy.getsockname()[1]}\nclientPortAddress=127.0.0.1\n", 1)]
    for i, (cfg, code) in enumerate(cases):
        p = tmp_path / f"zoo{i}.cfg"
        p.write_text("tickTime=2000\nadmin.enableServer=false\n" + cfg)
        r = subprocess.run([sys.executable, "-m", "zkref", str(p)], capture_output=True, text=True, timeout=60,
                           env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        assert r.returncode == code, r.stderr[-2000:]
        assert "Traceback" not in r.stderr
    busy.close()


def test_max_cnxns_total_limit(zkref_zk):  # noqa: F811
    """zookeeper.maxCnxns (zoo.cfg: maxCnxns) limits all client connections together, with Java's log line.
    Reference: Java ServerCnxnFactory.initMaxCnxns, NIOServerCnxnFactory.doAccept."""
    srv = zkref_zk({"maxCnxns": 3})
    held = [RawClient(srv.client_port) for _ in range(3)]
    assert send_and_drain(srv.client_port, frame(b"x")) == b""
    wait_for(lambda: "Too many connections max allowed is 3" in srv.logs(), 5, what="the log line")
    assert "maxCnxns configured value is 3." in srv.logs()
    for c in held:
        c.close()


def test_enforced_authentication(zkref_zk):  # noqa: F811
    """With zookeeper.enforce.auth.enabled and schemes=digest, a request from a connection without a digest
    id answers SessionClosedRequireSaslAuth (-124) and closes; after `addauth digest` requests work.
    Reference: Java AuthenticationHelper.enforceAuthentication (ZOOKEEPER-4304)."""
    from zkref.jute import AuthPacket
    srv = zkref_zk({"enforce.auth.enabled": "true", "enforce.auth.schemes": "digest"})
    c = RawClient(srv.client_port)
    h, _ = c.call(OpCode.exists, ExistsRequest(path="/", watch=False))
    assert h.err == -124
    with pytest.raises((EOFError, OSError)):
        c.read_frame()
    c2 = RawClient(srv.client_port)
    h, _ = c2.call(OpCode.auth, AuthPacket(type=0, scheme="digest", auth=b"u:p"), xid=-4)
    assert (h.xid, h.err) == (-4, 0)
    h, _ = c2.call(OpCode.exists, ExistsRequest(path="/", watch=False))
    assert h.err == 0
    c2.close()
