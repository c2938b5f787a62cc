"""The ServerMetrics a standalone server moves outside the quorum code: the same kazoo workload on zkref and on
Java 3.8, then `mntr` from both."""
import socket
import struct
import threading

from kazoo.client import KazooClient

from conftest import four_letter_word, wait_for

CFG = {"4lw.commands.whitelist": "*"}
WATCH_COUNTS = ("node_created_watch_count", "node_deleted_watch_count", "node_changed_watch_count",
                "node_children_watch_count")


def mntr(port: int) -> dict[str, str]:
    "`mntr` as {name without zk_: value}."
    out = {}
    for line in four_letter_word(port, "mntr").splitlines():
        key, _, value = line.partition("\t")
        out[key.removeprefix("zk_")] = value.strip()
    return out


def number(m: dict[str, str], key: str) -> float:
    return float(m.get(key, "0"))


def kazoo(hosts: str) -> KazooClient:
    k = KazooClient(hosts=hosts, timeout=10)
    k.start(timeout=15)
    return k


def workload(hosts: str) -> None:
    "Creates, a setData two sessions watch, deletes, a getChildren watch, and a session that connects and closes."
    k1, k2 = kazoo(hosts), kazoo(hosts)
    fired: list = []
    lock = threading.Lock()

    def watcher(event):
        with lock:
            fired.append(event.type)
    try:
        k1.create("/m", b"")
        k1.exists("/m/a", watch=watcher)                 # NodeCreated: one watcher
        k1.create("/m/a", b"x")
        k1.get("/m/a", watch=watcher)                    # NodeDataChanged: two watchers, one event
        k2.get("/m/a", watch=watcher)
        k1.set("/m/a", b"y")
        k2.get_children("/m", watch=watcher)             # NodeChildrenChanged: one watcher
        k1.create("/m/b", b"")
        k2.exists("/m/b", watch=watcher)                 # NodeDeleted: one watcher
        k1.delete("/m/b")
        wait_for(lambda: len(fired) == 5, 10, what="the five watch events")
        k1.delete("/m/a")
        k1.delete("/m")
        k3 = kazoo(hosts)                                # a session that connects and closes
        k3.stop()
        k3.close()
    finally:
        for k in (k1, k2):
            k.stop()
            k.close()


def run_and_read(server) -> dict[str, str]:
    workload(server.hosts)
    # the watch counts are added after the watchers were notified: wait for the last one to land
    wait_for(lambda: number(mntr(server.client_port), "cnt_node_deleted_watch_count") >= 1, 10,
             what="node_deleted_watch_count")
    return mntr(server.client_port)


def test_standalone_metrics_move_as_in_java(zkref_zk, java_zk):
    """On a standalone server, WatchManager.triggerWatch adds one sample per event with watchers — how many
    watchers it selected — to node_{created,deleted,changed,children}_watch_count; every handshake counts in
    connection_request_count; every whole request frame adds its size to bytes_received_count; the startup
    loadDataBase and snapshot record dbinittime and snapshottime. Counts equal Java's for the same workload.
    Reference: WatchManager.triggerWatch, ZooKeeperServer.processConnectRequest, ServerCnxn.packetReceived,
    ZKDatabase.loadDataBase, ZooKeeperServer.takeSnapshot (ServerMetrics, 3.8)."""
    ours, java = run_and_read(zkref_zk(CFG)), run_and_read(java_zk(CFG))
    for name in WATCH_COUNTS:
        for stat in ("cnt", "sum", "max", "min"):
            key = f"{stat}_{name}"
            assert number(ours, key) == number(java, key), (key, ours.get(key), java.get(key))
    assert number(java, "sum_node_changed_watch_count") == 2
    assert number(ours, "connection_request_count") == number(java, "connection_request_count") == 3
    assert number(java, "bytes_received_count") > 0 and number(ours, "bytes_received_count") > 0
    for name in ("dbinittime", "snapshottime"):
        assert number(ours, f"cnt_{name}") == number(java, f"cnt_{name}") == 1, name
    # five notifications of the same events: the same bytes
    assert number(ours, "watch_bytes") == number(java, "watch_bytes") > 0
    # every txn's propagation_latency: 3 sessions opened and closed, 3 creates, a setData, 3 deletes
    assert number(ours, "cnt_propagation_latency") == number(java, "cnt_propagation_latency") == 13
    # the change records the writes queued (the same ones, in Prep) and their txns retired
    assert number(ours, "outstanding_changes_removed") == number(java, "outstanding_changes_removed")
    assert number(ours, "outstanding_changes_queued") == number(java, "outstanding_changes_queued") > 0
    # each of the three sessions closed once (none had ephemerals)
    assert number(ours, "cnt_close_session_prep_time") == number(java, "cnt_close_session_prep_time") == 3
    # these depend on pings and batching: both servers move them
    for key in ("response_bytes", "prep_processor_request_queued", "cnt_prep_process_time",
                "sync_processor_request_queued", "cnt_sync_processor_batch_size", "cnt_sync_processor_queue_size",
                "cnt_sync_processor_queue_time_ms", "cnt_sync_processor_queue_flush_time_ms",
                "cnt_sync_processor_queue_and_flush_time_ms", "outstanding_changes_removed"):
        assert number(java, key) > 0 and number(ours, key) > 0, (key, java.get(key), ours.get(key))



