"""Observability of the standalone server, end to end: the pause monitor, the audit log, the management
commands that stand in for JMX, and the clients operators use (kazoo's server_version, zk-shell) — each
against a real `python -m zkref` process, and against the real Java 3.8 server where Java has the feature.
"""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from http.client import HTTPConnection
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError
from kazoo.security import make_acl

from audit_helpers import audit_lines
from conftest import ZkrefServer, four_letter_word, free_port, wait_for
from test_admin_http import JAVA_COMMANDS

PAUSE_LINE = "Detected pause in JVM or host machine (eg GC): pause of approximately "
ZK_SHELL = Path(sys.executable).with_name("zk-shell")


def http_get(port: int, path: str) -> tuple[int, str]:
    "One GET to 127.0.0.1:port; (status, body)."
    conn = HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def mntr(port: int) -> dict[str, str]:
    "The mntr four-letter word as a dict (values as printed)."
    return dict(line.split("\t", 1) for line in four_letter_word(port, "mntr").splitlines() if "\t" in line)


# ------------------------------------------------------------------------------------------ pause monitor
def test_pause_monitor_sees_a_stopped_process(zkref_zk):
    """With jvm.pause.monitor=true the standalone server logs "Added JvmPauseMonitor to server", starts the
    monitor with the configured thresholds, and when the whole process is stopped (SIGSTOP for 1.5 s, then
    SIGCONT) logs Java's "Detected pause in JVM or host machine (eg GC)" line and counts the pause in
    jvm_pause_time_ms, which mntr shows.
    Reference: Java ZooKeeperServerMain.runFromConfig (config.jvmPauseMonitorToRun), ZooKeeperServer(
    JvmPauseMonitor, ...), JvmPauseMonitor.JVMMonitor.run, ServerMetrics.JVM_PAUSE_TIME"""
    server = zkref_zk({"jvm.pause.monitor": "true", "jvm.pause.info-threshold.ms": 300,
                           "jvm.pause.sleep.time.ms": 100, "4lw.commands.whitelist": "*"})
    wait_for(lambda: "Starting JVM Pause Monitor with infoThresholdMs:300 warnThresholdMs:10000 and "
                     "sleepTimeMs:100" in server.logs(), 10, what="the monitor to start")
    assert "INFO  [main:ZooKeeperServer@" in server.logs().split("Added JvmPauseMonitor to server")[0].splitlines()[-1]
    assert PAUSE_LINE not in server.logs()
    server.proc.send_signal(signal.SIGSTOP)
    try:
        time.sleep(1.5)        # the stall under test (not synchronisation): the process is frozen this long
    finally:
        server.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: PAUSE_LINE in server.logs(), 10, what="the pause line")
    line = next(l for l in server.logs().splitlines() if PAUSE_LINE in l)
    assert " - INFO  [JvmPauseMonitor:JvmPauseMonitor$JVMMonitor@" in line
    pause_ms = int(line.split(PAUSE_LINE)[1].split(" ms")[0])
    assert pause_ms >= 1500 - 100   # the nap cannot end before the process runs again
    values = mntr(server.client_port)
    assert int(values["zk_max_jvm_pause_time_ms"]) >= pause_ms and int(values["zk_cnt_jvm_pause_time_ms"]) >= 1
    assert server.stop() == 0


def test_pause_monitor_is_off_by_default(zkref_zk):
    """Without jvm.pause.monitor the server starts no monitor (and logs neither line); the jvm_pause_time_ms
    summary is there but empty.
    Reference: Java ServerConfig.jvmPauseMonitorToRun (default false)"""
    server = zkref_zk({"4lw.commands.whitelist": "*"})
    values = mntr(server.client_port)
    assert values["zk_cnt_jvm_pause_time_ms"] == "0"
    assert "JvmPauseMonitor" not in server.logs()


