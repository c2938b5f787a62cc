"""Log lines that name a request (or the auth providers) print it as Java 3.8 does.

Java's PrepRequestProcessor logs "Got user-level KeeperException when processing <request> Error Path:…
Error:…" at INFO for the system-level codes above APIERROR (e.g. BADARGUMENTS for an invalid path; the
user-level ones such as NODEEXISTS are not logged). Operators grep these lines, so zkref must print the same
text as Java 3.8 for the same client sequence, once the session id (random per server) is masked. The same
holds for FinalRequestProcessor's DEBUG lines and for the warning about an auth scheme without a provider.
"""
import re
import socket

from conftest import wait_for
from zkref.jute import (AuthPacket, ConnectRequest, CreateRequest, DeleteRequest, ExistsRequest, GetChildrenRequest,
                        GetDataRequest, ReplyHeader, SetDataRequest)
from zkref.proto import OPEN_ACL_UNSAFE, PING_XID, Code, OpCode, encode_request, frame

LINE = re.compile(r"Got user-level KeeperException when processing (.*)")


def _read_frame(sock: socket.socket) -> bytes:
    def exactly(n: int) -> bytes:
        b = b""
        while len(b) < n:
            chunk = sock.recv(n - len(b))
            assert chunk, "server closed the connection"
            b += chunk
        return b
    return exactly(int.from_bytes(exactly(4), "big"))


def _rejected_writes(server) -> tuple[list[int], list[str]]:
    "Send writes with invalid paths, as a raw client (kazoo would refuse or normalise them): (error codes, lines)."
    with socket.create_connection(("127.0.0.1", server.client_port), timeout=10) as s:
        s.sendall(frame(ConnectRequest(time_out=30000, passwd=bytes(16)).to_bytes() + b"\0"))
        _read_frame(s)
        writes = [(OpCode.create, CreateRequest(path="/a", data=b"x", acl=OPEN_ACL_UNSAFE, flags=0)),
                  (OpCode.create, CreateRequest(path="/a//b", data=b"x", acl=OPEN_ACL_UNSAFE, flags=0)),  # NONODE
                  (OpCode.setData, SetDataRequest(path="/a/", data=b"y", version=-1)),
                  (OpCode.create, CreateRequest(path="b", data=b"x", acl=OPEN_ACL_UNSAFE, flags=0)),
                  (OpCode.delete, DeleteRequest(path="/a/.", version=-1)),                                # NONODE
                  (OpCode.setData, SetDataRequest(path="/a/./b", data=b"y", version=-1))]
        errs = []
        for xid, (op, record) in enumerate(writes, start=1):
            s.sendall(encode_request(xid, op, record))
            errs.append(ReplyHeader.from_bytes(_read_frame(s)).err)
    assert errs.count(Code.BADARGUMENTS) == 3, errs
    wait_for(lambda: len(LINE.findall(server.logs())) >= 3, 10)
    return errs, [re.sub(r"sessionid:0x[0-9a-f]+", "sessionid:0x…", m.strip()) for m in LINE.findall(server.logs())]


def test_rejected_write_lines_match_java(zkref_zk, java_zk):
    """The same writes get the same error codes, and the three BADARGUMENTS ones each log Java's INFO line with the request as `Request.toString` prints
    it: `sessionid:0x… type:setData cxid:0x3 zxid:0x4 txntype:-1 reqpath:n/a Error Path:/a/ Error:…` (cxid
    sign-extended to a long, the txn's zxid — a rejected write still takes one — and txntype -1 for its error
    txn). Reference: PrepRequestProcessor.pRequest (the INFO line), Request.toString."""
    java_errs, javas = _rejected_writes(java_zk())
    errs, ours = _rejected_writes(zkref_zk())
    assert errs == java_errs
    assert len(javas) == 3, javas
    assert ours == javas


NO_PROVIDER = re.compile(r"No authentication provider for scheme: (.*)")