def processor_samples(m: dict[str, str]) -> tuple:
    "How each processor's per-request metrics relate to its queued count, as (name, value) pairs to compare."
    prep, sync = number(m, "prep_processor_request_queued"), number(m, "sync_processor_request_queued")
    return (("prep queue_size - queued", number(m, "cnt_prep_processor_queue_size") - prep),
            ("prep queue_time - queued", number(m, "cnt_prep_processor_queue_time_ms") - prep),
            ("prep process_time - queued", number(m, "cnt_prep_process_time") - prep),
            ("proposal_process_time - queued", number(m, "cnt_proposal_process_time") - prep),
            ("sync queue_size - queued", number(m, "cnt_sync_processor_queue_size") - sync),
            ("sync queue_time - queued", number(m, "cnt_sync_processor_queue_time_ms") - sync),
            ("sync handed every request on", sync == prep),
            ("throttler samples - prep queued", number(m, "cnt_request_throttle_queue_time_ms") - prep))


def test_processor_metrics_sample_once_per_request_as_in_java(zkref_zk, java_zk):
    """Java's PrepRequestProcessor and SyncRequestProcessor are threads that take one request at a time: each
    samples its queue's size before every take/poll (so once per request, plus once before the first) and
    records, per request, the time it waited in the queue; Prep also records pRequest's time and the hand-off
    to Sync (proposal_process_time). Sync records sync_process_time for each request of its toFlush list —
    at least every logged txn. Every request reaches Prep through the RequestThrottler, which samples its wait
    (request_throttle_queue_time_ms). zkref prepares at once and syncs in batches, yet its counts relate to
    the requests as Java's do. Reference: PrepRequestProcessor.run/pRequest, SyncRequestProcessor.run
    (PREP_PROCESSOR_QUEUE_SIZE/_TIME, PREP_PROCESS_TIME, PROPOSAL_PROCESS_TIME, SYNC_PROCESSOR_QUEUE_SIZE/_TIME,
    SYNC_PROCESS_TIME), FileTxnLog.commit (FSYNC_TIME), RequestThrottler.run (REQUEST_THROTTLE_QUEUE_TIME), 3.8."""
    seen = {}
    for start in (java_zk, zkref_zk):
        server = start(CFG)
        workload(server.hosts)
        # the thread samples its empty queue just after handing the last request on: wait for that sample
        expected = (("prep queue_size - queued", 1), ("prep queue_time - queued", 0), ("prep process_time - queued", 0),
                    ("proposal_process_time - queued", 0), ("sync queue_size - queued", 1),
                    ("sync queue_time - queued", 0), ("sync handed every request on", True),
                    ("throttler samples - prep queued", 0))
        wait_for(lambda: processor_samples(mntr(server.client_port)) == expected, 10,
                 what=f"{server.kind}'s processor samples")
        m = mntr(server.client_port)
        # the txns: 3 sessions opened and closed, 3 creates, a setData, 3 deletes (see propagation_latency)
        assert number(m, "cnt_sync_process_time") >= 13, (server.kind, m.get("cnt_sync_process_time"))
        assert number(m, "cnt_sync_process_time") <= number(m, "sync_processor_request_queued")
        # FileTxnLog.commit records one fsynctime per fsync, one fsync per flushed batch (one log file here)
        assert number(m, "cnt_fsynctime") == number(m, "cnt_sync_processor_batch_size") > 0, server.kind
        seen[server.kind] = processor_samples(m)
    assert seen["zkref"] == seen["java"], seen