# ------------------------------------------------------------------------------------------------ audit
def audited_workload(port: int) -> int:
    "The same client operations on either server; returns the session id."
    zk = KazooClient(hosts=f"127.0.0.1:{port}", auth_data=[("digest", "bob:secret")], timeout=10)
    zk.start(timeout=15)
    try:
        session = zk.client_id[0]
        zk.create("/app", b"x")
        zk.create("/seq-", b"", sequence=True, ephemeral=True)
        zk.create("/eph", b"", ephemeral=True)
        zk.set_acls("/app", [make_acl("world", "anyone", all=True), make_acl("ip", "10.0.0.1", read=True)])
        zk.set("/app", b"y")
        zk.get("/app")                                    # a read: never audited
        with pytest.raises(NoNodeError):
            zk.delete("/nope")
        with pytest.raises(NoNodeError):
            zk.set("/nope", b"")
        t = zk.transaction(); t.create("/m1"); t.delete("/nope2"); t.commit()
        t = zk.transaction(); t.create("/m2"); t.create("/mseq-", sequence=True); t.set_data("/app", b"z")
        t.delete("/m2"); t.commit()
        zk.delete("/app")
    finally:
        zk.stop()
        zk.close()
    return session


@pytest.mark.java
def test_audit_lines_are_javas(zkref_zk, java_zk):
    """With audit.enable=true the standalone server writes, on the Slf4jAuditLogger logger, the same lines the
    real Java 3.8 server writes for the same client operations: serverStart, each create (with znode_type;
    a sequential create inside a multi has none, as in Java), setAcl (with the ACL), setData, delete, failed
    delete/setData (ERROR, result=failure), a failed multi as one multiOperation failure, a successful multi
    member by member, the session's ephemerals deleted at close (as the server's user, without ip), and
    serverStop at shutdown. Only the session ids differ.
    Reference: Java AuditHelper.addAuditLog, ZKAuditProvider, DataTree.deleteNodes,
    ZooKeeperServerMain.runFromConfig (addZKStartStopAuditLog)"""
    java = java_zk({"audit.enable": "true"})
    zkref = zkref_zk({"audit.enable": "true"})
    assert "ZooKeeper audit is enabled." in zkref.logs()
    sessions = {"java": audited_workload(java.client_port), "zkref": audited_workload(zkref.client_port)}
    for name, s in (("java", java), ("zkref", zkref)):
        wait_for(lambda: any("ephemeralZNodeDeletion" in m for _, m in audit_lines(s.logs())), 10,
                 what=f"{name}'s ephemeral deletion lines")
    java.stop(); zkref.stop()
    wait_for(lambda: "serverStop" in java.logs(), 10, what="Java's serverStop line")

    def normalized(name, text):
        hexid = "0x" + format(sessions[name] & (2**64 - 1), "x")
        return [(level, msg.replace(hexid, "0xSESSION")) for level, msg in audit_lines(text)]
    j, z = normalized("java", java.logs()), normalized("zkref", zkref.logs())
    # the order in which Java deletes a closed session's ephemerals is its HashSet's; compare those as a set
    eph = lambda lines: sorted(l for l in lines if "ephemeralZNodeDeletion" in l[1])
    assert eph(z) == eph(j) and len(eph(j)) == 2
    rest = lambda lines: [l for l in lines if "ephemeralZNodeDeletion" not in l[1]]
    assert rest(z) == rest(j) and len(rest(j)) == 15
    assert z[0][1].endswith("operation=serverStart\tresult=success") and z[-1][1].endswith("operation=serverStop\tresult=invoked")


def test_audit_is_off_by_default(zkref_zk):
    """Without audit.enable the server logs "ZooKeeper audit is disabled." and writes no audit line, whatever
    the clients do.
    Reference: Java ZKAuditProvider (zookeeper.audit.enable, default false)"""
    server = zkref_zk()
    audited_workload(server.client_port)
    assert server.stop() == 0
    assert "ZooKeeper audit is disabled." in server.logs() and audit_lines(server.logs()) == []


# ----------------------------------------------------------------------------------- management (no JMX)
def admin_server(zkref_zk, extra: dict | None = None) -> tuple[ZkrefServer, int]:
    "A zkref server with its AdminServer on a free port."
    port = free_port()
    server = zkref_zk({"admin.enableServer": "true", "admin.serverAddress": "127.0.0.1",
                           "admin.serverPort": port, **(extra or {})})
    wait_for(lambda: "Started AdminServer on address 127.0.0.1" in server.logs(), 10, what="the AdminServer")
    return server, port


def test_management_step_comes_first(zkref_zk):
    """ZooKeeperServerMain's first step is the management step (Java: ManagedUtil.registerLog4jMBeans, before
    the config is read and "Starting server"); zkref has no JMX and says so once, naming the AdminServer
    commands that stand in for it.
    Reference: Java ZooKeeperServerMain.initializeAndRun"""
    server = zkref_zk()
    log = server.logs()
    step = log.index("No JMX in zkref: log4j JMX control is not registered")
    line = next(l for l in log.splitlines() if "No JMX in zkref" in l)
    assert step < log.index("Starting server") and "'loggers' and 'mbeans'" in line
    assert " - INFO  [main:ZooKeeperServerMain@" in line


