"""A randomized differential test: seeded random sequences of client operations, sent in lockstep to the real
Java ZooKeeper 3.8 server and to zkref, must give the same normalized transcripts.

`test_standalone_parity.py` runs one hand-written script; a generator finds what its author did not think of.
Each seed draws ~150 operations over a small path space (`/sN/d`, `/sN/d/a`, `/sN/d/a/b`, `/sN/d/b`, `/sN/e`,
sequential names, invalid paths), so that collisions, missing parents, non-empty deletes, version conflicts and
ACL refusals are frequent, from three sessions, so that watches fire across sessions and ephemerals vanish when a
session closes. A step is drawn from the generator's state (which it updates from Java's replies only), sent to
Java, then to zkref; each side's transcript entry is the reply header (xid, zxid, err), the decoded response
normalized (times dropped, session ids named in order of appearance, passwords reduced to "zero or not") and the
watch events every session received since the previous step, in order (collected by pinging each session: the
ping's reply comes after any event queued before it). Both servers start from empty data directories, so zxids
must match exactly. The first difference fails the test with the seed, the step, the last steps before it and
both sides. Run with `-s` to see how many steps each operation kind had.
"""
from __future__ import annotations

import dataclasses
import os
import random
import socket
import struct
from collections import Counter

import pytest

from test_standalone_server import RawClient
from test_standalone_parity import RESPONSES
from zkref.jute import (ACL, Id, AddWatchRequest, AuthPacket, CheckVersionRequest, CheckWatchesRequest,
                        ConnectRequest, ConnectResponse, CreateRequest, CreateTTLRequest, DeleteRequest, ExistsRequest,
                        GetACLRequest, GetAllChildrenNumberRequest, GetChildren2Request, GetChildrenRequest,
                        GetDataRequest, GetEphemeralsRequest, ReconfigRequest, RemoveWatchesRequest, SetACLRequest, SetDataRequest,
                        SetWatches, SetWatches2, Stat, SyncRequest)
from zkref.proto import MultiOperationRecord, OpCode, OpResult, frame, generate_digest

pytestmark = pytest.mark.java

SEEDS = [int(x) for x in os.environ.get("ZKREF_DIFF_SEEDS", "1,2,3,4,5,6,7,8,9,10").split(",")]   # to replay one seed
STEPS = int(os.environ.get("ZKREF_DIFF_STEPS", "250"))
SESSIONS = int(os.environ.get("ZKREF_DIFF_SESSIONS", "3"))
FOCUS = set(filter(None, os.environ.get("ZKREF_DIFF_FOCUS", "").split(",")))   # kinds drawn 5 times as often
CONFIG = {"tickTime": 2000, "extendedTypesEnabled": "true"}
# The ContainerManager deletes empty containers and expired TTL nodes on a timer, at a moment neither test nor
# server controls: its txns would interleave with ours at different zxids. An hour-long interval keeps it idle.
JVM_FLAGS = ["-Dznode.container.checkIntervalMs=3600000"]

WORLD = Id(scheme="world", id="anyone")
ACLS = {
    "open": [ACL(perms=31, id=WORLD)],
    "world-read": [ACL(perms=1, id=WORLD)],
    "u-only": [ACL(perms=31, id=Id(scheme="digest", id=generate_digest("u:pw")))],   # locks out sessions without u
    "u+world-read": [ACL(perms=31, id=Id(scheme="digest", id=generate_digest("u:pw"))), ACL(perms=1, id=WORLD)],
    "auth": [ACL(perms=31, id=Id(scheme="auth", id=""))],
    "ip": [ACL(perms=31, id=Id(scheme="ip", id="127.0.0.1"))],
    "empty": [],
    "bad-scheme": [ACL(perms=31, id=Id(scheme="nosuch", id="x"))],
    "bad-perms": [ACL(perms=0, id=WORLD)],
    "create-delete": [ACL(perms=4 | 8 | 1, id=WORLD)],
}
# ACLs that deny READ to some session. Debian's Java is 3.8.0; 3.8.4 (ZOOKEEPER-2590, ZOOKEEPER-4799/CVE-2024-23944),
# which zkref follows, also checks READ in `exists` and drops watch events a session may not read. So these ACLs only
# go on a subtree, /sN/lock, on which no session sets a watch, nor a recursive watch above it, nor calls exists:
# there the two Java versions agree, and zkref must agree with both.
LOCKING = {"u-only", "auth", "bad-perms"}


# ----------------------------------------------------------------------------------------------- the generator
class RawBody:
    "A request body written byte by byte: what no client library would send."

    def __init__(self, body: bytes):
        self.body = body

    def serialize(self, oa) -> None:
        oa._buf += self.body

    def __repr__(self):
        return f"RawBody({self.body!r})"


def _jstr(b: bytes | None) -> bytes:
    "A jute string or buffer of raw bytes (None: length -1, null)."
    return struct.pack(">i", -1) if b is None else struct.pack(">i", len(b)) + b


_OPEN = struct.pack(">ii", 1, 31) + _jstr(b"world") + _jstr(b"anyone")