NAMESPACE_KEYS = tuple(f"{stat}_{ns}_{rw}_per_namespace" for stat in ("cnt", "sum") for ns in ("app", "other")
                       for rw in ("write", "read"))


def test_per_namespace_bytes_as_in_java_and_after_replay(zkref_zk, java_zk):
    """DataTree counts each top-level namespace's bytes: write_per_namespace gets path length + data length per
    create, setData and delete (the nodes a multi or a closing session removes included), read_per_namespace
    path length + data (or children names) + 68 stat bytes per getData, exists and getChildren. The tree counts,
    so the txns replayed from the log at start-up count again, and a restarted server shows the replay's writes.
    Reference: DataTree.updateWriteStat/updateReadStat (createNode, deleteNode, setData, getData, statNode,
    getChildren), ServerMetrics WRITE_PER_NAMESPACE/READ_PER_NAMESPACE, 3.8."""
    seen = {}
    for start in (java_zk, zkref_zk):
        server = start(CFG)
        k = kazoo(server.hosts)
        try:
            k.create("/app", b"12345")
            k.create("/app/a/b", b"xy", makepath=True)
            k.set("/app/a", b"abc")
            k.get("/app/a")
            k.exists("/app/a/b")
            k.get_children("/app")
            k.create("/other", b"", ephemeral=True)
            t = k.transaction()
            t.create("/app/m", b"m")
            t.delete("/app/a/b")
            t.commit()
        finally:
            k.stop()                                       # the session's ephemeral /other goes with it
            k.close()
        before = mntr(server.client_port)
        server.stop()
        server.start()
        after = mntr(server.client_port)
        seen[server.kind] = ({key: number(before, key) for key in NAMESPACE_KEYS},
                             {key: number(after, key) for key in NAMESPACE_KEYS if "write" in key})
    assert seen["java"][0]["cnt_app_write_per_namespace"] == 6, seen["java"]    # what Java printed
    assert seen["zkref"] == seen["java"], seen


def test_four_letter_words_count_as_packets_and_reconnects_as_revalidations(zkref_zk, java_zk):
    """A four-letter word is a packet received of 4 bytes (packets_received, bytes_received_count, and the
    `Received:` line of srvr, which counts its own word); a client reconnecting with its session id counts
    in connection_revalidate_count. Reference: NIOServerCnxn.checkFourLetterWord → ServerCnxn.packetReceived(4),
    ZooKeeperServer.processConnectRequest (CONNECTION_REVALIDATE_COUNT), 3.8."""
    seen = {}
    for start in (java_zk, zkref_zk):
        server = start(CFG)
        first = mntr(server.client_port)
        for word in ("ruok", "isro", "conf"):
            four_letter_word(server.client_port, word)
        received = next(line for line in four_letter_word(server.client_port, "srvr").splitlines()
                        if line.startswith("Received:"))
        second = mntr(server.client_port)
        k = kazoo(server.hosts)
        try:
            session_id, passwd = k.client_id
            k2 = KazooClient(hosts=server.hosts, timeout=10, client_id=(session_id, passwd))
            k2.start(timeout=15)                         # the same session, reopened on a second connection
            k2.stop()
            k2.close()
        finally:
            k.stop()
            k.close()
        third = mntr(server.client_port)
        seen[server.kind] = (number(second, "packets_received") - number(first, "packets_received"),
                             number(second, "bytes_received_count") - number(first, "bytes_received_count"),
                             int(received.split()[1]) - number(first, "packets_received"),
                             number(third, "connection_revalidate_count"))
    assert seen["java"] == (5, 20, 4, 1), seen["java"]     # what Java printed
    assert seen["zkref"] == seen["java"], seen