def test_loggers_command_reads_and_sets_levels(zkref_zk):
    """The zkref-only AdminServer command `loggers` lists every logger's level (log4j names; null = inherits)
    and `?logger=X&level=L` changes one at run time — the power Java's log4j JMX MBeans gave — so turning
    ZooKeeperServer to DEBUG makes the next session's DEBUG line appear, and `level=null` turns it off again.
    Bad arguments answer 200 with a clear `error`.
    Reference: Java ManagedUtil.registerLog4jMBeans (log4j HierarchyDynamicMBean / LoggerDynamicMBean priority)"""
    server, port = admin_server(zkref_zk)
    status, body = http_get(port, "/commands/loggers")
    listing = json.loads(body)
    assert status == 200 and listing["command"] == "loggers" and listing["error"] is None
    assert listing["loggers"]["root"] == {"level": "INFO", "effective_level": "INFO"}
    assert listing["loggers"]["ZooKeeperServer"] == {"level": None, "effective_level": "INFO"}

    debug_line = " - DEBUG ["
    def sessions_established() -> int:
        return sum(1 for l in server.logs().splitlines() if debug_line in l and "Established session 0x" in l)
    def one_session():
        zk = KazooClient(hosts=server.hosts, timeout=10)
        zk.start(timeout=15); zk.stop(); zk.close()

    one_session()
    assert sessions_established() == 0
    status, body = http_get(port, "/commands/loggers?logger=ZooKeeperServer&level=DEBUG")
    assert json.loads(body)["loggers"] == {"ZooKeeperServer": {"level": "DEBUG", "effective_level": "DEBUG"}}
    wait_for(lambda: "Set the level of logger ZooKeeperServer to DEBUG" in server.logs(), 5, what="the set line")
    one_session()
    wait_for(lambda: sessions_established() == 1, 10, what="the DEBUG line")
    status, body = http_get(port, "/commands/loggers?logger=ZooKeeperServer&level=null")
    assert json.loads(body)["loggers"]["ZooKeeperServer"]["level"] is None
    one_session()
    assert sessions_established() == 1

    for query, error in (("?logger=root&level=LOUD", "loggers: unknown level LOUD;"),
                         ("?level=DEBUG", "loggers: level requires a logger argument"),
                         ("?logger=no.such.Logger", "loggers: no logger named no.such.Logger"),
                         ("?logger=root&level=null", "loggers: the root logger cannot inherit a level")):
        status, body = http_get(port, "/commands/loggers" + query)
        assert status == 200 and json.loads(body)["error"].startswith(error), (query, body)
    assert json.loads(http_get(port, "/commands/loggers?logger=root")[1])["loggers"]["root"]["level"] == "INFO"


def test_mbeans_command_shows_live_objects(zkref_zk):
    """The zkref-only AdminServer command `mbeans` shows the server's live objects under Java's JMX object
    names and attribute names: the server bean (org.apache.ZooKeeperService:name0=StandaloneServer_port<N>),
    its InMemoryDataTree (node count, last zxid, watches), and one Connections bean per client session.
    Reference: Java ZooKeeperServerBean, DataTreeBean, ConnectionBean (ZooKeeperServer.registerJMX)"""
    server, port = admin_server(zkref_zk, {"4lw.commands.whitelist": "*"})
    zk = KazooClient(hosts=server.hosts, timeout=10)
    zk.start(timeout=15)
    try:
        zk.create("/eph", b"x", ephemeral=True)
        zk.get("/eph", watch=lambda e: None)
        beans = {b["name"]: b["attributes"] for b in json.loads(http_get(port, "/commands/mbeans")[1])["beans"]}
        root = f"org.apache.ZooKeeperService:name0=StandaloneServer_port{server.client_port}"
        session = "0x" + format(zk.client_id[0], "x")
        values = mntr(server.client_port)
        assert beans[root]["ClientPort"] == str(server.client_port)     # the port alone, as Java's bean
        assert beans[root]["Version"] == values["zk_version"] and beans[root]["TickTime"] == 2000
        tree = beans[root + ",name1=InMemoryDataTree"]
        assert tree["NodeCount"] == int(values["zk_znode_count"]) and tree["WatchCount"] == 1
        conn = beans[f"{root},name1=Connections,name2=127.0.0.1,name3={session}"]
        assert conn["SessionId"] == session and conn["SessionTimeout"] == 10000 and conn["LastOperation"] == "GETD"
    finally:
        zk.stop(); zk.close()


