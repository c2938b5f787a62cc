"""When a server stops reading a client's connection: `zookeeper.globalOutstandingLimit`.

Java counts a connection's outstanding requests as it reads them and as it answers them, only those with a
positive xid (ServerCnxn.incrOutstandingAndCheckThrottle / decrOutstandingAndCheckThrottle), and at each
count asks ZooKeeperServer.shouldThrottle: is the server holding more than the limit in process, before this
request is? The count is the `queued=` of `cons`; the server's in-process requests are `outstanding_requests`
in `mntr`; a connection that is not being read shows interest `[0]` in `cons`. The leader's and a follower's
limit is a share of globalOutstandingLimit (Leader/FollowerZooKeeperServer.getGlobalOutstandingLimit: divided by
the voters less one when there are more than two); an observer's is all of it.

To watch it deterministically, the server must hold requests: a learner holds every write it forwarded (and,
behind it, every later request of the session, pings too) until the leader commits it, so the leader is
SIGSTOPped while a raw client on a learner sends one request at a time (the leader holds its own clients' writes
while both followers are SIGSTOPped). After each, the test waits until
the server has read it and counted it in process, then notes `queued=` and the interest. Once the connection
is held nothing more is sent; the leader is continued, every reply must come, in order, and the connection must
read again. The same scenarios run on a Java 3.8 ensemble and a zkref one.
"""
from __future__ import annotations

import re
import signal

import pytest

from conftest import WithObserver, four_letter_word, java_available, wait_for
from test_standalone_server import RawClient
from zkref.jute import CreateRequest
from zkref.proto import OPEN_ACL_UNSAFE, OpCode, encode_request

pytestmark = pytest.mark.timeout(600)

KINDS = ["zkref", pytest.param("java", marks=pytest.mark.skipif(not java_available(), reason="needs Java 3.8"))]
LIMIT = 1          # globalOutstandingLimit in every server's zoo.cfg
PING_XID = -2


def cons_line(port: int, session_id: int) -> tuple[int, int, int] | None:
    "(interest, queued, recved) of the connection of `session_id` in `cons`, or None."
    for line in four_letter_word(port, "cons").splitlines():
        if f"sid=0x{session_id:x}," in line:
            m = re.search(r"\[(\d+)\]\(queued=(\d+),recved=(\d+)", line)
            return int(m[1]), int(m[2]), int(m[3])
    return None


def in_process(port: int) -> int:
    "The server's requests in process: `mntr`'s zk_outstanding_requests."
    for line in four_letter_word(port, "mntr").splitlines():
        if line.startswith("zk_outstanding_requests\t"):
            return int(line.split("\t")[1])
    return -1


def feed_until_held(e: WithObserver, target: int, stopped: list[int], plan: str, tag: str) -> dict:
    """On server `target`, with servers `stopped` SIGSTOPped, send `plan` ('c' a create, 'p' a ping) one request
    at a time until the connection is held; then continue them and read every reply."""
    port = e.client(target)
    c = RawClient(port, timeout_ms=60000, timeout_s=60)
    for i in stopped:
        e.procs[i].proc.send_signal(signal.SIGSTOP)
    steps, sent_xids = [], []
    try:
        for k, op in enumerate(plan, 1):
            if op == "c":
                xid = c.send(OpCode.create, CreateRequest(path=f"/{tag}{k}", data=b"", acl=OPEN_ACL_UNSAFE, flags=0))
            else:
                c.sock.sendall(encode_request(PING_XID, OpCode.ping, None))
                xid = PING_XID
            sent_xids.append(xid)
            wait_for(lambda: (cons_line(port, c.session_id) or (0, 0, 0))[2] == 1 + k and in_process(port) == k,
                     20, 0.05, what=f"request {k} ({op}) read and in process on server {target}")
            interest, queued, _ = cons_line(port, c.session_id)
            steps.append((op, queued, interest & 1))
            if not interest & 1:
                break
    finally:
        for i in stopped:
            e.procs[i].proc.send_signal(signal.SIGCONT)
    replies = []
    for _ in sent_xids:
        h, _ = c.reply()
        replies.append((h.xid, h.err))
    wait_for(lambda: cons_line(port, c.session_id)[:2] == (1, 0), 20, 0.05, what="the connection to read again")
    # and it keeps reading: a pipelined burst is answered in full, in order
    burst = b""
    for _ in range(20):
        c.xid += 1
        burst += encode_request(c.xid, OpCode.create, CreateRequest(path=f"/{tag}b{c.xid}", data=b"", acl=OPEN_ACL_UNSAFE, flags=0))
    c.sock.sendall(burst)
    burst_xids = []
    try:
        for _ in range(20):
            burst_xids.append(c.reply()[0].xid)
    except OSError as err:           # say what the server showed when its replies stopped (a socket timeout)
        raise AssertionError(f"{tag}: {len(burst_xids)} of the burst's 20 replies came ({err!r}); server {target}'s "
                             f"cons:\n{four_letter_word(port, 'cons')}in process: {in_process(port)}; "
                             f"modes: {e.modes()}") from err
    c.close()
    return {"steps": steps, "replies": replies, "sent": sent_xids, "burst_in_order": burst_xids == list(range(c.xid - 19, c.xid + 1))}