def test_response_cache_hits_as_in_java(zkref_zk, java_zk):
    """Each server caches the serialized getData and getChildren2 responses of a path while the node's Stat is
    unchanged: the first read is a miss, the next ones hits, a read after a change a miss again; plain
    getChildren and exists are not cached. The two caches (400 entries each) are logged when the server is
    made. Reference: ResponseCache, ServerCnxn.serialize (RESPONSE_PACKET_CACHE_HITS/MISSING,
    RESPONSE_PACKET_GET_CHILDREN_CACHE_HITS/MISSING), ZooKeeperServer's constructor, 3.8."""
    keys = ("response_packet_cache_hits", "response_packet_cache_misses",
            "response_packet_get_children_cache_hits", "response_packet_get_children_cache_misses")
    seen = {}
    for start in (java_zk, zkref_zk):
        server = start(CFG)
        k = kazoo(server.hosts)
        try:
            k.create("/r/c", b"data", makepath=True)
            for _ in range(3):
                assert k.get("/r/c")[0] == b"data"               # getData: a miss, then two hits
            k.set("/r/c", b"new")
            assert k.get("/r/c")[0] == b"new"                    # changed: a miss
            for _ in range(2):
                k.get_children("/r", include_data=True)          # getChildren2: a miss, then a hit
            k.get_children("/r")                                 # getChildren: not cached
            k.exists("/r/c")                                     # exists: not cached
        finally:
            k.stop()
            k.close()
        m = mntr(server.client_port)
        seen[server.kind] = tuple(number(m, key) for key in keys)
        for kind in ("getData", "getChildren"):
            assert f"{kind} response cache size is initialized with value 400." in server.logs(), (server.kind, kind)
    assert seen["java"] == (2, 2, 1, 1), seen["java"]        # what Java printed
    assert seen["zkref"] == seen["java"], seen

def test_restart_records_load_and_snapshot(zkref_zk, java_zk):
    """A restarted standalone server loads its snapshot and txn log (dbinittime, one sample) and writes the
    startup snapshot (snapshottime, one sample), as Java does; the snapshot's load time and the replayed txns
    (their number and time) are one sample each of the startup_* summaries. Reference: ZKDatabase.loadDataBase
    (DB_INIT_TIME), ZooKeeperServer.loadData → takeSnapshot (SNAPSHOT_TIME), FileTxnSnapLog.restore
    (STARTUP_SNAP_LOAD_TIME) and fastForwardFromEdits (STARTUP_TXNS_LOADED, STARTUP_TXNS_LOAD_TIME)."""
    counts = {}
    for start in (zkref_zk, java_zk):
        server = start(CFG)
        k = kazoo(server.hosts)
        try:
            for i in range(5):
                k.create(f"/n{i}", b"data")
        finally:
            k.stop()
            k.close()
        server.stop()
        server.start()
        m = mntr(server.client_port)
        counts[server.kind] = tuple(number(m, k) for k in (
            "cnt_dbinittime", "cnt_snapshottime", "cnt_startup_snap_load_time", "cnt_startup_txns_loaded",
            "sum_startup_txns_loaded", "cnt_startup_txns_load_time"))
    # one load, one snapshot; the replay: a session opened, 5 creates, the session closed
    assert counts["zkref"] == counts["java"] == (1, 1, 1, 1, 7, 1), counts