def test_management_commands_are_not_javas(zkref_zk):
    """`loggers` and `mbeans` are zkref additions: neither collides with a name or alias of Java 3.8's
    commands, and the `GET /commands` page (Java's list) does not show them; Java answers them
    `Unknown command`.
    Reference: Java Commands (the static registration block), JettyAdminServer.CommandServlet"""
    assert not {"loggers", "mbeans"} & set(JAVA_COMMANDS)
    server, port = admin_server(zkref_zk)
    page = http_get(port, "/commands")[1]
    assert "/commands/monitor" in page and "loggers" not in page and "mbeans" not in page


# ------------------------------------------------------------------------------- clients operators use
def test_kazoo_server_version(zkref_zk):
    """kazoo's server_version() reads `envi` (allowed by 4lw.commands.whitelist) and parses zookeeper.version:
    against zkref it is (3, 8, 4), the Java release zkref answers as.
    Reference: ZooKeeper Admin Guide, "The Four Letter Words" (envi); kazoo KazooClient.server_version"""
    server = zkref_zk({"4lw.commands.whitelist": "srvr,envi"})
    zk = KazooClient(hosts=server.hosts, timeout=10)
    zk.start(timeout=15)
    try:
        assert zk.server_version() == (3, 8, 4)
    finally:
        zk.stop(); zk.close()


@pytest.mark.skipif(not ZK_SHELL.exists(), reason="zk-shell is not installed in this environment (pip install zk-shell)")
def test_zk_shell_mntr_and_chkzk(zkref_zk):
    """zk-shell, an operator's shell on kazoo, reads zkref's mntr (the same tab-separated keys as Java's) and
    its chkzk check passes against a zkref server.
    Reference: ZooKeeper Admin Guide, "The Four Letter Words" (mntr, stat); zk-shell commands mntr, chkzk"""
    server = zkref_zk({"4lw.commands.whitelist": "*"})
    def run(cmd: str) -> str:
        out = subprocess.run([str(ZK_SHELL), "--run-once", cmd, server.hosts], capture_output=True, text=True,
                             timeout=60)
        assert "Traceback" not in out.stderr, out.stderr
        return out.stdout   # (zk-shell exits 1 when a command returns a value, as chkzk does on success)
    shown = dict(line.split("\t", 1) for line in run("mntr").splitlines() if "\t" in line)
    assert shown["zk_server_state"] == "standalone" and shown["zk_version"].startswith("3.8.4")
    assert "zk_last_client_response_size" in shown and "zk_auth_failed_count" in shown
    assert "passed" in run(f"chkzk {server.hosts}")
    assert "/127.0.0.1:" in run("cons")


@pytest.mark.java
def test_auth_failure_count_is_javas(zkref_zk, java_zk):
    """A client's `auth` with a scheme the server has no provider for fails (AUTHFAILED, the connection is
    closed), and — as in Java 3.8, where only the Netty factory's x509 failures are counted — mntr's
    auth_failed_count stays 0; the reply still counts as a client response size (16 bytes, a bare header).
    Reference: Java ZooKeeperServer.processPacket (auth), ServerStats.incrementAuthFailedCount callers,
    ServerCnxn.sendResponse"""
    from kazoo.exceptions import AuthFailedError
    java = java_zk({"4lw.commands.whitelist": "*"})
    zkref = zkref_zk({"4lw.commands.whitelist": "*"})
    for s in (java, zkref):
        zk = KazooClient(hosts=s.hosts if hasattr(s, "hosts") else f"127.0.0.1:{s.client_port}", timeout=10)
        zk.start(timeout=15)
        try:
            with pytest.raises(AuthFailedError):
                zk.add_auth("nosuchscheme", "whatever")
        finally:
            zk.stop(); zk.close()
    j, z = mntr(java.client_port), mntr(zkref.client_port)
    keys = ("zk_auth_failed_count", "zk_min_client_response_size")
    assert [z[k] for k in keys] == [j[k] for k in keys] == ["0", "16"]