def raw_requests(base: str) -> list:
    "Hand-made bodies: bad UTF-8 in a path, null data and ACLs, cut and padded bodies, impossible lengths."
    b = base.encode()
    # (null paths are NULL_PATH_REQUESTS, below)
    return [
        (OpCode.create, _jstr(b + b"/x\xff") + _jstr(b"") + _OPEN + struct.pack(">i", 0)),
        (OpCode.create, _jstr(b + b"/x\xc3") + _jstr(b"") + _OPEN + struct.pack(">i", 0)),
        (OpCode.create, _jstr(b + b"/x\xed\xa0\x80") + _jstr(b"") + _OPEN + struct.pack(">i", 0)),
        (OpCode.create, _jstr(b + b"/x\xc0\xaf") + _jstr(b"") + _OPEN + struct.pack(">i", 0)),
        (OpCode.create2, _jstr(b + b"/nd") + _jstr(None) + _OPEN + struct.pack(">i", 0)),
        (OpCode.setData, _jstr(b + b"/nd") + _jstr(None) + struct.pack(">i", -1)),
        (OpCode.getData, _jstr(b + b"/nd") + b"\0"),
        (OpCode.create, _jstr(b + b"/na") + _jstr(b"") + struct.pack(">i", -1) + struct.pack(">i", 0)),
        (OpCode.create, _jstr(b + b"/nc") + _jstr(b"") + struct.pack(">ii", 1, 31) + _jstr(None) + _jstr(b"anyone")
         + struct.pack(">i", 0)),
        (OpCode.setACL, _jstr(b + b"/nd") + struct.pack(">ii", -1, -1)),
        (OpCode.sync, _jstr(None)),
        (OpCode.getEphemerals, _jstr(None)),
        (OpCode.getData, _jstr(b + b"/nd")),                       # cut short: no watch flag
        (OpCode.exists, b""),
        (OpCode.getData, struct.pack(">i", 0x7FFFFFFF) + b"/x"),
        (OpCode.getData, struct.pack(">i", -7) + b"/x"),
        (OpCode.exists, _jstr(b) + b"\0" + b"trailing"),
        (OpCode.whoAmI, b"abc"),
    ]


def _create_op(path: str, flags: int):
    return OpCode.create, CreateRequest(path=path, data=b"", acl=ACLS["open"], flags=flags)

@dataclasses.dataclass
class Step:
    "One drawn operation: which session slot sends it, a kind (for the coverage count) and what to send."
    slot: int
    kind: str
    op: int = 0
    record: object = None
    xid: int | None = None          # a fixed xid (auth -4, setWatches -8); None: the client's next