def open_session_and_drop(port: int, timeout_ms: int) -> None:
    "A raw ConnectRequest for a `timeout_ms` session, read the answer, then close the socket without closeSession."
    body = struct.pack(">iqiqi16s?", 0, 0, timeout_ms, 0, 16, b"\0" * 16, False)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        s.settimeout(5)
        reply = b""
        while len(reply) < 4 or len(reply) < 4 + struct.unpack(">i", reply[:4])[0]:   # all of it: a clean close
            chunk = s.recv(4096)
            assert chunk, "the server closed before its ConnectResponse"
            reply += chunk


def test_expiries_count_as_in_java(zkref_zk, java_zk):
    """A session whose client vanished expires in the session tracker (stale_sessions_expired +1, Java:
    SessionTrackerImpl.run), and a connection that never sends its ConnectRequest is closed by the connection
    expirer after zookeeper.nio.sessionlessCnxnTimeout (sessionless_connections_expired +1, Java:
    NIOServerCnxnFactory.ConnectionExpirerThread); the client's vanished socket is a failed read
    (connection_drop_count +1, NIOServerCnxn.handleFailedRead). Reference: ServerMetrics STALE_SESSIONS_EXPIRED,
    SESSIONLESS_CONNECTIONS_EXPIRED, CONNECTION_DROP_COUNT (3.8)."""
    flags = ["-Dzookeeper.nio.sessionlessCnxnTimeout=1000"]
    counts = {}
    for start in (zkref_zk, java_zk):
        server = start(dict(CFG, tickTime=200), jvm_flags=flags)
        open_session_and_drop(server.client_port, 400)
        silent = socket.create_connection(("127.0.0.1", server.client_port), timeout=5)
        try:
            wait_for(lambda: number(mntr(server.client_port), "stale_sessions_expired") >= 1
                     and number(mntr(server.client_port), "sessionless_connections_expired") >= 1, 20,
                     what=f"{server.kind}: the session and the silent connection to expire")
        finally:
            silent.close()
        m = mntr(server.client_port)
        counts[server.kind] = (number(m, "stale_sessions_expired"), number(m, "sessionless_connections_expired"),
                               number(m, "connection_drop_count"), number(m, "connection_request_count"),
                               number(m, "cnt_connection_token_deficit"))
    # the dropped socket also counts in connection_drop_count; one handshake, one (zero) token deficit sample
    assert counts["zkref"] == counts["java"] == (1, 1, 1, 1, 1), counts



def test_unreadable_connect_request_is_not_counted(zkref_zk, java_zk):
    """processConnectRequest counts a handshake in connection_request_count only once its ConnectRequest was
    read: a first frame too short to hold one closes the connection and counts nothing (but its bytes).
    Reference: ZooKeeperServer.processConnectRequest (ConnectRequest.deserialize before CONNECTION_REQUEST_COUNT),
    3.8."""
    counts = {}
    for start in (zkref_zk, java_zk):
        server = start(CFG)
        with socket.create_connection(("127.0.0.1", server.client_port), timeout=5) as s:
            s.sendall(struct.pack(">i", 5) + b"\0\0\0\0\0")      # 5 bytes: not even the protocol version + zxid
            s.settimeout(5)
            assert s.recv(4096) == b"", f"{server.kind} answered a truncated ConnectRequest"
        m = mntr(server.client_port)
        counts[server.kind] = (number(m, "connection_request_count"), number(m, "cnt_connection_token_deficit"))
    assert counts["zkref"] == counts["java"] == (0, 0), counts