def _unknown_scheme_line(server) -> str:
    "Authenticate with a scheme no server has, as a raw client: the server's warning, from its log."
    with socket.create_connection(("127.0.0.1", server.client_port), timeout=10) as s:
        s.sendall(frame(ConnectRequest(time_out=30000, passwd=bytes(16)).to_bytes() + b"\0"))
        _read_frame(s)
        s.sendall(encode_request(-4, OpCode.auth, AuthPacket(type=0, scheme="nosuch", auth=b"x")))
        assert ReplyHeader.from_bytes(_read_frame(s)).err == Code.AUTHFAILED
    wait_for(lambda: NO_PROVIDER.search(server.logs()), 10)
    return NO_PROVIDER.search(server.logs()).group(1)


def test_unknown_auth_scheme_line_matches_java(zkref_zk, java_zk):
    """An `auth` packet for a scheme without a provider is answered AUTHFAILED, and the server warns with the
    providers it has, as `ProviderRegistry.listProviders` prints them: the HashMap's order, each scheme followed
    by a space (`nosuch has ip digest `). Reference: ZooKeeperServer.processPacket (auth branch),
    ProviderRegistry.listProviders."""
    ours, javas = _unknown_scheme_line(zkref_zk()), _unknown_scheme_line(java_zk())
    assert javas == "nosuch has ip digest "
    assert ours == javas


JAVA_DEBUG_FINAL = """log4j.rootLogger=INFO, CONSOLE
log4j.logger.org.apache.zookeeper.server.FinalRequestProcessor=DEBUG
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout
log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n
"""
FINAL_DEBUG = re.compile(r"DEBUG \[[^\]]*FinalRequestProcessor@\d+\] - (.*)")


def _final_debug_lines(server, n_expected: int) -> list[str]:
    "A raw client's session of reads, writes and a ping: the Final processor's DEBUG lines, session ids masked."
    with socket.create_connection(("127.0.0.1", server.client_port), timeout=10) as s:
        s.sendall(frame(ConnectRequest(time_out=30000, passwd=bytes(16)).to_bytes() + b"\0"))
        _read_frame(s)
        steps = [(1, OpCode.create, CreateRequest(path="/r", data=b"x", acl=OPEN_ACL_UNSAFE, flags=0)),
                 (2, OpCode.getData, GetDataRequest(path="/r", watch=False)),
                 (3, OpCode.exists, ExistsRequest(path="/missing", watch=False)),
                 (4, OpCode.getChildren, GetChildrenRequest(path="/", watch=False)),
                 (5, OpCode.setData, SetDataRequest(path="/r", data=b"y", version=-1)),
                 (PING_XID, OpCode.ping, None),
                 (6, OpCode.setData, SetDataRequest(path="/r", data=b"z", version=7)),      # BADVERSION
                 (7, OpCode.delete, DeleteRequest(path="/r", version=-1))]
        for xid, op, record in steps:
            s.sendall(encode_request(xid, op, record))
            _read_frame(s)
        s.sendall(encode_request(8, OpCode.closeSession))
        _read_frame(s)
    wait_for(lambda: len(FINAL_DEBUG.findall(server.logs())) >= n_expected, 10)
    return [re.sub(r"sessionid:0x[0-9a-f]+", "sessionid:0x…", m.strip()) for m in FINAL_DEBUG.findall(server.logs())]


def test_final_debug_lines_match_java(zkref_zk, java_zk, tmp_path):
    """At DEBUG, FinalRequestProcessor logs "Processing request:: <request>" for every request, then the request
    again once it passed the error checks; `Request.toString` prints the path (`reqpath:/r`) while the record is
    still unread — reads, whose body Final decodes after logging — and `n/a` for writes, which Prep decoded, and
    for session requests. zkref prints the same lines as Java 3.8 for the same raw client session.
    Reference: FinalRequestProcessor.processRequest (the two LOG.debug calls), Request.toString."""
    log4j = tmp_path / "log4j-final-debug.properties"
    log4j.write_text(JAVA_DEBUG_FINAL)
    javas = _final_debug_lines(java_zk(jvm_flags=[f"-Dlog4j.configuration=file:{log4j}"]), 19)
    ours = _final_debug_lines(zkref_zk(env={"ZOO_LOG_LEVEL": "DEBUG"}), 19)
    assert any("type:getData" in line and "reqpath:/r" in line for line in javas), javas
    assert ours == javas