class Generator:
    "Draws steps from a seeded RNG and a model of the tree it keeps from Java's replies."

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.base = f"/s{seed}"
        b = self.base
        self.fixed = [b + "/d", b + "/d/a", b + "/d/a/b", b + "/d/b", b + "/e", b + "/d/a/b/c", b, b + "/ü/日本"]
        self.prefixes = [b + "/d/s-", b + "/d/a/q-", b + "/e-", b + "/x/s-"]
        self.lock = [b + "/lock", b + "/lock/k", b + "/lock/k/m", b + "/lock/x/y"]
        self.lock_prefixes = [b + "/lock/k/q-", b + "/lock/s-"]
        q = "/zookeeper/quota" + b
        self.quota = [q, q + "/d", q + "/d/zookeeper_limits", q + "/d/zookeeper_stats", q + "/d/a",
                      q + "/d/a/zookeeper_limits"]     # setquota's nodes, made by hand
        self.invalid = ["", "d", b + "/", b + "//d", b + "/d/", b + "/d\u0000x", b + "/./d", b + "/d/..",
                        "/zookeeper/x", "/zookeeper", "/zookeeper/quota", "/zookeeper/config", "/"]
        self.seen: list[str] = []          # sequential names Java created, out of /sN/lock
        self.seen_lock: list[str] = []     # and in it
        self.versions: dict[str, Stat] = {}
        self.closed: set[int] = set()      # slots whose session was closed by closeSession

    def path(self, valid=0.88, lock: bool = True) -> str:
        "A path: invalid, or in the general pool, or (if `lock`) in /sN/lock, where any ACL may be set."
        rng = self.rng
        if rng.random() > valid:
            return rng.choice(self.invalid)
        if lock and rng.random() < 0.2:
            if self.seen_lock and rng.random() < 0.3:
                return rng.choice(self.seen_lock[-6:])
            return rng.choice(self.lock)
        if self.seen and rng.random() < 0.25:
            return rng.choice(self.seen[-8:])
        if rng.random() < 0.08:
            return rng.choice(self.quota)
        return rng.choice(self.fixed)

    def in_lock(self, path: str) -> bool:
        return path.startswith(self.base + "/lock")      # also a sequential name made from /sN/lock

    def data(self, path: str = "") -> bytes:
        if path.endswith(("/zookeeper_limits", "/zookeeper_stats")):
            # only what StatsTrack parses: Java's DataTree.updateQuotaStat throws on anything else (a pair without
            # "=", a value that is no long) and its SyncThread stops the server
            return self.rng.choice([b"count=2,bytes=-1", b"count=-1,bytes=40", b"count=3,bytes=100,countHardLimit=4",
                                    b"count=1", b"", b"count=0;bytes=5"])
        return self.rng.choice([b"", b"", b"v", b"hello", bytes(range(256)) * 12])      # 0 bytes .. 3 KB

    def version(self, path: str, field: str = "version") -> int:
        st = self.versions.get(path)
        known = getattr(st, field) if st else 0
        return self.rng.choice([-1, -1, known, known, known, known + 1, 7])

    def acl(self, path: str) -> list[ACL]:
        names = list(ACLS)
        if not path.startswith((self.base + "/", "/zookeeper/quota" + self.base + "/")) and path != self.base:
            # outside the seed's own nodes (/, /zookeeper/...): nothing that would stop the next seeds
            return ACLS[self.rng.choice(["open", "open", "empty", "bad-scheme"])]
        weights = [10, 2, 2, 2, 1, 1, 1, 1, 1, 1]
        if self.in_lock(path):
            weights = [4, 1, 6, 1, 3, 1, 1, 1, 2, 1]
        else:
            weights = [0 if n in LOCKING else w for n, w in zip(names, weights)]
        return ACLS[self.rng.choices(names, weights)[0]]

    def create_record(self, flags: int | None = None, odd: bool = True):
        rng = self.rng
        seq = rng.random() < 0.3
        if seq:
            path = rng.choice(self.lock_prefixes if rng.random() < 0.2 else self.prefixes)
        else:
            path = self.path()
        if flags is None:
            flags = rng.choice([0, 0, 0, 1, 1, 4]) | (2 if seq else 0)
            if flags == 6:          # container|sequential is no mode
                flags = 2
            if rng.random() < 0.03 and odd:
                flags = rng.choice([7, -1, 5, 6])
        return CreateRequest(path=path, data=self.data(path), acl=self.acl(path), flags=flags)

    def ttl_record(self):
        rng = self.rng
        r = self.create_record(flags=rng.choice([5, 5, 6, 6, 0, 1, 2]))
        ttl = rng.choice([60000, 60000, 1, 0, -5, 2 ** 40])
        if r.flags not in (5, 6) and ttl < 0:
            # Java logs a CreateTTLTxn it cannot apply and exits; zkref answers BadArguments
            # (test_create_ttl_without_ttl_mode_is_refused)
            ttl = 0
        return CreateTTLRequest(path=r.path, data=r.data, acl=r.acl, flags=r.flags, ttl=ttl)

    def sub_op(self, read: bool):
        rng, p = self.rng, self.path(0.95)
        if read:
            return rng.choice([(OpCode.getData, GetDataRequest(path=p, watch=False)),
                               (OpCode.getChildren, GetChildrenRequest(path=p, watch=False))])
        k = rng.choice(["create", "create", "create2", "ttl", "container", "delete", "delete", "set", "set",
                        "check", "check"])
        if k in ("create", "create2"):
            # no unknown or TTL flags under a create header in a multi: Debian's 3.8.0 makes a persistent create of an
            # unknown flag and fails a TTL one on a ClassCastException, 3.8.1+ (and zkref) refuse both as the record is
            # read (ZOOKEEPER-4026's Op.create with CreateOptions); a createTTL header with any flags is the same in both
            return (OpCode.create if k == "create" else OpCode.create2, self.create_record(odd=False))
        if k == "ttl":
            return OpCode.createTTL, self.ttl_record()
        if k == "container":     # (a createContainer header with another mode: 3.8.0 makes a create, 3.8.1+ keeps it)
            return OpCode.createContainer, self.create_record(flags=4)
        if k == "delete":
            return OpCode.delete, DeleteRequest(path=p, version=self.version(p))
        if k == "set":
            return OpCode.setData, SetDataRequest(path=p, data=self.data(p), version=self.version(p))
        return OpCode.check, CheckVersionRequest(path=p, version=self.version(p))

    KINDS = {"create": 14, "create2": 8, "createContainer": 3, "createTTL": 4, "delete": 12, "setData": 10,
             "exists": 7, "getData": 8, "getChildren": 6, "getChildren2": 4, "getACL": 3, "setACL": 4,
             "addauth": 2, "multi": 8, "multiRead": 3, "sync": 2, "getAllChildrenNumber": 2, "getEphemerals": 2,
             "addWatch": 4, "checkWatches": 2, "removeWatches": 3, "reconnect": 2, "whoAmI": 1,
             "closeSession": 1, "badAuth": 0.3, "reconfig": 0.3, "unknownOp": 0.3, "burst": 1.5, "huge": 0.1,
             "strangeConnect": 0.5, "raw": 0.7}

    def draw(self) -> Step:
        rng = self.rng
        slot = rng.randrange(SESSIONS)
        kind = rng.choices(list(self.KINDS), [w * (5 if k in FOCUS else 1) for k, w in self.KINDS.items()])[0]
        w = rng.random() < 0.5
        # a path a watch may be set on (exists checks READ only in 3.8.4+): never in /sN/lock
        p = self.path(lock=not (w and kind in ("getData", "getChildren", "getChildren2")) and kind not in (
            "exists", "addWatch", "reconnect"))
        if kind in ("create", "create2"):
            return Step(slot, kind, OpCode.create if kind == "create" else OpCode.create2, self.create_record())
        if kind == "createContainer":
            r = self.create_record(flags=rng.choice([4, 4, 4, 0]))
            return Step(slot, kind, OpCode.createContainer, r)
        if kind == "createTTL":
            return Step(slot, kind, OpCode.createTTL, self.ttl_record())
        if kind == "delete":
            return Step(slot, kind, OpCode.delete, DeleteRequest(path=p, version=self.version(p)))
        if kind == "setData":
            return Step(slot, kind, OpCode.setData, SetDataRequest(path=p, data=self.data(p), version=self.version(p)))
        if kind == "exists":
            return Step(slot, kind, OpCode.exists, ExistsRequest(path=p, watch=w))
        if kind == "getData":
            return Step(slot, kind, OpCode.getData, GetDataRequest(path=p, watch=w))
        if kind == "getChildren":
            return Step(slot, kind, OpCode.getChildren, GetChildrenRequest(path=p, watch=w))
        if kind == "getChildren2":
            return Step(slot, kind, OpCode.getChildren2, GetChildren2Request(path=p, watch=w))
        if kind == "getACL":
            return Step(slot, kind, OpCode.getACL, GetACLRequest(path=p))
        if kind == "setACL":
            return Step(slot, kind, OpCode.setACL, SetACLRequest(path=p, acl=self.acl(p),
                                                                 version=self.version(p, "aversion")))
        if kind == "addauth":
            who = rng.choice([b"u:pw", b"u:pw", b"v:pw"])
            return Step(slot, kind, OpCode.auth, AuthPacket(type=0, scheme="digest", auth=who), xid=-4)
        if kind == "badAuth":        # an unknown scheme: AuthFailed, and the connection is closed
            return Step(slot, kind, OpCode.auth, AuthPacket(type=0, scheme="nosuch", auth=b"x"), xid=-4)
        if kind == "reconfig":
            return Step(slot, kind, OpCode.reconfig, ReconfigRequest(joining_servers="server.9=127.0.0.1:1:2;3",
                                                                     leaving_servers="", new_members="",
                                                                     cur_config_id=-1))
        if kind == "unknownOp":
            return Step(slot, kind, 99, GetDataRequest(path=p, watch=False))
        if kind == "raw":
            # not addWatch with a null path: Java registers that watch, and its later removal fails on a
            # NullPointerException in WatcherModeManager (after removing it from the tables); zkref does not mirror that
            op, body = rng.choice(raw_requests(self.base) + [r for n, r in NULL_PATH_REQUESTS.items() if n != "addWatch"])
            return Step(slot, kind, op, RawBody(body))
        if kind == "strangeConnect":   # a second connection for the slot's session: a wrong password, a future zxid
            return Step(slot, kind, 0, rng.choice(["bad passwd", "future zxid", "no session, future zxid"]))
        if kind == "burst":       # many children at once: Java's HashSet orders (children, ephemerals) at larger sizes
            parent = rng.choice([self.base + "/d", self.base + "/e", self.base, self.base, self.base, self.base + "/d/a"])
            flags = rng.choice([2, 3])
            ops = [_create_op(parent + "/n-", flags) for _ in range(rng.randint(3, 16))]
            if rng.random() < 0.15:
                ops.append(self.sub_op(False))
            return Step(slot, kind, OpCode.multi, MultiOperationRecord(ops))
        if kind == "huge":        # around jute.maxbuffer (1 MB - 1): the largest data accepted, and a frame too long
            n = rng.choice([1024 * 1024 - 200, 1024 * 1024 + 10])
            return Step(slot, kind, OpCode.setData, SetDataRequest(path=p, data=bytes(n), version=-1))
        if kind == "multi":
            ops = [self.sub_op(False) for _ in range(rng.randint(1, 4))]
            if rng.random() < 0.05:
                ops.insert(rng.randrange(len(ops) + 1), self.sub_op(True))    # "Mixing different kind of ops"
            return Step(slot, kind, OpCode.multi, MultiOperationRecord(ops))
        if kind == "multiRead":
            ops = [self.sub_op(True) for _ in range(rng.randint(1, 3))]
            return Step(slot, kind, OpCode.multiRead, MultiOperationRecord(ops))
        if kind == "sync":
            return Step(slot, kind, OpCode.sync, SyncRequest(path=p))
        if kind == "getAllChildrenNumber":
            return Step(slot, kind, OpCode.getAllChildrenNumber, GetAllChildrenNumberRequest(path=p))
        if kind == "getEphemerals":
            prefix = rng.choice([self.base, self.base + "/d", "/", "", self.base + "/e", p])
            return Step(slot, kind, OpCode.getEphemerals, GetEphemeralsRequest(prefix_path=prefix))
        if kind == "addWatch":
            mode = rng.choice([0, 1, 1, 2])
            if mode == 1 and p in ("/", self.base):     # a recursive watch above /sN/lock
                mode = 0
            return Step(slot, kind, OpCode.addWatch, AddWatchRequest(path=p, mode=mode))
        if kind == "checkWatches":
            return Step(slot, kind, OpCode.checkWatches, CheckWatchesRequest(path=p, type=rng.choice([1, 2, 3])))
        if kind == "removeWatches":
            return Step(slot, kind, OpCode.removeWatches, RemoveWatchesRequest(path=p, type=rng.choice([1, 2, 3])))
        if kind == "reconnect":
            # the session moves to a new connection and re-registers watches (xid -8), as a client does
            lists = [[self.path(lock=False) for _ in range(rng.randint(0, 2))] for _ in range(5)]
            lists[4] = [q for q in lists[4] if q not in ("/", self.base)]   # no recursive watch above /sN/lock
            if rng.random() < 0.3:
                return Step(slot, "setWatches", OpCode.setWatches, SetWatches(0, *lists[:3]), xid=-8)
            return Step(slot, "setWatches2", OpCode.setWatches2, SetWatches2(0, *lists), xid=-8)
        if kind == "whoAmI":
            return Step(slot, kind, OpCode.whoAmI)
        return Step(slot, kind, OpCode.closeSession)

    def remember(self, path: str) -> None:
        (self.seen_lock if self.in_lock(path) else self.seen).append(path)

    def learn(self, step: Step, entry: tuple) -> None:
        "Update the model from Java's transcript entry: sequential names created, versions seen."
        if "reply" not in entry:
            return
        i = entry.index("reply")         # the step's own reply, after any reconnection
        err, rec = entry[i + 3], entry[i + 4]
        if step.kind == "closeSession" and err == 0:
            self.closed.add(step.slot)
        path = getattr(step.record, "path", None)
        if isinstance(rec, dict):
            if isinstance(rec.get("path"), str) and rec["path"] not in self.fixed and err == 0:
                self.remember(rec["path"])
                path = rec["path"]
            if isinstance(rec.get("stat"), dict) and path:
                self.versions[path] = Stat(**rec["stat"])
        if isinstance(rec, dict) and "results" in rec and step.op == OpCode.multi:
            for (op, r), res in zip(getattr(step.record, "ops", []), rec["results"]):
                if res.get("path") and res["path"] not in self.fixed:
                    self.remember(res["path"])
                if res.get("stat"):
                    self.versions[res.get("path") or r.path] = Stat(**res["stat"])


