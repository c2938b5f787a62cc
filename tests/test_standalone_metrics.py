"""The ServerMetrics a standalone server moves outside the quorum code: the same kazoo workload on zkref and on
Java 3.8, then `mntr` from both."""
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


def test_restart_records_load_and_snapshot(zkref_zk, java_zk):
    """A restarted standalone server loads its snapshot and txn log (dbinittime, one sample) and writes the
    startup snapshot (snapshottime, one sample), as Java does. Reference: ZKDatabase.loadDataBase (DB_INIT_TIME),
    ZooKeeperServer.loadData → takeSnapshot (SNAPSHOT_TIME)."""
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
        counts[server.kind] = (number(m, "cnt_dbinittime"), number(m, "cnt_snapshottime"))
    assert counts["zkref"] == counts["java"] == (1, 1), counts