def run(kind: str, root) -> dict:
    "Every scenario on one ensemble of `kind` (three voters and an observer, globalOutstandingLimit=1)."
    e = WithObserver(root / kind, (kind,) * 4, tick_ms=500, syncLimit=40, maxSessionTimeout=60000,
                     globalOutstandingLimit=LIMIT)
    e.start()
    want = ["follower", "follower", "leader", "observer"]
    out = {}
    try:
        wait_for(lambda: e.modes() == want, 90, 0.2, what=f"a leader, 2 followers and the observer ({e.modes()})")
        leader = next(i for i in e.ids if e.mode(i) == "leader")
        out["observer_creates"] = feed_until_held(e, 4, [leader], "cccccc", "oc")
        wait_for(lambda: e.modes() == want, 60, 0.2, what="the ensemble as it was")
        out["observer_pings"] = feed_until_held(e, 4, [leader], "cpppcc", "op")
        followers = [i for i in (1, 2, 3) if i != leader]
        wait_for(lambda: e.modes() == want, 60, 0.2, what="the ensemble as it was")
        out["follower_creates"] = feed_until_held(e, followers[0], [leader], "cccc", "fc")
        wait_for(lambda: e.modes() == want, 60, 0.2, what="the ensemble as it was")
        out["leader_creates"] = feed_until_held(e, leader, followers, "cccc", "lc")
    finally:
        e.stop_all()
    return out


@pytest.fixture(scope="module", params=KINDS)
def results(request, tmp_path_factory):
    return run(request.param, tmp_path_factory.mktemp("outstanding"))


def test_connection_held_once_more_than_the_limit_is_in_process(results):
    """With globalOutstandingLimit=1 on an observer (which keeps the whole limit), a client's third pipelined
    request is read and its connection then held: the first found nothing in process, the second one request
    (not more than the limit), the third two. `cons` shows queued=1, 2, 3 and interest 1, 1, 0. When the
    leader commits, all three are answered, the connection reads again and a burst of 20 is answered in order.
    Reference: Java ServerCnxn.incrOutstandingAndCheckThrottle (counted first, then checked),
    ZooKeeperServer.processPacket ("we're actually checking the global outstanding request before this
    request"), ZooKeeperServer.shouldThrottle (globalOutstandingLimit < getInProcess()),
    ObserverZooKeeperServer (no getGlobalOutstandingLimit override)."""
    r = results["observer_creates"]
    assert r["steps"] == [("c", 1, 1), ("c", 2, 1), ("c", 3, 0)]
    assert r["replies"] == [(1, 0), (2, 0), (3, 0)]
    assert r["burst_in_order"]


def test_pings_are_not_outstanding_on_their_connection(results):
    """Pings are counted in process (mntr outstanding_requests) but not on their connection: a create then
    three pings leave `queued=1` and the connection reading, though four requests are in process; the next
    create (queued=2) finds four in process, more than the limit of 1, and the connection is held. Every reply
    comes back in order once the leader commits, pings included.
    Reference: Java ServerCnxn.incrOutstandingAndCheckThrottle / decrOutstandingAndCheckThrottle
    (h.getXid() <= 0: return), ServerCnxn.dumpConnectionInfo (queued=getOutstandingRequests()),
    ZooKeeperServer.getInProcess."""
    r = results["observer_pings"]
    assert r["steps"] == [("c", 1, 1), ("p", 1, 1), ("p", 1, 1), ("p", 1, 1), ("c", 2, 0)]
    assert r["replies"] == [(1, 0), (PING_XID, 0), (PING_XID, 0), (PING_XID, 0), (2, 0)]
    assert r["burst_in_order"]


@pytest.mark.parametrize("role", ["follower", "leader"])
def test_three_voters_share_the_limit_out(results, role):
    """With three voters, the leader's and a follower's limit is globalOutstandingLimit / (3 - 1): a limit of 1
    becomes 0, so the second pipelined request finds one in process, more than 0, and the connection is held
    after two (queued=1, 2; interest 1, 0), where an observer of the same ensemble reads three. The connection is
    not held for good: once the requests are committed it reads again at its last reply, and a burst of 20 is
    answered in full, in order, at most two at a time.
    Reference: Java LeaderZooKeeperServer.getGlobalOutstandingLimit, FollowerZooKeeperServer.getGlobalOutstandingLimit
    (self.getQuorumSize() > 2 ? self.getQuorumSize() - 1 : 1), ServerCnxn.decrOutstandingAndCheckThrottle."""
    r = results[f"{role}_creates"]
    assert r["steps"] == [("c", 1, 1), ("c", 2, 0)]
    assert r["replies"] == [(1, 0), (2, 0)]
    assert r["burst_in_order"]