# ------------------------------------------------------------------------------------------- one server's side
class Client(RawClient):
    "test_standalone_server's RawClient, with the last zxid seen sent in the ConnectRequest."

    def __init__(self, port: int, timeout_ms: int = 30000, session_id: int = 0, passwd: bytes = bytes(16),
                 last_zxid: int = 0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10.0)
        self.events, self.xid = [], 0
        self.sock.sendall(frame(ConnectRequest(protocol_version=0, last_zxid_seen=last_zxid, time_out=timeout_ms,
                                               session_id=session_id, passwd=passwd).to_bytes() + b"\0"))
        self.connect_bytes = self.read_frame()
        self.connect = ConnectResponse.from_bytes(self.connect_bytes)
        self.session_id, self.passwd = self.connect.session_id, self.connect.passwd


class Side:
    "The sessions of one server, and how one step runs on them into a normalized transcript entry."

    def __init__(self, port: int):
        self.port = port
        self.names: dict[int, str] = {0: 0}
        self.clients: list[RawClient | None] = [None] * SESSIONS
        self.last_zxid = [0] * SESSIONS
        self.dead: set[int] = set()      # slots whose connection is known closed by the server
        self.ended: set[int] = set()     # slots whose session was closed by closeSession

    def port_of(self, slot: int) -> int:
        "The client port a slot's session connects to (one server here; an ensemble test spreads them)."
        return self.port

    def name(self, session_id: int) -> str:
        return self.names.setdefault(session_id, f"S{len(self.names) - 1}")

    def connect(self, slot: int, session_id: int = 0, passwd: bytes = bytes(16), last_zxid: int = 0) -> tuple:
        c = Client(self.port_of(slot), session_id=session_id, passwd=passwd, last_zxid=last_zxid)
        r = ConnectResponse.from_bytes(c.connect_bytes)
        out = ("connect", r.protocol_version, r.time_out, self.name(r.session_id) if r.session_id else 0,
               r.passwd != bytes(16), len(c.connect_bytes))
        if r.session_id:
            self.clients[slot] = c
            self.dead.discard(slot)
            self.ended.discard(slot)
        else:
            c.close()
        return out

    def normalize(self, obj):
        "A comparable form of a response: times dropped, session ids named."
        if isinstance(obj, Stat):
            d = dataclasses.asdict(obj)
            d["ctime"] = d["mtime"] = "t"
            owner = d["ephemeral_owner"]
            d["ephemeral_owner"] = self.names.get(owner, owner)
            return d
        if isinstance(obj, OpResult):
            d = {f.name: self.normalize(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
            return {k: v for k, v in d.items() if v is not None}
        if dataclasses.is_dataclass(obj):
            return {f.name: self.normalize(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        if isinstance(obj, list):
            return [self.normalize(x) for x in obj]
        if isinstance(obj, bytes) and len(obj) > 16:
            return f"<{len(obj)} bytes {hash(obj) & 0xffff:04x}>"
        return obj

    def decode(self, step: Step, err: int, body: bytes):
        if not body:
            return None
        cls = RESPONSES.get(step.op)
        if cls is None:
            return ("body", body.hex())
        try:
            rec = self.normalize(cls.from_bytes(body))
        except Exception as e:        # noqa: BLE001 - an undecodable body is itself a transcript entry
            return ("undecodable", type(e).__name__, body.hex())
        if step.op == OpCode.multi:
            for (op, _), res in zip(getattr(step.record, "ops", []), rec["results"]):
                # Debian's Java 3.8.0 answers a create2 inside a multi with a create result; 3.8.2+ (ZOOKEEPER-4026)
                # and zkref with create2 (site/divergences.md, "create2 inside a multi")
                if op == OpCode.create2 and res["type"] in (OpCode.create, OpCode.create2):
                    res["type"] = "create|create2"
                    res.pop("stat", None)
        return rec

    def call(self, slot: int, step: Step) -> tuple:
        c = self.clients[slot]
        try:
            sent = c.send(step.op, step.record, step.xid)
            h, body = c.reply()
        except (OSError, EOFError) as e:
            self.dead.add(slot)
            return ("closed", type(e).__name__ if isinstance(e, socket.timeout) else "eof")
        self.last_zxid[slot] = max(self.last_zxid[slot], h.zxid)
        return ("reply", h.xid - sent if step.xid is None else h.xid, h.zxid, h.err, self.decode(step, h.err, body))

    def run(self, step: Step, closed_before: bool) -> tuple:
        "Send one step; its transcript entry (events are collected separately by `flush`)."
        slot = step.slot
        if self.clients[slot] is None:
            return ("new",) + self.connect(slot)
        if slot in self.dead and slot not in self.ended:
            # the server dropped the connection but the session lives on: resume it (left alone, it would expire
            # while a later seed runs, its closeSession taking a zxid at a moment the two servers do not share)
            old = self.clients[slot]
            old.close()
            conn = self.connect(slot, old.session_id, old.passwd, self.last_zxid[slot])
            prefix = ("resumed",) + (conn if conn[3] else conn + self.connect(slot))
            return prefix + self.run(step, closed_before)
        if closed_before:
            # a request on the connection of a closed session, then an attempt to resume the session, then a new one
            old = self.clients[slot]
            probe = step if step.op else Step(slot, "exists", OpCode.exists, ExistsRequest(path="/", watch=False))
            out = ("after close",) + self.call(slot, probe)
            old.close()
            out += self.connect(slot, old.session_id, old.passwd)
            return out + self.connect(slot)
        if step.kind == "strangeConnect":
            c = self.clients[slot]
            sid, passwd, last = c.session_id, c.passwd, self.last_zxid[slot]
            if step.record == "bad passwd":
                passwd = bytes(16)
            elif step.record == "future zxid":
                last = 1 << 60
            else:
                sid, last = 0, 1 << 60
            try:
                other = Client(self.port_of(slot), session_id=sid, passwd=passwd, last_zxid=last)
            except (OSError, EOFError):
                return ("refused",)     # Java closes the connection without an answer
            r = other.connect
            out = ("connect", r.time_out, self.name(r.session_id) if r.session_id else 0, r.passwd != bytes(16))
            if r.session_id and r.session_id != sid:     # a new session: close it, or it would expire later
                h, _ = other.call(OpCode.closeSession)
                out += (h.zxid, h.err)
            other.close()
            return out
        if step.kind in ("setWatches", "setWatches2"):
            old = self.clients[slot]
            old.close()
            conn = self.connect(slot, old.session_id, old.passwd, self.last_zxid[slot])
            if conn[3] == 0:
                return ("moved",) + conn
            rec = dataclasses.replace(step.record, relative_zxid=self.last_zxid[slot])
            return ("moved",) + conn + self.call(slot, dataclasses.replace(step, record=rec))
        entry = self.call(slot, step)
        if step.kind == "unknownOp":
            # Java answers Unimplemented and then closes the connection (UnimplementedRequestProcessor's
            # sendCloseSession), but a request read before that close may still be answered: the test closes it
            self.clients[slot].close()
            self.dead.add(slot)
        if step.op == OpCode.closeSession and entry[0] == "reply" and entry[3] == 0:
            self.dead.add(slot)
            self.ended.add(slot)
        return entry

    def flush(self) -> dict:
        "Every live session's watch events since the last flush: a ping's reply comes after them."
        out = {}
        for slot, c in enumerate(self.clients):
            if c is None or slot in self.dead:
                continue
            try:
                h, _ = c.call(OpCode.ping, None, xid=-2)
            except (OSError, EOFError):
                self.dead.add(slot)
                out[slot] = "lost"
                continue
            if c.events:
                out[slot] = [(e.type, e.state, e.path) for e in c.events]
                c.events.clear()
        return out

    def close(self) -> list:
        "closeSession every live session (so its ephemerals go); the replies."
        out = []
        for slot, c in enumerate(self.clients):
            if c is None or slot in self.ended:
                continue
            if slot in self.dead:          # a session whose connection the server dropped: resume it to close it
                c.close()
                out.append(self.connect(slot, c.session_id, c.passwd, self.last_zxid[slot]))
                c = self.clients[slot]
            if slot not in self.dead:
                out.append(self.call(slot, Step(slot, "closeSession", OpCode.closeSession)))
            c.close()
        return out


def run_seed(seed: int, java: Side, ours: Side, kinds: Counter) -> None:
    "Run one seed's steps in lockstep; fail at the first differing step."
    gen = Generator(seed)
    history = []

    def compare(label, e, g, step=None):
        history.append((label, e))
        if os.environ.get("ZKREF_DIFF_TRACE"):      # print every step of a replayed seed
            print(label, repr(step)[:300], "\n    ", e)
        if e != g:
            context = "\n".join(f"  {h}" for h in history[-8:-1])
            pytest.fail(f"seed {seed}, step {label}: {repr(step)[:800]}\nprevious steps (java):\n{context}\n"
                        f" java: {e}\nzkref: {g}")

    for slot in range(SESSIONS):
        compare(f"connect {slot}", java.connect(slot), ours.connect(slot))
    for path in (gen.base, gen.quota[0], gen.quota[1]):       # the seed's top node, and where setquota would write
        setup = Step(0, "create", OpCode.create, CreateRequest(path=path, data=b"", acl=ACLS["open"], flags=0))
        compare(f"setup {path}", java.run(setup, False), ours.run(setup, False), setup)
    for i in range(STEPS):
        step = gen.draw()
        closed_before = step.slot in gen.closed
        gen.closed.discard(step.slot)
        kinds["after-close" if closed_before else step.kind] += 1
        e = (java.run(step, closed_before), java.flush())
        g = (ours.run(step, closed_before), ours.flush())
        compare(i, e, g, step)
        gen.learn(step, e[0])
    compare("close", java.close(), ours.close())


@pytest.mark.timeout(300)
def test_random_workloads_same_as_java(java_zk, zkref_zk):
    """Seeded random sequences of every client request (create in every mode, createContainer, createTTL, delete
    and setData with right and wrong versions, reads with and without watches, ACLs and digest auth, multi and
    multiRead, sync, getAllChildrenNumber, getEphemerals, addWatch, checkWatches, removeWatches, setWatches and
    setWatches2 after a reconnect, whoAmI, closeSession and requests after it), with invalid paths and data of
    0 bytes to 3 KB, get the same reply from zkref as from Java ZooKeeper 3.8 at every step: the same xid, zxid,
    error code and response record (times and session ids aside), and every session sees the same watch events
    in the same order. Reference: Java FinalRequestProcessor, PrepRequestProcessor, DataTree (the Java server
    itself is the oracle)."""
    java = java_zk(dict(CONFIG), jvm_flags=JVM_FLAGS)
    zkref = zkref_zk(dict(CONFIG), jvm_flags=JVM_FLAGS)
    kinds: Counter = Counter()
    try:
        for seed in SEEDS:
            java_side, our_side = Side(java.client_port), Side(zkref.client_port)
            try:
                run_seed(seed, java_side, our_side, kinds)
            finally:
                for side in (java_side, our_side):
                    for c in side.clients:
                        if c is not None:
                            c.close()
    finally:
        print(f"\nsteps per operation kind over seeds {SEEDS}:")
        for kind, n in sorted(kinds.items(), key=lambda kv: -kv[1]):
            print(f"  {kind:22} {n}")


# ------------------------------------------------------------------------------------ the differences found so far
def _c(path, flags=0, acl="open", op=OpCode.create):
    return (op, CreateRequest(path=path, data=b"", acl=ACLS[acl], flags=flags))


def _ttl(path, flags, ttl=0):
    return (OpCode.createTTL, CreateTTLRequest(path=path, data=b"", acl=ACLS["open"], flags=flags, ttl=ttl))


def _step(slot, op, record=None, xid=None):
    return Step(slot, OpCode(op).name, op, record, xid)


# Each script is the smallest form of a difference a seed found (the seed in its name), fixed in the chapter named.
REGRESSIONS = {
    # 11_requests1: a request carries the connection's auth ids in the order of Java's ConcurrentHashMap-backed set
    "seed 2: auth ids in Java's order": [
        _step(0, OpCode.auth, AuthPacket(type=0, scheme="digest", auth=b"u:pw"), xid=-4),
        _step(0, OpCode.whoAmI),
        _step(0, OpCode.auth, AuthPacket(type=0, scheme="digest", auth=b"v:pw"), xid=-4),
        _step(0, OpCode.whoAmI),
        _step(0, *_c("/r2/x", acl="auth")),
        _step(0, OpCode.getACL, GetACLRequest(path="/r2/x"))],
    # 07a2: Java's PathParentIterator fails on a path without "/" (MarshallingError)
    "seed 3: checkWatches on a path without /": [
        _step(0, OpCode.exists, ExistsRequest(path="d", watch=True)),
        _step(0, OpCode.checkWatches, CheckWatchesRequest(path="d", type=3)),
        _step(0, OpCode.addWatch, AddWatchRequest(path="/r3", mode=1)),
        _step(0, OpCode.checkWatches, CheckWatchesRequest(path="d", type=1)),
        _step(0, OpCode.checkWatches, CheckWatchesRequest(path="", type=2)),
        _step(0, OpCode.removeWatches, RemoveWatchesRequest(path="d", type=2))],
    # 06b_protocol2: the mode, not the MultiHeader, decides a create's opcode inside a multi (Op.create)
    "seed 3: creates in a multi take Java's Op.create opcode": [
        _step(0, OpCode.multi, MultiOperationRecord([_ttl("/r3m/missing/x", 1)])),
        _step(0, OpCode.multi, MultiOperationRecord([_ttl("/r3m/c", 4), _c("/r3m/c/k")])),
        _step(0, OpCode.multi, MultiOperationRecord([_c("/r3m/k", 4)])),
        _step(0, OpCode.exists, ExistsRequest(path="/r3m/k", watch=False)),
        _step(0, OpCode.multi, MultiOperationRecord([_ttl("/r3m/t", 5, 60000)]))],
    # 11d: a failed multi forgets the change record of its sequential create's full name (rollbackPendingChanges)
    "seed 5: a failed multi's sequential create is rolled back": [
        _step(0, OpCode.multi, MultiOperationRecord([_c("/r5/s-", 2), (OpCode.setData, SetDataRequest(
            path="/r5/missing", data=b"", version=-1))])),
        _step(0, *_c("/r5/s-", 2)),
        _step(0, OpCode.getChildren, GetChildrenRequest(path="/r5", watch=False))],
}


@pytest.mark.parametrize("name", list(REGRESSIONS))
def test_differences_found_same_as_java(java_zk, zkref_zk, name):
    """Each difference a seed of `test_random_workloads_same_as_java` found, as a short script: zkref now answers
    as Java 3.8 does (auth ids in whoAmI and `auth` ACLs in Java's set order; checkWatches on a path without "/"
    is MarshallingError; a create in a multi takes the opcode its mode gives; a failed multi rolls back its
    sequential create). Reference: Java ServerCnxn.getAuthInfo, PathParentIterator.next, Op.create,
    PrepRequestProcessor.rollbackPendingChanges."""
    java_side = Side(java_zk(dict(CONFIG), jvm_flags=JVM_FLAGS).client_port)
    our_side = Side(zkref_zk(dict(CONFIG), jvm_flags=JVM_FLAGS).client_port)
    steps = [_step(0, *_c(top)) for top in ("/r2", "/r3", "/r3m", "/r5")] + REGRESSIONS[name]
    try:
        assert our_side.connect(0) == java_side.connect(0)
        for i, step in enumerate(steps):
            e, g = (java_side.run(step, False), java_side.flush()), (our_side.run(step, False), our_side.flush())
            assert g == e, f"{name}, step {i} {step}:\n java: {e}\nzkref: {g}"
    finally:
        for side in (java_side, our_side):
            for c in side.clients:
                if c is not None:
                    c.close()


def test_create_ttl_without_ttl_mode_is_refused(zkref_zk):
    """A createTTL whose mode is not a TTL one is BadArguments, whatever its ttl (Java refuses it for a ttl >= 0;
    for a negative ttl Java 3.8 logs a CreateTTLTxn that DataTree.processTxn cannot apply, and the server exits —
    zkref answers and goes on serving, also inside a multi, where Java makes it a plain create). Found by seed 12.
    Reference: Java PrepRequestProcessor.validateCreateRequest, EphemeralType.validateTTL."""
    side = Side(zkref_zk(dict(CONFIG), jvm_flags=JVM_FLAGS).client_port)
    side.connect(0)
    try:
        for flags in (0, 1, 2, 3, 4):
            for ttl in (-5, -1, 0, 60000):
                entry = side.run(_step(0, *_ttl(f"/t{flags}", flags, ttl)), False)
                assert entry[:1] + entry[3:] == ("reply", -8, None), (flags, ttl, entry)
        entry = side.run(_step(0, OpCode.multi, MultiOperationRecord([_ttl("/t", 0, -5)])), False)
        assert entry[3:] == (0, {"results": [{"type": OpCode.create, "path": "/t", "err": 0}]}), entry
        assert side.run(_step(0, OpCode.exists, ExistsRequest(path="/t", watch=False)), False)[3] == 0
    finally:
        side.clients[0].close()


def _multi_body(*ops: tuple[int, bytes]) -> bytes:
    "A multi's body from (opcode, raw record) pairs."
    return b"".join(struct.pack(">ibi", op, 0, -1) + rec for op, rec in ops) + struct.pack(">ibi", -1, 1, -1)


NULL_PATH_REQUESTS = {      # name: (opcode, body) with a null path (jute string length -1)
    "create": (OpCode.create, _jstr(None) + _jstr(b"") + _OPEN + struct.pack(">i", 0)),
    "createContainer": (OpCode.createContainer, _jstr(None) + _jstr(b"") + _OPEN + struct.pack(">i", 4)),
    "createTTL": (OpCode.createTTL, _jstr(None) + _jstr(b"") + _OPEN + struct.pack(">iq", 5, 100)),
    "delete": (OpCode.delete, _jstr(None) + struct.pack(">i", -1)),
    "setData": (OpCode.setData, _jstr(None) + _jstr(b"x") + struct.pack(">i", -1)),
    "setACL": (OpCode.setACL, _jstr(None) + _OPEN + struct.pack(">i", -1)),
    "getData": (OpCode.getData, _jstr(None) + b"\0"),
    "exists": (OpCode.exists, _jstr(None) + b"\0"),
    "getACL": (OpCode.getACL, _jstr(None)),
    "getChildren": (OpCode.getChildren, _jstr(None) + b"\0"),
    "getChildren2": (OpCode.getChildren2, _jstr(None) + b"\0"),
    "getAllChildrenNumber": (OpCode.getAllChildrenNumber, _jstr(None)),
    "checkWatches": (OpCode.checkWatches, _jstr(None) + struct.pack(">i", 1)),
    "removeWatches": (OpCode.removeWatches, _jstr(None) + struct.pack(">i", 1)),
    "sync": (OpCode.sync, _jstr(None)),
    "addWatch": (OpCode.addWatch, _jstr(None) + struct.pack(">i", 1)),
    "multi": (OpCode.multi, _multi_body((OpCode.check, _jstr(None) + struct.pack(">i", -1)))),
    "multiRead": (OpCode.multiRead, _multi_body((OpCode.getData, _jstr(b"/") + b"\0"),
                                                (OpCode.getData, _jstr(None) + b"\0"))),
    "multiRead of writes": (OpCode.multiRead, _multi_body((OpCode.check, _jstr(b"/") + struct.pack(">i", -1)))),
    "setWatches": (OpCode.setWatches, struct.pack(">qi", 0, 2) + _jstr(b"/") + _jstr(None) + struct.pack(">ii", 0, 0)),
    "setWatches null list": (OpCode.setWatches, struct.pack(">qii", 0, 0, -1) + struct.pack(">i", 0)),
}
def test_null_paths_same_as_java(java_zk, zkref_zk):
    """A request whose path is a null jute string (length -1), which no client library sends, gets Java's answer:
    MarshallingError where Java fails on a NullPointerException (creates in validatePathForCreate, delete, the reads
    in DataTree.getNode, checkWatches in WatcherModeManager, setWatches in DataTree.setWatches after the watches
    before it, a multi in getPendingChanges after taking a zxid it never logs), BadArguments where validatePath
    refuses it (setData, setACL), success for sync, addWatch and removeWatches' NoWatcher; a multiRead's
    MarshallingError carries the results before the failing op (also for a write op in a multiRead); the zxid after
    each is the same, and both servers restart on the log with its gap. Reference: Java PrepRequestProcessor.pRequest
    and getPendingChanges, FinalRequestProcessor.processRequest (catch Exception: MARSHALLINGERROR)."""
    servers = [java_zk(dict(CONFIG), jvm_flags=JVM_FLAGS), zkref_zk(dict(CONFIG), jvm_flags=JVM_FLAGS)]
    sides = [Side(server.client_port) for server in servers]
    try:
        for side in sides:
            side.connect(0)
        for name, (op, body) in NULL_PATH_REQUESTS.items():
            after = (OpCode.create, _jstr(b"/after-" + name.encode()) + _jstr(b"") + _OPEN + struct.pack(">i", 0))
            for op, body in ((op, body), after):
                step = Step(0, "raw", op, RawBody(body))
                e, g = [(side.run(step, False), side.flush()) for side in sides]
                assert g == e, f"{name}: {OpCode(op).name} {body!r}:\n java: {e}\nzkref: {g}"
    finally:
        for side in sides:
            side.clients[0].close()
    for server in servers:                 # the log has a zxid with no txn (the multi's): both load it
        server.stop()
        server.start()
    sides = [Side(server.client_port) for server in servers]
    try:
        for side in sides:
            side.connect(0)
        for step in (Step(0, "exists", OpCode.exists, ExistsRequest(path="/after-multi", watch=False)),
                     Step(0, "create", *_create_op("/after-restart", 0))):
            e, g = [side.run(step, False) for side in sides]
            assert g == e, f"after a restart: {step}:\n java: {e}\nzkref: {g}"
    finally:
        for side in sides:
            side.clients[0].close()