def test_digest_mismatch_counts_in_server_metrics():
    """A txn whose logged digest differs from the tree's after applying it is counted in
    digest_mismatches_count (and stays non-fatal); the tree a ZKDatabase makes after clear() counts into the
    same metrics. Reference: DataTree.compareDigest → reportDigestMismatch (ServerMetrics
    DIGEST_MISMATCHES_COUNT, 3.8)."""
    from zkref.jute import TxnDigest, TxnHeader
    from zkref.metrics import ServerMetrics
    from zkref.metrics_provider import DefaultMetricsProvider
    from zkref.zkdatabase import ZKDatabase

    metrics = ServerMetrics(DefaultMetricsProvider())
    db = ZKDatabase(None)
    db.set_metrics(metrics)
    for zxid in (1, 2):
        tree = db.data_tree
        wrong = TxnDigest(version=tree.digest_calculator.digest_version(), tree_digest=tree.get_tree_digest() + 1)
        assert tree.compare_digest(TxnHeader(client_id=1, cxid=1, zxid=zxid, time=0, type=1), None, wrong) is False
        assert metrics.digest_mismatches_count.get() == zxid
        db.clear()
    right = TxnDigest(version=db.data_tree.digest_calculator.digest_version(), tree_digest=db.data_tree.get_tree_digest())
    assert db.data_tree.compare_digest(TxnHeader(client_id=1, cxid=1, zxid=3, time=0, type=1), None, right) is True
    assert metrics.digest_mismatches_count.get() == 2