# ------------------------------------------------------------------ mbeans against Java's real MBeans (JMX)
JMX_READER = """
import com.sun.tools.attach.VirtualMachine;
import javax.management.*;
import javax.management.remote.*;

public class ReadBeans {
    public static void main(String[] args) throws Exception {
        VirtualMachine vm = VirtualMachine.attach(args[0]);
        String address = vm.startLocalManagementAgent();
        vm.detach();
        try (JMXConnector c = JMXConnectorFactory.connect(new JMXServiceURL(address))) {
            MBeanServerConnection m = c.getMBeanServerConnection();
            for (ObjectName n : m.queryNames(new ObjectName("org.apache.ZooKeeperService:*"), null)) {
                System.out.println("BEAN\\t" + n);
                for (MBeanAttributeInfo ai : m.getMBeanInfo(n).getAttributes()) {
                    Object v;
                    try { v = m.getAttribute(n, ai.getName()); } catch (Exception e) { v = "<error>"; }
                    System.out.println("ATTR\\t" + ai.getName() + "\\t" + String.valueOf(v).replace("\\n", "\\\\n"));
                }
            }
        }
    }
}
"""

# Flags every attribute below depends on, given to Java and zkref alike
MBEAN_FLAGS = ["-Dzookeeper.leader.maxConcurrentSnapSyncs=3", "-Dzookeeper.leader.maxConcurrentDiffSyncs=7",
               "-Dzookeeper.throttled_op_wait_time=25", "-Dzookeeper.request_throttle_max_requests=5",
               "-Dzookeeper.request_throttle_stall_time=50", "-Dzookeeper.request_throttle_drop_stale=false",
               "-Dzookeeper.request_stale_latency_check=true", "-Dzookeeper.largeRequestThreshold=2048",
               "-Dzookeeper.largeRequestMaxBytes=4194304", "-Dzookeeper.connection_throttle_tokens=500",
               "-Djute.maxbuffer=2000000"]
# Java attributes zkref leaves out: settings of machinery it does not have (see chapter 09a3)
NOT_IN_ZKREF = {"FlushDelay", "MaxWriteQueuePollTime", "MaxBatchSize", "TxnLogElapsedSyncTime",
                "CommitProcMaxReadBatchSize", "CommitProcMaxCommitBatchSize"}
ZKREF_ONLY: set[str] = set()     # zkref shows no attribute Java's beans lack
# Values that differ between any two runs (times, sizes, counters of the test's own polling) or by design
NOT_COMPARED = {"Version", "StartTime", "ClientPort", "DataDirSize", "LogDirSize", "PacketsReceived", "PacketsSent",
                "ElectionTimeTaken", "AvgRequestLatency", "MinRequestLatency", "MaxRequestLatency",
                "OutstandingRequests", "NumAliveConnections", "LastClientResponseSize", "MinClientResponseSize",
                "MaxClientResponseSize"}


