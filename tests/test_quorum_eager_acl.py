"""The eager ACL check (`-Dzookeeper.enableEagerACLCheck=true`) on a leader, a follower and an observer.

Java's `LeaderRequestProcessor`, `FollowerRequestProcessor` and `ObserverRequestProcessor` each call
`ZooKeeperServer.authWriteRequest` first: with the property on, a `create`, `delete`, `setData` or `setACL` the
server's own tree refuses is answered at once (`NOAUTH` / `INVALIDACL`, zxid 0) and never reaches the leader's
Prep. With it off, Prep refuses it after making an error txn, which is proposed and takes a zxid. The same
scenario runs on a Java 3.8 ensemble and a zkref one, with the check on and off.
"""
from __future__ import annotations

import pytest
from kazoo.client import KazooClient

from conftest import WithObserver, java_available, wait_for
from test_differential_ensemble import Waker
from test_standalone_server import RawClient
from zkref.jute import ACL, CreateRequest, Id, SetACLRequest, SetDataRequest
from zkref.proto import OPEN_ACL_UNSAFE, Code, OpCode, Perms

pytestmark = pytest.mark.timeout(300)

KINDS = ["zkref", pytest.param("java", marks=pytest.mark.skipif(not java_available(), reason="needs Java 3.8"))]
READ_ONLY = [ACL(perms=Perms.READ, id=Id(scheme="world", id="anyone"))]


def _refused_writes(port: int) -> list[tuple[str, int, bool]]:
    """Three writes /ro refuses and a bad ACL, through the server on `port` in a session of their own: (what,
    error, was the reply's zxid 0)."""
    raw = RawClient(port)
    try:
        out = []
        for what, op, record in (
                ("setData", OpCode.setData, SetDataRequest(path="/ro", data=b"x", version=-1)),
                ("create under", OpCode.create, CreateRequest(path="/ro/c", data=b"", acl=OPEN_ACL_UNSAFE, flags=0)),
                ("setACL", OpCode.setACL, SetACLRequest(path="/ro", acl=OPEN_ACL_UNSAFE, version=-1)),
                ("empty ACL", OpCode.create, CreateRequest(path="/bad", data=b"", acl=[], flags=0))):
            h, _ = raw.call(op, record)
            out.append((what, Code(h.err).name, h.zxid == 0))
        raw.call(OpCode.closeSession)   # now, not at a timeout: its txn, as its createSession's, is counted
        return out
    finally:
        raw.close()


@pytest.mark.parametrize("eager", [True, False], ids=["eager", "not-eager"])
@pytest.mark.parametrize("kind", KINDS)
def test_eager_acl_check_answers_refused_writes_without_a_txn(tmp_path, kind, eager):
    """With the eager check on, writes the server's tree refuses (NOAUTH on /ro, world:anyone READ only; and
    INVALIDACL for an empty ACL) are answered with zxid 0 by the leader's, a follower's and an observer's first
    processor, and take no zxid: a create after them gets the next zxid. With it off, the same errors come from
    the leader's Prep, each after an error txn (4 zxids per server).
    Reference: Java ZooKeeperServer.authWriteRequest, LeaderRequestProcessor.processRequest,
    FollowerRequestProcessor.run, ObserverRequestProcessor.run; ZooKeeper Admin Guide,
    "zookeeper.enableEagerACLCheck\""""
    flags = ["-Dzookeeper.enableEagerACLCheck=true"] if eager else []
    e = WithObserver(tmp_path / kind, (kind,) * 4, jvm_flags=flags)
    e.start()
    try:
        want = ["follower", "follower", "leader", "observer"]
        wait_for(lambda: e.modes() == want, 90, 0.2, what=f"a leader, 2 followers and the observer ({e.modes()})")
        leader = next(i for i in e.ids if e.mode(i) == "leader")
        follower = next(i for i in e.ids if e.mode(i) == "follower")
        # Debian's Java 3.8.0 can leave a CommitProcessor asleep with a request queued (ZOOKEEPER-4537, see
        # test_differential_ensemble.py) until another request reaches that server: the raw sessions below send one
        # request at a time and no pings, so sessions of the Waker's own ping every server (before the zxids
        # are counted: their createSessions come first, and pings take no zxid)
        waker = Waker([e.client(i) for i in e.ids], 0.2) if kind == "java" else None
        zk = KazooClient(hosts=f"127.0.0.1:{e.client(leader)}", timeout=30)
        zk.start(30)
        try:
            zk.create("/ro", b"", acl=READ_ONLY)
            seen = {}
            for role, i in (("leader", leader), ("follower", follower), ("observer", 4)):
                before = zk.create(f"/before-{role}", b"")
                z0 = zk.exists(before).czxid
                seen[role] = _refused_writes(e.client(i))
                after = zk.create(f"/after-{role}", b"")
                seen[role + " zxids used"] = zk.exists(after).czxid - z0 - 1 - 2   # less create/closeSession
        finally:
            zk.stop()
            zk.close()
            if waker is not None:
                waker.close()
        errors = [("setData", "NOAUTH", eager), ("create under", "NOAUTH", eager), ("setACL", "NOAUTH", eager),
                  ("empty ACL", "INVALIDACL", eager)]
        for role in ("leader", "follower", "observer"):
            assert seen[role] == errors, (role, seen)
            assert seen[role + " zxids used"] == (0 if eager else 4), (role, seen)
    finally:
        e.stop_all()