def closed_by_server(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def mntr_from_other_address(port: int) -> dict[str, str]:
    with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.0.2", 0)) as s:
        s.sendall(b"mntr")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return {k.removeprefix("zk_"): v.strip() for k, _, v in
            (line.partition("\t") for line in data.decode().splitlines())}


def test_rejected_connections_count_as_in_java(zkref_zk, java_zk):
    """A socket over maxClientCnxns from one address is closed at accept and counts in connection_rejected.
    Reference: NIOServerCnxnFactory.AcceptThread.doAccept (ServerMetrics CONNECTION_REJECTED, 3.8)."""
    counts = {}
    for start in (zkref_zk, java_zk):
        server = start(dict(CFG, maxClientCnxns=1))
        first = kazoo(server.hosts)          # a session: certainly registered before the second socket comes
        try:
            try:
                second = socket.create_connection(("127.0.0.1", server.client_port), timeout=5)
            except (ConnectionResetError, BrokenPipeError):   # the server's close can beat connect()'s return
                pass
            else:
                second.settimeout(5)
                wait_for(lambda: closed_by_server(second), 10, what="the server to close the second socket")
                second.close()
            # the limit is per address: mntr comes from another loopback address (to 127.0.0.1 still)
            counts[server.kind] = number(mntr_from_other_address(server.client_port), "connection_rejected")
        finally:
            first.stop()
            first.close()
    assert counts["zkref"] == counts["java"] == 1, counts


def pipeline_writes_and_hang_up(port: int, path: str, n: int) -> socket.socket:
    """Open a raw session, send `n` setData requests for `path` without reading a reply, then half-close the socket
    (a FIN after the requests: the server reads them all, then end of stream). The caller closes the socket."""
    body = struct.pack(">iqiqi16s?", 0, 0, 30000, 0, 16, b"\0" * 16, False)
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(struct.pack(">i", len(body)) + body)
    reply = b""
    while len(reply) < 4 or len(reply) < 4 + struct.unpack(">i", reply[:4])[0]:
        chunk = s.recv(4096)
        assert chunk, "the server closed before its ConnectResponse"
        reply += chunk
    p = path.encode()
    frames = b""
    for xid in range(1, n + 1):                     # RequestHeader{xid, setData=5}, SetDataRequest{path, data, -1}
        req = struct.pack(">ii", xid, 5) + struct.pack(">i", len(p)) + p + struct.pack(">i", 1) + b"x" + struct.pack(">i", -1)
        frames += struct.pack(">i", len(req)) + req
    s.sendall(frames)
    s.shutdown(socket.SHUT_WR)
    return s


def test_replies_to_a_closed_connection_count_as_stale(zkref_zk, java_zk):
    """A client that hangs up while its writes are still in the pipeline: the server reads them all, then the end
    of the stream, and closes the connection; the writes are applied all the same, and each reply that finds the
    connection closed counts in stale_replies. Java and zkref both count some; a live connection's reply counts
    none. Reference: FinalRequestProcessor.processRequest (request.isStale() → STALE_REPLIES), NIOServerCnxn.close

    A flush delay holds the batch while the server reads the hang-up (zookeeper.flushDelay: SyncRequestProcessor
    polls for more writes until it is over), so the replies find the connection closed on both servers. Without
    it the race is the disk's: zkref commits a lone client's batch on its event loop (chapter 11e, "Where the
    commit runs") and answers before it reads the hang-up."""
    n = 300
    flags = ["-Dzookeeper.flushDelay=300", "-Dzookeeper.maxWriteQueuePollTime=300"]
    for server in (java_zk(CFG, jvm_flags=flags), zkref_zk(CFG, jvm_flags=flags)):
        k = kazoo(server.hosts)
        try:
            k.create("/stale", b"")
            with pipeline_writes_and_hang_up(server.client_port, "/stale", n):
                wait_for(lambda: k.exists("/stale").version == n, 20, what=f"{n} setData applied on {server}")
            stale = number(mntr(server.client_port), "stale_replies")
            assert 0 < stale <= n, (server, stale)
            k.set("/stale", b"y")                         # a live connection's reply is not stale
            assert number(mntr(server.client_port), "stale_replies") == stale
        finally:
            k.stop(); k.close()


def test_srst_resets_every_counter_and_summary_as_in_java(zkref_zk, java_zk):
    """`srst` is ServerStats.reset: the latencies, packet counts and response sizes, then
    ServerMetrics.getMetrics().resetAll(), which zeroes every counter and summary of the metrics provider. Gauges
    (znode count, uptime, ...) keep their values. After the same workload and `srst`, the `mntr` values that are
    not zero are the same names on zkref as on Java 3.8. Reference: ServerStats.reset, StatResetCommand,
    DefaultMetricsProvider.resetAllValues (3.8)."""
    nonzero = {}
    for start in (java_zk, zkref_zk):
        server = start(CFG)
        workload(server.hosts)                           # every client closed before the reset
        wait_for(lambda: number(mntr(server.client_port), "cnt_node_deleted_watch_count") >= 1, 10,
                 what="node_deleted_watch_count")
        before = mntr(server.client_port)
        assert number(before, "cnt_updatelatency") > 0 and number(before, "max_sync_processor_batch_size") > 0
        assert four_letter_word(server.client_port, "srst") == "Server stats reset.\n"
        after = mntr(server.client_port)                 # this mntr is the only request since the reset
        nonzero[server.kind] = sorted(k for k, v in after.items() if v not in ("0", "0.0"))
        assert number(after, "cnt_updatelatency") == number(after, "max_sync_processor_batch_size") == 0
        assert number(after, "packets_received") == 1 and number(after, "bytes_received_count") == 4
        assert number(after, "znode_count") == number(before, "znode_count") > 0
    assert nonzero["zkref"] == nonzero["java"], (set(nonzero["zkref"]) ^ set(nonzero["java"]))


def test_four_letter_word_answers_count_as_sent_in_java_writers_pieces(zkref_zk, java_zk):
    """A command's answer goes through a PrintWriter, a BufferedWriter of 8,192 characters and SendBufferWriter;
    each piece the buffered writer passes on is written and counted as one packet sent. So after `srst` (its own
    answer one packet), a `mntr` of more than 8,192 characters counts two and `conf` or `envi` one, as `srvr`'s
    `Sent:` line shows (before its own answer). Reference: ServerCnxn.cleanupWriterSocket,
    NIOServerCnxn.SendBufferWriter and sendBufferSync → packetSent (3.8)."""
    seen = {}
    for start in (java_zk, zkref_zk):
        server = start(CFG)
        four_letter_word(server.client_port, "srst")
        sent = []
        for word in ("mntr", "conf", "envi", "mntr"):
            assert len(four_letter_word(server.client_port, word)) > (8192 if word == "mntr" else 0)
            srvr = four_letter_word(server.client_port, "srvr").splitlines()
            sent.append(int(next(line for line in srvr if line.startswith("Sent:")).split()[1]))
        seen[server.kind] = sent
    assert seen["java"] == [3, 5, 7, 10], seen["java"]     # what Java printed
    assert seen["zkref"] == seen["java"], seen
