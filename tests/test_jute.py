"""zkref.jute against Java's jute: the binary archive rules, every record of zookeeper.jute, and real Java bytes.

The reference is ZooKeeper 3.8's `zookeeper-jute` module: `org.apache.jute.BinaryInputArchive` /
`BinaryOutputArchive` and the record declarations in `zookeeper-jute/src/main/resources/zookeeper.jute`.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import java_available
from zkref.jute import (ACL, JUTE_MAXBUFFER, ConnectRequest, ConnectResponse, Create2Response, CreateRequest,
                        CreateSessionTxn, CreateTxn, FileHeader, GetDataRequest, GetDataResponse, Id, InputArchive,
                        JuteError, MultiTxn, OutputArchive, RECORDS, ReplyHeader, RequestHeader, Stat, Txn,
                        TxnDigest, TxnHeader, decode_ustring, encode_ustring)
import zkref.jute as jute

# Every class of zookeeper.jute on branch-3.8, comments and package prefixes removed: `Name: type field; …`.
ZOOKEEPER_JUTE = """
Id: ustring scheme; ustring id
ACL: int perms; Id id
Stat: long czxid; long mzxid; long ctime; long mtime; int version; int cversion; int aversion; long ephemeralOwner; int dataLength; int numChildren; long pzxid
StatPersisted: long czxid; long mzxid; long ctime; long mtime; int version; int cversion; int aversion; long ephemeralOwner; long pzxid
ClientInfo: ustring authScheme; ustring user
ConnectRequest: int protocolVersion; long lastZxidSeen; int timeOut; long sessionId; buffer passwd
ConnectResponse: int protocolVersion; int timeOut; long sessionId; buffer passwd
SetWatches: long relativeZxid; vector<ustring> dataWatches; vector<ustring> existWatches; vector<ustring> childWatches
SetWatches2: long relativeZxid; vector<ustring> dataWatches; vector<ustring> existWatches; vector<ustring> childWatches; vector<ustring> persistentWatches; vector<ustring> persistentRecursiveWatches
RequestHeader: int xid; int type
MultiHeader: int type; boolean done; int err
AuthPacket: int type; ustring scheme; buffer auth
ReplyHeader: int xid; long zxid; int err
GetDataRequest: ustring path; boolean watch
SetDataRequest: ustring path; buffer data; int version
ReconfigRequest: ustring joiningServers; ustring leavingServers; ustring newMembers; long curConfigId
SetDataResponse: Stat stat
GetSASLRequest: buffer token
SetSASLRequest: buffer token
SetSASLResponse: buffer token
CreateRequest: ustring path; buffer data; vector<ACL> acl; int flags
CreateTTLRequest: ustring path; buffer data; vector<ACL> acl; int flags; long ttl
DeleteRequest: ustring path; int version
GetChildrenRequest: ustring path; boolean watch
GetAllChildrenNumberRequest: ustring path
GetChildren2Request: ustring path; boolean watch
CheckVersionRequest: ustring path; int version
GetMaxChildrenRequest: ustring path
GetMaxChildrenResponse: int max
SetMaxChildrenRequest: ustring path; int max
SyncRequest: ustring path
SyncResponse: ustring path
GetACLRequest: ustring path
SetACLRequest: ustring path; vector<ACL> acl; int version
SetACLResponse: Stat stat
AddWatchRequest: ustring path; int mode
WatcherEvent: int type; int state; ustring path
ErrorResponse: int err
CreateResponse: ustring path
Create2Response: ustring path; Stat stat
ExistsRequest: ustring path; boolean watch
ExistsResponse: Stat stat
GetDataResponse: buffer data; Stat stat
GetChildrenResponse: vector<ustring> children
GetAllChildrenNumberResponse: int totalNumber
GetChildren2Response: vector<ustring> children; Stat stat
GetACLResponse: vector<ACL> acl; Stat stat
CheckWatchesRequest: ustring path; int type
RemoveWatchesRequest: ustring path; int type
GetEphemeralsRequest: ustring prefixPath
GetEphemeralsResponse: vector<ustring> ephemerals
WhoAmIResponse: vector<ClientInfo> clientInfo
LearnerInfo: long serverid; int protocolVersion; long configVersion
QuorumPacket: int type; long zxid; buffer data; vector<Id> authinfo
QuorumAuthPacket: long magic; int status; buffer token
FileHeader: int magic; int version; long dbid
TxnDigest: int version; long treeDigest
TxnHeader: long clientId; int cxid; long zxid; long time; int type
CreateTxnV0: ustring path; buffer data; vector<ACL> acl; boolean ephemeral
CreateTxn: ustring path; buffer data; vector<ACL> acl; boolean ephemeral; int parentCVersion
CreateTTLTxn: ustring path; buffer data; vector<ACL> acl; int parentCVersion; long ttl
CreateContainerTxn: ustring path; buffer data; vector<ACL> acl; int parentCVersion
DeleteTxn: ustring path
SetDataTxn: ustring path; buffer data; int version
CheckVersionTxn: ustring path; int version
SetACLTxn: ustring path; vector<ACL> acl; int version
SetMaxChildrenTxn: ustring path; int max
CreateSessionTxn: int timeOut
CloseSessionTxn: vector<ustring> paths2Delete
ErrorTxn: int err
Txn: int type; buffer data
MultiTxn: vector<Txn> txns
"""

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def snake(name: str) -> str:
    "Java's camelCase field name in the contract's snake_case: parentCVersion -> parent_cversion."
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def declared(cls) -> list[tuple[str, str]]:
    "(jute type, python field name) of a zkref record, in wire order."
    out = []
    for name, t in cls._jute_fields:
        jt = jute._jute_type(t)
        out.append((jt.name if jt else t.__name__, name))
    return out


def test_every_record_of_zookeeper_jute_is_declared_in_wire_order():
    """Each class of zookeeper.jute is a zkref record of the same name, with the same field types in the same order
    (field order is the wire order: jute has no tags), field names in snake_case, and nothing extra.

    Reference: zookeeper-jute/src/main/resources/zookeeper.jute (branch-3.8); Java's generated Record.serialize.
    """
    expected = {}
    for line in ZOOKEEPER_JUTE.strip().splitlines():
        name, fields = line.split(": ", 1)
        expected[name] = [(t, snake(f)) for t, f in (x.rsplit(" ", 1) for x in fields.split("; "))]
    assert sorted(RECORDS) == sorted(expected)
    for name, fields in expected.items():
        assert declared(RECORDS[name]) == fields, name


def test_every_field_has_a_default_so_records_build_from_keywords():
    """Records are built with keywords: every field defaults to 0, False, "", b"", [] or a default nested record, and
    the default record encodes as Java's default-constructed record would (zeros and empty lengths, never null).

    Reference: the shared zkref.jute contract; Java's generated no-argument constructors.
    """
    for cls in RECORDS.values():
        rec = cls()
        assert cls.from_bytes(rec.to_bytes()) == rec
    assert Stat().to_bytes() == bytes(68)
    assert ACL().to_bytes() == bytes(4) + bytes(8)          # perms 0, then Id("", "")
    assert CreateRequest(path="/a").acl == [] and CreateRequest().acl is not CreateRequest().acl


def test_records_compare_and_hash_by_value():
    """Records are equal when all their fields are, and hash by value, so an ACL list can key a cache.

    Reference: Java's generated Record.equals/hashCode; ReferenceCountedACLCache keys on List<ACL>.
    """
    acl = lambda: (ACL(perms=31, id=Id(scheme="world", id="anyone")),)
    assert acl() == acl() and hash(acl()) == hash(acl()) and len({acl(), acl()}) == 1
    assert Stat(version=1) != Stat(version=2)


# ---- round trips -------------------------------------------------------------------------------------------

def strategy(t):
    "A hypothesis strategy for values of the jute type annotation `t` (or record class `t`)."
    jt = jute._jute_type(t)
    if jt is None:
        return record_strategy(t)
    if jt.code:
        bits = {"b": 8, "i": 32, "q": 64}.get(jt.code)
        return st.booleans() if jt.code == "?" else st.integers(-2 ** (bits - 1), 2 ** (bits - 1) - 1)
    if jt.name == "ustring":
        return st.none() | st.text(max_size=20)
    if jt.name == "buffer":
        return st.none() | st.binary(max_size=40)
    return st.none() | st.lists(strategy(jt.item), max_size=4)


def record_strategy(cls):
    return st.builds(cls, **{name: strategy(t) for name, t in cls._jute_fields})


@pytest.mark.parametrize("name", sorted(RECORDS))
@FUZZ
@given(data=st.data())
def test_every_record_round_trips(name, data):
    """Any value of any record encodes and decodes back to itself, including null strings, buffers and vectors
    (length -1) and strings outside the Basic Multilingual Plane; re-encoding gives the same bytes.

    Reference: Java BinaryOutputArchive / BinaryInputArchive, the generated Record.serialize/deserialize.
    """
    cls = RECORDS[name]
    rec = data.draw(record_strategy(cls))
    b = rec.to_bytes()
    ia = InputArchive(b)
    assert ia.read_record(cls) == rec and ia.remaining() == 0
    assert cls.from_bytes(b).to_bytes() == b


# ---- decoding hostile bytes --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(RECORDS))
@FUZZ
@given(data=st.binary(max_size=300), max_buffer=st.sampled_from([JUTE_MAXBUFFER, 0, 2 ** 31]))
def test_random_bytes_decode_or_raise_jute_error(name, data, max_buffer):
    """Random bytes fed to any record's decoder either decode or raise JuteError (never another exception, never a
    hang, never an allocation beyond the input), whatever jute.maxbuffer is.

    Reference: Java BinaryInputArchive.checkLength and DataInput.readFully (EOFException on truncated input).
    """
    try:
        RECORDS[name].from_bytes(data, max_buffer)
    except JuteError:
        pass


@pytest.mark.parametrize("name", sorted(RECORDS))
@FUZZ
@given(data=st.data())
def test_truncated_or_corrupted_records_raise_only_jute_error(name, data):
    """A valid encoding cut short always raises JuteError; one with a byte changed decodes or raises JuteError.

    Reference: Java BinaryInputArchive (EOFException from readFully; IOException "Unreasonable length").
    """
    cls = RECORDS[name]
    b = data.draw(record_strategy(cls)).to_bytes()
    cut = data.draw(st.integers(0, len(b) - 1))
    with pytest.raises(JuteError):
        cls.from_bytes(b[:cut])
    i = data.draw(st.integers(0, len(b) - 1))
    corrupted = b[:i] + bytes([data.draw(st.integers(0, 255))]) + b[i + 1:]
    try:
        cls.from_bytes(corrupted)
    except JuteError:
        pass


def _has_own_from_bytes(cls) -> bool:
    jute.jute_source(cls)                # compiles the class, if nothing used it yet
    return "from_bytes" in cls.__dict__


PATH_FIRST = sorted(n for n, cls in RECORDS.items() if _has_own_from_bytes(cls))


def test_the_path_first_records_have_their_own_from_bytes():
    "The records most requests are (a path, then fixed-size fields) get chapter 06a2's direct `from_bytes`."
    assert {"GetDataRequest", "ExistsRequest", "GetChildrenRequest", "GetChildren2Request", "DeleteRequest",
            "CheckVersionRequest", "GetACLRequest", "SyncRequest", "AddWatchRequest"} <= set(PATH_FIRST)
    assert "SetDataRequest" not in PATH_FIRST and "CreateRequest" not in PATH_FIRST
    get_data = RECORDS["GetDataRequest"]          # called as any record's from_bytes is, keywords included
    assert get_data.from_bytes(data=get_data("/a", True).to_bytes(), max_buffer=0) == get_data("/a", True)


def _decode(decode):
    try:
        return decode()
    except JuteError as e:
        return ("JuteError", str(e))


@pytest.mark.parametrize("name", PATH_FIRST)
@FUZZ
@given(data=st.data(), max_buffer=st.sampled_from([JUTE_MAXBUFFER, 0, 2 ** 31]))
def test_a_path_first_records_from_bytes_agrees_with_the_archive(name, data, max_buffer):
    """The direct `from_bytes` of a path-first record gives what reading it through `InputArchive` gives: the
    same record, or a JuteError with the same message (a null or over-long path, a length past the end, too few
    bytes for the rest, bytes that are not UTF-8). Valid encodings, cut or with a byte changed, and random bytes.

    Reference: Java BinaryInputArchive.readString (checkLength, readFully, new String(b, UTF_8)).
    """
    cls = RECORDS[name]
    b = data.draw(st.one_of(st.binary(max_size=40), record_strategy(cls).map(cls.to_bytes)))
    if b and data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(b) - 1))
        b = b[:i] + bytes([data.draw(st.integers(0, 255))]) + b[i + 1:]
    b = b[:data.draw(st.integers(0, len(b)))]
    assert _decode(lambda: cls.from_bytes(b, max_buffer)) == _decode(lambda: cls.deserialize(InputArchive(b, max_buffer)))


def test_lengths_over_the_limit_are_unreasonable():
    """A buffer or ustring length outside 0..maxBuffer+extra (extra = max(1024, maxBuffer)) raises
    "Unreasonable length = N" before anything is read or allocated; -1 is null.

    Reference: Java BinaryInputArchive.checkLength, UNREASONBLE_LENGTH; zookeeper.jute.maxbuffer.extrasize default.
    """
    limit = 2 * JUTE_MAXBUFFER
    for n in (limit + 1, 0x7FFFFFFF, -2, -0x80000000):
        for read in (InputArchive.read_buffer, InputArchive.read_ustring):
            with pytest.raises(JuteError, match=f"^Unreasonable length = {n}$"):
                read(InputArchive(n.to_bytes(4, "big", signed=True) + bytes(16)))
    assert InputArchive(limit.to_bytes(4, "big") + bytes(limit)).read_buffer() == bytes(limit)
    # a small jute.maxbuffer still allows 1024 extra bytes
    assert len(InputArchive((1034).to_bytes(4, "big") + bytes(1034), max_buffer=10).read_buffer()) == 1034
    with pytest.raises(JuteError, match="^Unreasonable length = 1035$"):
        InputArchive((1035).to_bytes(4, "big") + bytes(1035), max_buffer=10).read_buffer()
    with pytest.raises(JuteError, match="^Unreasonable length = 2097151$"):
        GetDataResponse.from_bytes(bytes.fromhex("001fffff") + bytes(100))
    assert InputArchive(b"\xff\xff\xff\xff").read_ustring() is None


def test_truncated_lengths_fail_without_allocating():
    """A length or count larger than what is left fails at once with JuteError: with jute.maxbuffer as large as it
    goes (2^31-1 total) a 2 GiB length on a 4-byte input is not allocated, and a vector count of 2^31-1 is not looped.

    Reference: Java BinaryInputArchive.readBuffer (readFully throws EOFException), startVector.
    """
    with pytest.raises(JuteError, match="Truncated input"):
        InputArchive(b"\x7f\xff\xff\xff" + b"abcd", max_buffer=2 ** 31).read_buffer()
    with pytest.raises(JuteError, match="Truncated input"):
        InputArchive(b"\x7f\xff\xff\xff" + b"abcd").read_vector(InputArchive.read_bool)
    with pytest.raises(JuteError, match="Truncated input"):
        InputArchive(b"\x00\x00\x00").read_int()
    with pytest.raises(JuteError, match="Truncated input"):
        Stat.from_bytes(bytes(67))


def test_vector_counts_as_java_reads_them():
    """A vector count of -1 is null; any other negative count is an empty vector (Java's BinaryIndex is done at once);
    a null vector is written as count -1.

    Reference: Java BinaryInputArchive.startVector, BinaryIndex.done; BinaryOutputArchive.startVector.
    """
    assert InputArchive(b"\xff\xff\xff\xff").read_vector(InputArchive.read_int) is None
    assert InputArchive(b"\xff\xff\xff\xfe").read_vector(InputArchive.read_int) == []
    assert InputArchive(bytes.fromhex("00000002 00000001 00000002")).read_vector(InputArchive.read_int) == [1, 2]
    oa = OutputArchive()
    oa.write_vector(None, OutputArchive.write_int)
    oa.write_vector([7], OutputArchive.write_int)
    assert oa.getvalue() == bytes.fromhex("ffffffff 00000001 00000007")
    assert MultiTxn(txns=None).to_bytes() == b"\xff\xff\xff\xff"


def test_maps_round_trip():
    """A jute map is a count, then key and value pairs; -1 is null (ZooKeeper 3.8's records have none).

    Reference: Java BinaryOutputArchive.startMap, BinaryInputArchive.startMap.
    """
    oa = OutputArchive()
    oa.write_map({"a": 1, "b": 2}, OutputArchive.write_ustring, OutputArchive.write_int)
    oa.write_map(None, OutputArchive.write_ustring, OutputArchive.write_int)
    ia = InputArchive(oa.getvalue())
    assert ia.read_map(InputArchive.read_ustring, InputArchive.read_int) == {"a": 1, "b": 2}
    assert ia.read_map(InputArchive.read_ustring, InputArchive.read_int) is None and ia.remaining() == 0


def test_values_that_do_not_fit_raise_jute_error_on_write():
    """An int field holding a value outside 32 bits, or a nested record that is None, cannot be written.

    Reference: Java's int/long field types (the value cannot exist in Java); generated serialize (NPE on null record).
    """
    with pytest.raises(JuteError, match="cannot serialize ReplyHeader"):
        ReplyHeader(xid=2 ** 31).to_bytes()
    with pytest.raises(JuteError, match="cannot serialize GetDataResponse"):
        GetDataResponse(stat=None).to_bytes()


def _element_by_element(items) -> bytes:
    oa = OutputArchive()
    oa.write_vector(items, OutputArchive.write_ustring)
    return oa.getvalue()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lists=st.lists(st.lists(st.one_of(st.text(max_size=12), st.none(), st.sampled_from(["a", "b", "é"])),
                               max_size=120), min_size=1, max_size=6))
def test_vector_of_ustring_in_one_pass_writes_javas_bytes(lists):
    """A vector<ustring> is its int count (-1 for null), then each string as an int byte length (-1 for null)
    and its bytes in Java's modified encoding (CESU-8); writing it in one pass (and reusing a kept encoding
    for an equal list) gives exactly the element-by-element bytes, for any strings, nulls and any sequence of
    lists, including long lists that differ in one element.

    Reference: BinaryOutputArchive.startVector/writeString; the generated serialize of a vector<ustring> field
    """
    for items in lists + [lists[0][:1] + lists[0][1:]] + [None]:
        oa = OutputArchive()
        oa.write_ustrings(items)
        assert oa.getvalue() == _element_by_element(items)
    long = [f"child-{i}" for i in range(100)]
    for changed in (long, long[:-1] + ["x"], long, long[:10] + ["é"] + long[11:], long):
        oa = OutputArchive()
        oa.write_ustrings(changed)
        assert oa.getvalue() == _element_by_element(changed)
    from zkref.jute import GetChildrenResponse
    assert GetChildrenResponse(children=long).to_bytes() == _element_by_element(long)


# ---- known byte vectors ------------------------------------------------------------------------------------

def test_stat_known_bytes():
    """A Stat is eleven big-endian fields, 68 bytes: czxid, mzxid, ctime, mtime (long), version, cversion,
    aversion (int), ephemeralOwner (long), dataLength, numChildren (int), pzxid (long).

    Reference: zookeeper.jute `class Stat`; Java DataOutput.writeLong/writeInt (big-endian).
    """
    b = bytes.fromhex("0000000100000002 0000000100000005 0000019abf88b980 0000019abf88bd68"
                      "00000001 00000002 00000003 1122334455667788 00000005 00000006 0000000100000002")
    stat = Stat(czxid=0x100000002, mzxid=0x100000005, ctime=1764150000000, mtime=1764150001000, version=1,
                cversion=2, aversion=3, ephemeral_owner=0x1122334455667788, data_length=5, num_children=6,
                pzxid=0x100000002)
    assert Stat.from_bytes(b) == stat and stat.to_bytes() == b


def test_reply_header_known_bytes():
    """A ReplyHeader is xid (int), zxid (long), err (int), big-endian and signed: a watch notification has xid -1
    and a NoNode error is -101.

    Reference: zookeeper.jute `class ReplyHeader`; Java ClientCnxn NOTIFICATION_XID = -1; KeeperException.Code.NONODE.
    """
    b = bytes.fromhex("ffffffff 00000001 00000003 ffffff9b")
    assert ReplyHeader.from_bytes(b) == ReplyHeader(xid=-1, zxid=0x100000003, err=-101)
    assert ReplyHeader(xid=-1, zxid=0x100000003, err=-101).to_bytes() == b


# The first frame of ZooKeeper 3.8.0's zkCli.sh (and of the C client cli_mt): length, ConnectRequest, readOnly.
JAVA_CONNECT_FRAME = bytes.fromhex("0000002d 00000000 0000000000000000 00007530 0000000000000000 00000010"
                                   "00000000000000000000000000000000 00")
# zkCli.sh `create /x y world:a😀é:cdrwa`: RequestHeader(1, create) + CreateRequest, as the Java client sends it.
JAVA_CREATE_CESU = bytes.fromhex("00000001 00000001 00000002 2f78 00000001 79 00000001 0000001f 00000005 776f726c64"
                                 "00000009 61 eda0bd edb880 c3a9 00000000")


def test_java_connect_request_decodes():
    """What the Java client sends first is a ConnectRequest (protocolVersion 0, lastZxidSeen 0, timeOut 30000,
    sessionId 0, a 16-byte zero password) followed by the readOnly boolean, which is outside the record.

    Reference: Java ClientCnxnSocket / ClientCnxn.SendThread.primeConnection; zookeeper.jute `class ConnectRequest`.
    """
    ia = InputArchive(JAVA_CONNECT_FRAME)
    assert ia.read_int() == len(JAVA_CONNECT_FRAME) - 4
    req = ia.read_record(ConnectRequest)
    assert req == ConnectRequest(protocol_version=0, last_zxid_seen=0, time_out=30000, session_id=0, passwd=bytes(16))
    assert ia.read_bool() is False and ia.remaining() == 0
    assert req.to_bytes() == JAVA_CONNECT_FRAME[4:-1]


def test_supplementary_characters_are_written_as_java_writes_them():
    """Java writes a string per UTF-16 code unit, so U+1F600 becomes the surrogate pair ED A0 BD ED B8 80 (CESU-8);
    zkref writes the same bytes and reads both that and standard UTF-8 (F0 9F 98 80) as the same character (Java's
    reader, new String(b, UTF_8), would turn the CESU-8 form into U+FFFD: a deliberate, documented difference).

    Reference: Java BinaryOutputArchive.stringToByteBuffer; BinaryInputArchive.readString.
    """
    ia = InputArchive(JAVA_CREATE_CESU)
    assert ia.read_record(RequestHeader) == RequestHeader(xid=1, type=1)
    req = ia.read_record(CreateRequest)
    assert req == CreateRequest(path="/x", data=b"y", acl=[ACL(perms=31, id=Id(scheme="world", id="a\U0001F600é"))])
    assert RequestHeader(xid=1, type=1).to_bytes() + req.to_bytes() == JAVA_CREATE_CESU
    assert encode_ustring("\U0001F600") == bytes.fromhex("eda0bdedb880")
    assert decode_ustring(bytes.fromhex("f09f9880")) == decode_ustring(bytes.fromhex("eda0bdedb880")) == "\U0001F600"
    assert decode_ustring(bytes.fromhex("eda0bd")) == "\ud83d"              # a lone surrogate, as Java writes it
    assert encode_ustring("\ud83d") == bytes.fromhex("eda0bd")
    assert decode_ustring(b"\xc3") == "\ufffd" and decode_ustring(b"\xff/a") == "\ufffd/a"   # as new String(b, UTF_8)


def test_trailing_bytes_are_left_unread():
    """Deserializing reads exactly the record's fields and leaves whatever follows (the ConnectRequest's readOnly
    flag, the next record) for the caller.

    Reference: Java Record.deserialize reads field by field from the archive; ClientCnxn reads readOnly after it.
    """
    assert ConnectRequest.from_bytes(JAVA_CONNECT_FRAME[4:]) == ConnectRequest(time_out=30000, passwd=bytes(16))


# ---- real Java bytes ---------------------------------------------------------------------------------------

def recv_exact(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise EOFError(f"connection closed after {len(out)} of {n} bytes")
        out += chunk
    return out


def recv_frame(sock: socket.socket) -> bytes:
    "One length-prefixed frame of the client protocol."
    return recv_exact(sock, int.from_bytes(recv_exact(sock, 4), "big"))


def send_frame(sock: socket.socket, *records) -> None:
    body = b"".join(r if isinstance(r, bytes) else r.to_bytes() for r in records)
    sock.sendall(len(body).to_bytes(4, "big") + body)


def capture_client_frames(cmd: list[str], answer_connect: bool, count: int) -> list[bytes]:
    "Run a real ZooKeeper client against a socket server on a free port; return the first `count` frames it sends."
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(60)
        port = server.getsockname()[1]
        env = dict(os.environ, LC_ALL="C.UTF-8")
        # stdin stays open until the end: cli_mt quits at end of input, sometimes before it has connected
        proc = subprocess.Popen([c.replace("PORT", str(port)) for c in cmd], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
        try:
            conn, _ = server.accept()
            with conn:
                conn.settimeout(30)
                frames = [recv_frame(conn)]
                if answer_connect:
                    send_frame(conn, ConnectResponse(0, 30000, 0x1234, bytes(16)), b"\x00")
                while len(frames) < count:
                    frame = recv_frame(conn)
                    if RequestHeader.from_bytes(frame).xid != -2:      # skip pings
                        frames.append(frame)
                return frames
        finally:
            os.killpg(proc.pid, signal.SIGTERM)                       # the process group we started
            proc.wait(15)
            proc.stdin.close()


ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
CLI_MT = "/usr/lib/zookeeper/bin/cli_mt"


@pytest.mark.java
@pytest.mark.skipif(not java_available(), reason="needs Debian's zookeeper package (zkCli.sh)")
def test_real_java_client_frames_decode():
    """The live Java client's first frame decodes as a ConnectRequest, and its create request — with a supplementary
    character in the ACL id — decodes and re-encodes to exactly the bytes Java sent.

    Reference: Java ClientCnxn.SendThread.primeConnection; BinaryOutputArchive.stringToByteBuffer.
    """
    connect, create = capture_client_frames([ZKCLI, "-server", "127.0.0.1:PORT", "create", "/x", "y",
                                             "world:a\U0001F600é:cdrwa"], answer_connect=True, count=2)
    assert connect == JAVA_CONNECT_FRAME[4:]
    assert create == JAVA_CREATE_CESU


@pytest.mark.skipif(not Path(CLI_MT).exists(), reason="needs Debian's zookeeper-bin package (cli_mt)")
def test_real_c_client_connect_request_decodes():
    """The C client's first frame is a ConnectRequest with the readOnly flag after it, byte for byte as Java's.

    Reference: zookeeper-client-c zookeeper.c prime_connection / serialize_ConnectRequest.
    """
    (connect,) = capture_client_frames([CLI_MT, "127.0.0.1:PORT"], answer_connect=False, count=1)
    ia = InputArchive(connect)
    assert ia.read_record(ConnectRequest).time_out == 30000 and ia.read_bool() is False and ia.remaining() == 0


OP_GET_DATA, OP_CREATE2, OP_CREATE_SESSION = 4, 15, -10   # Java ZooDefs.OpCode


@pytest.mark.java
def test_records_interoperate_with_the_real_java_server(java_zk):
    """The real Java server accepts requests encoded by zkref.jute and its replies decode: a session is created, a
    create2 returns a Stat, getData returns the data and the same Stat; the transaction log it wrote starts with a
    FileHeader ("ZKLG", version 2) followed by crc, length, TxnHeader, the txn record and a TxnDigest.

    Reference: Java NIOServerCnxn/ZooKeeperServer.processConnectRequest, FinalRequestProcessor, FileTxnLog (format).
    """
    server = java_zk()
    with socket.create_connection(("127.0.0.1", server.client_port), timeout=15) as sock:
        send_frame(sock, ConnectRequest(time_out=30000, passwd=bytes(16)), b"\x00")
        ia = InputArchive(recv_frame(sock))
        resp = ia.read_record(ConnectResponse)
        assert resp.time_out == 30000 and resp.session_id != 0 and len(resp.passwd) == 16
        acl = [ACL(perms=31, id=Id(scheme="world", id="anyone"))]
        send_frame(sock, RequestHeader(xid=1, type=OP_CREATE2), CreateRequest(path="/jute", data=b"hello", acl=acl))
        ia = InputArchive(recv_frame(sock))
        hdr = ia.read_record(ReplyHeader)
        created = ia.read_record(Create2Response)
        assert (hdr.xid, hdr.err, created.path) == (1, 0, "/jute") and ia.remaining() == 0
        assert created.stat.data_length == 5 and created.stat.czxid == hdr.zxid == created.stat.mzxid
        send_frame(sock, RequestHeader(xid=2, type=OP_GET_DATA), GetDataRequest(path="/jute", watch=False))
        ia = InputArchive(recv_frame(sock))
        assert ia.read_record(ReplyHeader).err == 0
        assert ia.read_record(GetDataResponse) == GetDataResponse(data=b"hello", stat=created.stat)

    (log,) = (server.data_dir / "version-2").glob("log.*")
    raw = log.read_bytes()
    ia = InputArchive(raw)
    assert ia.read_record(FileHeader) == FileHeader(magic=0x5A4B4C47, version=2, dbid=0)
    txns = []
    while ia.remaining() >= 12:
        crc, length = ia.read_long(), ia.read_int()
        if length == 0:                       # the zero-filled preallocated tail
            break
        entry = InputArchive(raw[ia.offset:ia.offset + length])
        ia.offset += length
        txns.append((entry.read_record(TxnHeader), entry))
        assert ia.read_byte() == ord("B")     # Java FileTxnLog: end-of-record marker
    (s_hdr, s_entry), (c_hdr, c_entry) = txns[:2]
    assert s_hdr.type == OP_CREATE_SESSION and s_entry.read_record(CreateSessionTxn).time_out == 30000
    assert c_hdr.type == OP_CREATE2 and c_hdr.zxid == created.stat.czxid and c_hdr.client_id == resp.session_id
    txn = c_entry.read_record(CreateTxn)
    assert txn == CreateTxn(path="/jute", data=b"hello", acl=acl, ephemeral=False, parent_cversion=1)
    digest = c_entry.read_record(TxnDigest)   # zookeeper.digest.enabled (default true) appends the tree digest
    assert digest.version == 2 and digest.tree_digest != 0 and c_entry.remaining() == 0