def java_mbeans(pid: int, workdir: Path) -> dict[str, dict[str, str]]:
    "Java's org.apache.ZooKeeperService MBeans of JVM `pid` (attach API, no network): name -> {attribute: value}."
    source = workdir / "ReadBeans.java"
    source.write_text(JMX_READER)
    out = subprocess.run(["java", str(source), str(pid)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    beans: dict[str, dict[str, str]] = {}
    for line in out.stdout.splitlines():
        kind, *rest = line.split("\t")
        if kind == "BEAN":
            current = beans.setdefault(rest[0], {})
        elif kind == "ATTR":
            current[rest[0]] = rest[1] if len(rest) > 1 else ""
    return beans


def as_java(value) -> str:
    "A zkref mbeans value as Java's String.valueOf prints it."
    return str(value).lower() if isinstance(value, bool) else str(value)


def assert_bean_like_javas(java_attrs: dict[str, str], zkref_attrs: dict, also_skip=frozenset()) -> None:
    assert set(java_attrs) - NOT_IN_ZKREF == set(zkref_attrs) - ZKREF_ONLY, (
        set(java_attrs) - NOT_IN_ZKREF ^ set(zkref_attrs) - ZKREF_ONLY)
    for name in set(java_attrs) - NOT_IN_ZKREF - NOT_COMPARED - set(also_skip):
        assert as_java(zkref_attrs[name]) == java_attrs[name], (name, zkref_attrs[name], java_attrs[name])


class _AdminEnsemble:
    "An ensemble (conftest's Ensemble, or `base`) whose zkref servers run their AdminServer on free ports."
    def __new__(cls, root, kinds, base=None, **kw):
        from conftest import Ensemble, free_ports
        ports = dict(zip(range(1, len(kinds) + 1), free_ports(len(kinds))))

        class WithAdmin(base or Ensemble):
            def server_config(self, i):
                return {"admin.enableServer": "true", "admin.serverAddress": "127.0.0.1",
                        "admin.serverPort": ports[i]} if kinds[i - 1] == "zkref" else {}
        e = WithAdmin(root, kinds, **kw)
        e.admin_ports = ports
        return e


def test_mbeans_leader_bean_is_javas_leader_mbean(tmp_path):
    """On a leader, Java registers the server bean as `ReplicatedServer_id<myid>,replica.<myid>,Leader`, a
    LeaderBean: ZooKeeperServerMXBean's attributes — among them ThrottledOpWaitTime and the other throttle
    settings — and LeaderMXBean's CurrentZxid, ElectionTimeTaken, Last/Min/MaxProposalSize and the learner sync
    limits MaxConcurrentSnapSyncs and MaxConcurrentDiffSyncs; a follower's is `…,Follower`, a FollowerBean
    (QuorumAddress, LastQueuedZxid, PendingRevalidationCount, ElectionTimeTaken, and its ObserverMaster's packet
    size and sync limits, -1 without one). zkref's `mbeans` shows both beans under the same names, with the
    same attributes (less the settings of machinery zkref lacks), and the values follow the same -D flags:
    read from Java 3.8's real MBeans over the JVM attach API.
    Reference: Java LeaderMXBean, LeaderBean, FollowerMXBean, FollowerBean, ZooKeeperServerMXBean
    (getThrottledOpWaitTime), LeaderZooKeeperServer.registerJMX, QuorumPeer (QuorumBean, LocalPeerBean)"""
    from conftest import java_available
    if not java_available():
        pytest.skip("needs Debian's Java ZooKeeper 3.8")
    found = {}
    for kind in ("java", "zkref"):
        e = _AdminEnsemble(tmp_path / kind, (kind,) * 3, jvm_flags=MBEAN_FLAGS)
        try:
            e.start()
            lead = e.wait_formed()
            follower = next(i for i in e.ids if i != lead)
            for i, role in ((lead, "Leader"), (follower, "Follower")):
                beans = read_mbeans(e, i, kind, tmp_path)
                name = f"org.apache.ZooKeeperService:name0=ReplicatedServer_id{i},name1=replica.{i},name2={role}"
                assert name in beans and name + ",name3=InMemoryDataTree" in beans, (kind, sorted(beans))
                found[kind, role] = beans[name], e.quorum(lead)
        finally:
            e.stop_all()
    java, zkref = found["java", "Leader"][0], found["zkref", "Leader"][0]
    assert (java["MaxConcurrentSnapSyncs"], java["MaxConcurrentDiffSyncs"], java["ThrottledOpWaitTime"]) == ("3", "7", "25")
    assert_bean_like_javas(java, zkref)
    (java, java_leader), (zkref, zkref_leader) = found["java", "Follower"], found["zkref", "Follower"]
    assert java["MaxConcurrentSnapSyncs"] == "-1"    # a follower without an ObserverMaster has no sync limits
    for bean, leader_port in ((java, java_leader), (zkref, zkref_leader)):
        assert as_java(bean["QuorumAddress"]).startswith(f"Socket[addr=/127.0.0.1,port={leader_port},localport=")
    assert_bean_like_javas(java, zkref, also_skip={"QuorumAddress"})   # its ports are this run's


def read_mbeans(e, i: int, kind: str, workdir: Path) -> dict[str, dict]:
    "Server `i`'s beans: Java's real MBeans, or zkref's `mbeans` command."
    if kind == "java":
        return java_mbeans(e.procs[i].proc.pid, workdir)
    status, body = http_get(e.admin_ports[i], "/commands/mbeans")
    assert status == 200, body
    return {b["name"]: b["attributes"] for b in json.loads(body)["beans"]}


def test_mbeans_standalone_bean_throttle_settings_are_javas(tmp_path, java_zk, zkref_zk):
    """A standalone server's bean (`StandaloneServer_port<N>`) shows ZooKeeperServerMXBean's attributes:
    ThrottledOpWaitTime (zookeeper.throttled_op_wait_time), the RequestThrottler's limit, stall time and
    drop-stale switch, the stale checks, the connection throttle and the large-request limits, with the values
    the -D flags gave; zkref's `mbeans` has the same attribute names and values as Java 3.8's MBean.
    Reference: Java ZooKeeperServerBean, ZooKeeperServerMXBean (getThrottledOpWaitTime), ZooKeeperServer.registerJMX"""
    java = java_zk(jvm_flags=MBEAN_FLAGS)
    java_beans = java_mbeans(java.proc.pid, tmp_path)
    java_attrs = java_beans[f"org.apache.ZooKeeperService:name0=StandaloneServer_port{java.client_port}"]
    server, port = admin_server(lambda cfg: zkref_zk(cfg, jvm_flags=MBEAN_FLAGS))
    body = json.loads(http_get(port, "/commands/mbeans")[1])
    zkref_attrs = {b["name"]: b["attributes"] for b in body["beans"]}[
        f"org.apache.ZooKeeperService:name0=StandaloneServer_port{server.client_port}"]
    assert (java_attrs["ThrottledOpWaitTime"], zkref_attrs["ThrottledOpWaitTime"]) == ("25", 25)
    assert_bean_like_javas(java_attrs, zkref_attrs)


def test_mbeans_observer_bean_is_javas_observer_mbean(tmp_path):
    """An observer registers its server bean as `ReplicatedServer_id<myid>,replica.<myid>,Observer`, an
    ObserverBean: ZooKeeperServerMXBean's attributes and ObserverMXBean's PendingRevalidationCount,
    QuorumAddress (its connection to the learner master) and LearnerMaster (that master's quorum address,
    here the leader's). zkref's `mbeans` shows the same bean with the same attributes and values.
    Reference: Java ObserverMXBean, ObserverBean, Observer.observeLeader (registerJMX)"""
    from conftest import WithObserver, java_available
    if not java_available():
        pytest.skip("needs Debian's Java ZooKeeper 3.8")
    found = {}
    for kind in ("java", "zkref"):
        e = _AdminEnsemble(tmp_path / kind, (kind,) * 4, base=WithObserver, jvm_flags=MBEAN_FLAGS)
        try:
            e.start()
            lead = e.wait_formed([1, 2, 3])
            name = "org.apache.ZooKeeperService:name0=ReplicatedServer_id4,name1=replica.4,name2=Observer"
            wait_for(lambda: e.mode(4) == "observer", 60, what="the observer to serve")
            beans = read_mbeans(e, 4, kind, tmp_path)
            assert name in beans and name + ",name3=InMemoryDataTree" in beans, (kind, sorted(beans))
            found[kind] = beans[name], e.quorum(lead)
        finally:
            e.stop_all()
    (java, java_leader), (zkref, zkref_leader) = found["java"], found["zkref"]
    for bean, leader_port in ((java, java_leader), (zkref, zkref_leader)):
        assert as_java(bean["LearnerMaster"]) == f"127.0.0.1:{leader_port}"
        assert as_java(bean["QuorumAddress"]).startswith(f"Socket[addr=/127.0.0.1,port={leader_port},localport=")
    assert_bean_like_javas(java, zkref, also_skip={"QuorumAddress", "LearnerMaster"})   # this run's ports


def test_mbeans_client_port_is_the_port_alone(tmp_path, java_zk, zkref_zk):
    """ZooKeeperServerMXBean's ClientPort is `Integer.toString(zks.getClientPort())`: the port the server
    listens on for plain clients, without its address (SecureClientAddress is the one with an address, "" without
    a secure port), and the bean has no State attribute. Java 3.8's real MBean (read over the JVM attach API) and
    zkref's `mbeans` say the same of their own port.
    Reference: Java ZooKeeperServerBean.getClientPort, ZooKeeperServer.getClientPort, ZooKeeperServerMXBean"""
    java = java_zk()
    java_attrs = java_mbeans(java.proc.pid, tmp_path)[
        f"org.apache.ZooKeeperService:name0=StandaloneServer_port{java.client_port}"]
    server, port = admin_server(zkref_zk)
    zkref_attrs = {b["name"]: b["attributes"] for b in json.loads(http_get(port, "/commands/mbeans")[1])["beans"]}[
        f"org.apache.ZooKeeperService:name0=StandaloneServer_port{server.client_port}"]
    for attrs, client_port in ((java_attrs, java.client_port), (zkref_attrs, server.client_port)):
        assert (attrs["ClientPort"], attrs["SecureClientAddress"]) == (str(client_port), ""), attrs
        assert "State" not in attrs
