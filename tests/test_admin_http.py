"""The AdminServer over real HTTP, beside a real zkref standalone server, checked against a real Java 3.8
server's Jetty AdminServer given the same workload.

Until `ZooKeeperServerMain` starts the AdminServer itself, `InProcessZkref` runs the standalone server on its
own event loop in a thread and starts the AdminServer on that loop with the lines the chapter gives for the
wiring. `java_admin` starts conftest's Java server with the AdminServer on (Debian's zookeeper.jar needs
servlet-api.jar on the class path for Jetty to load).

This module also holds the helpers `tests/test_four_letter_words.py` imports.
"""
from __future__ import annotations

import asyncio
from http.client import HTTPConnection, HTTPException
import json
import re
import socket
import threading
import time
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from conftest import SERVLET_API_JAR, ZkrefServer, four_letter_word, free_port, wait_for
from zkref.config import ServerConfig
from zkref.main import ExitCode, exit_code_for
from zkref.server.admin import (AdminServer, AdminServerException, install_four_letter_words, jackson_dumps,
                                primary_names, run_command)
from zkref.server.main import ZooKeeperServerMain

# Every name and alias Java 3.8's Commands registers (Commands.java static block), with its primary name.
JAVA_COMMANDS = {
    "connection_stat_reset": "connection_stat_reset", "crst": "connection_stat_reset",
    "configuration": "configuration", "conf": "configuration", "config": "configuration",
    "connections": "connections", "cons": "connections", "hash": "hash", "dirs": "dirs", "dump": "dump",
    "environment": "environment", "env": "environment", "envi": "environment",
    "get_trace_mask": "get_trace_mask", "gtmk": "get_trace_mask",
    "initial_configuration": "initial_configuration", "icfg": "initial_configuration",
    "is_read_only": "is_read_only", "isro": "is_read_only", "last_snapshot": "last_snapshot",
    "lsnp": "last_snapshot", "leader": "leader", "lead": "leader", "monitor": "monitor", "mntr": "monitor",
    "observer_connection_stat_reset": "observer_connection_stat_reset", "orst": "observer_connection_stat_reset",
    "ruok": "ruok", "set_trace_mask": "set_trace_mask", "stmk": "set_trace_mask",
    "server_stats": "server_stats", "srvr": "server_stats", "stats": "stats", "stat": "stats",
    "stat_reset": "stat_reset", "srst": "stat_reset", "observers": "observers", "obsr": "observers",
    "system_properties": "system_properties", "sysp": "system_properties", "voting_view": "voting_view",
    "watches": "watches", "wchc": "watches", "watches_by_path": "watches_by_path", "wchp": "watches_by_path",
    "watch_summary": "watch_summary", "wchs": "watch_summary", "zabstate": "zabstate",
}


# --------------------------------------------------------------------------------------------- helpers
def write_cfg(workdir: Path, config: dict) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "zoo.cfg"
    cfg.write_text("".join(f"{k}={v}\n" for k, v in config.items()))
    return cfg


class InProcessZkref:
    "A zkref standalone server (ZooKeeperServerMain) on its own loop and thread, with the AdminServer beside it."

    def __init__(self, workdir: Path, config: dict | None = None, admin: bool = True):
        config = dict(config or {})
        self.client_port = int(config.setdefault("clientPort", free_port()))
        config.setdefault("clientPortAddress", "127.0.0.1")
        config.setdefault("dataDir", str(workdir / "data"))
        config.setdefault("tickTime", 2000)
        if admin:
            config.setdefault("admin.serverAddress", "127.0.0.1")
            config.setdefault("admin.serverPort", free_port())
        else:
            config.setdefault("admin.enableServer", "false")
        self.admin_port = int(config.get("admin.serverPort", 0))
        self.cfg_path = write_cfg(workdir, config)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="zkref-inprocess", daemon=True)
        self.main: ZooKeeperServerMain | None = None
        self.admin: AdminServer | None = None
        self.own_admin: AdminServer | None = None      # the one this harness started (not ZooKeeperServerMain)
        self.task = None

    def call(self, coro, timeout: float = 30.0):
        "Run a coroutine on the server's loop and return its result."
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> None:
        config = ServerConfig().parse(str(self.cfg_path))
        self.main = ZooKeeperServerMain()
        self.task = asyncio.ensure_future(self.main.run_from_config(config))
        done, _ = await asyncio.wait([self.task, asyncio.ensure_future(self.main.started.wait())], timeout=30,
                                     return_when=asyncio.FIRST_COMPLETED)
        if self.task in done:
            self.task.result()
        self.admin = getattr(self.main, "admin_server", None)
        if self.admin is None:      # until ZooKeeperServerMain starts it: the wiring the chapter gives
            self.own_admin = self.admin = AdminServer.from_config(config)
            self.admin.set_zookeeper_server(self.main.zks)
            await self.admin.start()
        install_four_letter_words(self.main.cnxn_factory)

    def start(self) -> "InProcessZkref":
        self.thread.start()
        self.call(self._start())
        return self

    async def _stop(self) -> None:
        if self.main is not None:
            self.main.request_shutdown()
            if self.task is not None:
                await asyncio.wait_for(asyncio.gather(self.task, return_exceptions=True), 30)
        if self.own_admin is not None:
            await self.own_admin.shutdown()

    def stop(self) -> None:
        if self.thread.is_alive():
            try:
                self.call(self._stop())
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self.thread.join(10)


@pytest.fixture
def java_admin(java_zk):
    "Factory: a Java 3.8 server with its AdminServer on 127.0.0.1 and a free port (`admin_port`); stopped after the test."
    if not Path(SERVLET_API_JAR).exists():
        pytest.skip("Java ZooKeeper (Debian zookeeper) and servlet-api.jar are needed")

    def start(config: dict | None = None, name: str = "java", wait: bool = True, myid: int | None = None):
        config = {"admin.enableServer": "true", "admin.serverAddress": "127.0.0.1", "admin.serverPort": free_port(),
                  **(config or {})}
        server = java_zk(config, name, myid=myid, wait=False, classpath=[SERVLET_API_JAR])   # Jetty loads
        server.admin_port = int(config["admin.serverPort"])
        if wait:
            server.wait_serving()
        return server
    return start


@pytest.fixture
def zkref_inproc(tmp_path):
    "Factory: an in-process zkref server with its AdminServer; stopped after the test."
    started: list[InProcessZkref] = []

    def start(config: dict | None = None, name: str = "zkref", admin: bool = True):
        server = InProcessZkref(tmp_path / name, config, admin)
        started.append(server)
        return server.start()

    yield start
    for s in started:
        s.stop()


def http(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], str]:
    "One HTTP request to 127.0.0.1:port; (status, headers, body)."
    conn = HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def workload(port: int) -> KazooClient:
    "The same client state on either server: a session, an ephemeral node, a data watch, an exists watch."
    zk = KazooClient(f"127.0.0.1:{port}", timeout=10)
    zk.start(timeout=15)
    zk.create("/e", b"x", ephemeral=True)
    zk.get("/e", watch=lambda e: None)
    zk.exists("/nx", watch=lambda e: None)
    zk.get_children("/", watch=lambda e: None)
    return zk


#: Maps whose keys are data (session ids, times, paths), not field names.
DATA_KEYED = {"expiry_time_to_session_ids", "session_id_to_ephemeral_paths", "session_id_to_watched_paths",
              "path_to_session_ids", "current_config"}

def shape(value, data_keyed: bool = False):
    "The JSON value with its types kept and its values dropped: field names (in order), element shapes."
    if isinstance(value, dict) and data_keyed:
        # an empty value in a data-keyed map has no element types to compare: e.g. `dump`'s expiry bucket that a
        # touch has just emptied stays until the expirer reaches its time (ExpiryQueue.update), on either server
        return {"<key>": sorted({json.dumps(shape(v)) for v in value.values() if v not in ([], {})})}
    if isinstance(value, dict):
        return {k: shape(v, k in DATA_KEYED) for k, v in value.items()}
    if isinstance(value, list):
        return sorted({json.dumps(shape(v), sort_keys=False) for v in value})
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return type(value).__name__


@pytest.fixture
def both(java_admin, zkref_inproc):
    "A Java 3.8 server and a zkref server, each with its AdminServer and the same client workload."
    java = java_admin({"4lw.commands.whitelist": "*"})
    zkref = zkref_inproc({"4lw.commands.whitelist": "*"})
    clients = [workload(java.client_port), workload(zkref.client_port)]
    yield java, zkref
    for c in clients:
        c.stop(); c.close()


# --------------------------------------------------------------------------------------------- tests
@pytest.mark.java
def test_command_list_page_is_javas(both):
    """`GET /commands` (and `/commands/`) lists every primary name, sorted, as `<a href>` + `<br/>` lines,
    and zkref's page is byte-for-byte Java's (Jetty sends no content type; aiohttp always sends one: text/html).
    Reference: Java JettyAdminServer.CommandServlet.doGet, commandLinks"""
    java, zkref = both
    for path in ("/commands", "/commands/"):
        j_status, _, j_body = http(java.admin_port, path)
        z_status, z_headers, z_body = http(zkref.admin_port, path)
        assert (z_status, z_body) == (j_status, j_body) == (200, z_body)
        assert z_headers["content-type"] == "text/html"
    assert sorted(set(JAVA_COMMANDS.values())) == primary_names()


@pytest.mark.java
def test_every_command_answers_with_javas_keys_and_types(both):
    """Each command name and alias answers `200 application/json` with the keys Java's command puts, in
    Java's order, `command` (the primary name) and `error`, and values of the same JSON types; the
    quorum-only commands give a standalone server's answers. `monitor` and `system_properties` are checked
    by their own tests (their keys are the metrics and the process's properties).
    Reference: Java Commands (each command's run), CommandResponse.toMap, JsonOutputter"""
    java, zkref = both
    for name, primary in JAVA_COMMANDS.items():
        if primary in ("monitor", "system_properties", "connection_stat_reset", "stat_reset"):
            continue
        j_status, j_headers, j_body = http(java.admin_port, f"/commands/{name}")
        z_status, z_headers, z_body = http(zkref.admin_port, f"/commands/{name}")
        assert (z_status, z_headers["content-type"]) == (j_status, j_headers["content-type"]) == \
            (200, "application/json"), name
        j, z = json.loads(j_body), json.loads(z_body)
        assert z["command"] == primary, name
        if primary == "environment":     # the JVM's facts vs Python's: same keys, all strings
            assert list(z) == list(j) and all(isinstance(v, str) for k, v in z.items() if k != "error")
            continue
        assert shape(z) == shape(j), f"{name}:\njava  {j_body}\nzkref {z_body}"


@pytest.mark.java
def test_reset_commands_and_their_effect(both):
    """`connection_stat_reset`/`crst` and `stat_reset`/`srst` answer only `command` and `error`, and zero
    the counters `connections` and `server_stats` show (the client's ping may count one packet since).
    Reference: Java Commands.CnxnStatResetCommand, StatResetCommand"""
    java, zkref = both
    before = json.loads(http(zkref.admin_port, "/commands/cons")[2])["connections"]
    assert before and all(c["packets_received"] >= 5 for c in before)
    for name, primary in (("crst", "connection_stat_reset"), ("srst", "stat_reset")):
        bodies = [http(s.admin_port, f"/commands/{name}")[2] for s in (java, zkref)]
        assert bodies[0] == bodies[1] == jackson_dumps({"command": primary, "error": None})
    conns = json.loads(http(zkref.admin_port, "/commands/cons")[2])["connections"]
    assert conns and all(c["packets_received"] <= 1 for c in conns), conns
    stats = json.loads(http(zkref.admin_port, "/commands/srvr")[2])["server_stats"]
    assert stats["packets_received"] <= 1, stats


@pytest.mark.java
def test_json_layout_is_jacksons(both):
    """The body is laid out as Jackson's pretty printer does (`"key" : value`, arrays inline, `[ {`, `{ }`),
    so the same answer is the same text: `ruok`, `is_read_only`, `observers`, `voting_view`, `zabstate`,
    `leader` (whose `error` field comes first) and `watch_summary` are byte-for-byte Java's.
    Reference: Java JsonOutputter (ObjectMapper INDENT_OUTPUT), CommandResponse.toMap"""
    java, zkref = both
    for name in ("ruok", "isro", "obsr", "voting_view", "zabstate", "lead", "wchs", "orst"):
        j_body, z_body = http(java.admin_port, f"/commands/{name}")[2], http(zkref.admin_port, f"/commands/{name}")[2]
        assert z_body == j_body, name


@pytest.mark.java
def test_monitor_has_mntr_keys_with_number_types(both):
    """`monitor` (alias `mntr`) carries every metric zkref's `mntr` prints, under the same names Java uses,
    with numbers as JSON numbers and `version`/`server_state` as strings.
    Reference: Java Commands.MonitorCommand, ZooKeeperServer.dumpMonitorValues"""
    java, zkref = both
    j = json.loads(http(java.admin_port, "/commands/monitor")[2])
    z = json.loads(http(zkref.admin_port, "/commands/mntr")[2])
    assert z["command"] == "monitor" and z["error"] is None
    assert set(z) <= set(j), sorted(set(z) - set(j))
    for k, v in z.items():
        if k in j and k not in ("error",):
            assert isinstance(v, str) == isinstance(j[k], str), k
    assert isinstance(z["version"], str) and z["server_state"] == j["server_state"] == "standalone"


@pytest.mark.java
def test_monitor_has_every_java_metric(both):
    """`monitor` lists every metric Java 3.8's standalone server lists after the same workload.
    Reference: Java ZooKeeperServer.registerMetrics, ServerMetrics"""
    java, zkref = both
    j = json.loads(http(java.admin_port, "/commands/monitor")[2])
    z = json.loads(http(zkref.admin_port, "/commands/monitor")[2])
    assert sorted(set(j) - set(z)) == []


@pytest.mark.java
def test_server_stats_gauges_move_as_javas(both):
    """After the same workload the ServerStats gauges and the per-namespace summaries have Java's values: the
    largest and smallest reply (header + record, no length prefix), no auth failures, no TLS or non-mTLS
    counts on the plain port, drop probability 0.0, and the bytes namespace `e` read and wrote; `stat_reset`
    sets the three response sizes back to -1.
    Reference: Java ServerCnxn.sendResponse (updateClientResponseSize), BufferStats, ServerStats.reset,
    DataTree.updateReadStat /
    updateWriteStat, ZooKeeperServer.registerMetrics"""
    java, zkref = both
    j = json.loads(http(java.admin_port, "/commands/monitor")[2])
    z = json.loads(http(zkref.admin_port, "/commands/monitor")[2])
    keys = ["max_client_response_size", "min_client_response_size", "auth_failed_count",
            "non_mtls_local_conn_count", "non_mtls_remote_conn_count", "outstanding_tls_handshake",
            "connection_drop_probability"]
    keys += [f"{s}_e_{rw}_per_namespace" for s in ("avg", "min", "max", "cnt", "sum") for rw in ("read", "write")]
    assert {k: z[k] for k in keys} == {k: j[k] for k in keys}
    assert z["max_client_response_size"] > z["min_client_response_size"] >= 16 and z["cnt_e_write_per_namespace"] == 1
    sizes = ["last_client_response_size", "min_client_response_size", "max_client_response_size"]
    for s in (java, zkref):
        http(s.admin_port, "/commands/stat_reset")     # ServerStats.reset clears the response sizes too
    j = json.loads(http(java.admin_port, "/commands/monitor")[2])
    z = json.loads(http(zkref.admin_port, "/commands/monitor")[2])
    assert [z[k] for k in sizes] == [j[k] for k in sizes] == [-1, -1, -1]


@pytest.mark.java
def test_unknown_commands_are_javas_error(both):
    """An unknown name — wrong case, a path below a command, a 3.9 command such as `snapshot` — answers
    `200` with `command` set to the name asked for and `error: Unknown command: <name>`, as Java does.
    Reference: Java Commands.runCommand"""
    java, zkref = both
    for name in ("nope", "Ruok", "stat/x", "snapshot", "snap", "restore"):
        j, z = http(java.admin_port, f"/commands/{name}"), http(zkref.admin_port, f"/commands/{name}")
        assert (z[0], z[2]) == (j[0], j[2]) == (200, jackson_dumps({"command": name, "error": f"Unknown command: {name}"}))


@pytest.mark.java
def test_http_methods_and_paths_as_jetty(both):
    """3.8's servlet has only GET (HEAD comes with it): POST, PUT and DELETE get 405, TRACE 403 (Jetty's
    constraint), a path outside the command URL 404.
    Reference: Java JettyAdminServer (CommandServlet.doGet, constrainTraceMethod)"""
    java, zkref = both
    for method, path in (("HEAD", "/commands/ruok"), ("POST", "/commands/ruok"), ("PUT", "/commands/ruok"),
                         ("DELETE", "/commands/ruok"), ("TRACE", "/commands/ruok"), ("GET", "/other"),
                         ("GET", "/"), ("POST", "/commands/snapshot")):
        j, z = http(java.admin_port, path, method), http(zkref.admin_port, path, method)
        assert z[0] == j[0], (method, path, j[0], z[0])
        if method == "HEAD":
            assert z[2] == "" and z[1]["content-type"] == "application/json"


@pytest.mark.java
def test_trace_mask_commands(both):
    """`get_trace_mask` answers Java's default 306; `set_trace_mask?traceMask=N` sets and echoes it; a missing
    or non-long argument gives Java's error text, with the `error` key first.
    Reference: Java Commands.GetTraceMaskCommand, SetTraceMaskCommand"""
    java, zkref = both
    for q in ("", "?traceMask=abc", "?traceMask=1.5", "?traceMask=99999999999999999999"):
        j, z = http(java.admin_port, f"/commands/stmk{q}"), http(zkref.admin_port, f"/commands/stmk{q}")
        assert z[2] == j[2], q
    assert json.loads(http(zkref.admin_port, "/commands/gtmk")[2])["tracemask"] == 306
    for s in (java, zkref):
        assert json.loads(http(s.admin_port, "/commands/stmk?traceMask=4")[2])["tracemask"] == 4
        assert json.loads(http(s.admin_port, "/commands/gtmk")[2])["tracemask"] == 4
        http(s.admin_port, "/commands/stmk?traceMask=306")


def test_commands_that_need_a_server_say_it_is_not_serving(zkref_inproc):
    """With no running ZooKeeperServer, a command that needs one answers `error: This ZooKeeper instance is not
    currently serving requests` with `command` as asked; `environment`, `get_trace_mask` and the other
    commands marked server-not-required still answer.
    Reference: Java Commands.runCommand, CommandBase.isServerRequired"""
    zkref = zkref_inproc()
    zkref.admin.set_zookeeper_server(None)
    for name in ("srvr", "conf", "cons", "dump", "wchc", "ruok", "lsnp", "lead"):
        body = http(zkref.admin_port, f"/commands/{name}")[2]
        assert body == jackson_dumps({"command": name, "error": "This ZooKeeper instance is not currently serving requests"})
    for name in ("envi", "gtmk", "zabstate", "sysp"):
        assert json.loads(http(zkref.admin_port, f"/commands/{name}")[2])["error"] is None, name
    assert run_command("conf", None).error == "This ZooKeeper instance is not currently serving requests"


def test_views_follow_the_server_state(zkref_inproc):
    """The commands read the live server: a new session, an ephemeral and a watch appear in `cons`, `dump`,
    `watches`, `watches_by_path` and `watch_summary`; `configuration` reports the configured ports and dirs;
    `initial_configuration` is the config file's text; `stats` lists the connection briefly.
    Reference: Java Commands (ConsCommand, DumpCommand, WatchCommand, ConfCommand, InitialConfigurationCommand)"""
    zkref = zkref_inproc()
    zk = workload(zkref.client_port)
    try:
        sid = zk.client_id[0]
        get = lambda n: json.loads(http(zkref.admin_port, f"/commands/{n}")[2])
        assert [c["session_id"] for c in get("cons")["connections"]] == [sid]
        assert get("dump")["session_id_to_ephemeral_paths"] == {str(sid): ["/e"]}
        # an emptied bucket stays listed until its time, as in Java's ExpiryQueue (chapter 11a)
        assert [ids for ids in get("dump")["expiry_time_to_session_ids"].values() if ids] == [[sid]]
        assert get("wchc")["session_id_to_watched_paths"] == {str(sid): ["/e", "/nx"]}
        assert get("wchp")["path_to_session_ids"] == {"/e": [sid], "/nx": [sid]}
        assert {k: v for k, v in get("wchs").items() if k.startswith("num")} == \
            {"num_connections": 1, "num_paths": 2, "num_total_watches": 2}
        conf = get("conf")
        assert conf["client_port"] == zkref.client_port and conf["data_dir"].endswith("data/version-2")
        assert get("icfg")["initial_configuration"] == zkref.cfg_path.read_text()
        stats = get("stats")
        assert stats["node_count"] >= 5 and list(stats["connections"][0]) == [
            "remote_socket_address", "interest_ops", "outstanding_requests", "packets_received", "packets_sent"]
    finally:
        zk.stop(); zk.close()


@pytest.mark.java
def test_port_in_use_is_javas_error_and_exit_code_4(tmp_path, java_admin):
    """An AdminServer port already in use stops startup with `AdminServerException: Problem starting
    AdminServer on address A, port P and command URL U` (caused by the bind error); Java exits with code 4 and
    `Unable to start AdminServer, exiting abnormally`, and zkref.main maps zkref's exception to the same.
    Reference: Java JettyAdminServer.start, ZooKeeperServerMain.main (ExitCode.ERROR_STARTING_ADMIN_SERVER)"""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0)); holder.listen()
        port = holder.getsockname()[1]
        java = java_admin({"admin.serverPort": port}, wait=False)
        assert java.proc.wait(60) == 4
        expected = f"Problem starting AdminServer on address 127.0.0.1, port {port} and command URL /commands"
        assert f"AdminServerException: {expected}" in java.logs()
        assert "Unable to start AdminServer, exiting abnormally" in java.logs()
        cfg = write_cfg(tmp_path / "z", {"dataDir": tmp_path / "z" / "data", "clientPort": free_port(),
                                          "admin.serverAddress": "127.0.0.1", "admin.serverPort": port})
        admin = AdminServer.from_config(ServerConfig().parse(str(cfg)))
        with pytest.raises(AdminServerException) as info:
            asyncio.run(admin.start())
        assert str(info.value) == expected and isinstance(info.value.__cause__, OSError)
        assert exit_code_for(info.value) == (ExitCode.ERROR_STARTING_ADMIN_SERVER,
                                             "Unable to start AdminServer, exiting abnormally")
        assert int(ExitCode.ERROR_STARTING_ADMIN_SERVER) == 4


def test_admin_settings_from_zoo_cfg(tmp_path):
    """zoo.cfg's `admin.*` keys become the `zookeeper.admin.*` properties: `enableServer` (on unless exactly
    `false`), `serverAddress` (0.0.0.0), `serverPort` (8080), `commandURL` (/commands), `idleTimeout` (30000);
    a number Java's Integer.getInteger cannot read falls back to the default.
    Reference: ZooKeeper Admin Guide, "AdminServer configuration"; Java AdminServerFactory, JettyAdminServer()"""
    def admin(extra: dict) -> AdminServer:
        cfg = write_cfg(tmp_path / str(len(extra)), {"dataDir": tmp_path / "d", "clientPort": 2181, **extra})
        return AdminServer.from_config(ServerConfig().parse(str(cfg)))
    a = admin({})
    assert (a.enabled, a.address, a.port, a.command_url, a.idle_timeout_ms) == (True, "0.0.0.0", 8080, "/commands", 30000)
    a = admin({"admin.enableServer": "false", "admin.serverAddress": "127.0.0.1", "admin.serverPort": "0x1F90",
               "admin.commandURL": "/zk", "admin.idleTimeout": "5000"})
    assert (a.enabled, a.address, a.port, a.command_url, a.idle_timeout_ms) == (False, "127.0.0.1", 8080, "/zk", 5000)
    assert admin({"admin.serverPort": "eighty", "admin.enableServer": "no"}).port == 8080
    assert admin({"admin.serverPort": "eighty", "admin.enableServer": "no"}).enabled is True


def test_disabled_admin_server_does_not_listen():
    """`admin.enableServer=false` gives Java's DummyAdminServer: start and shutdown do nothing, no port is bound.
    Reference: Java AdminServerFactory.createAdminServer, DummyAdminServer"""
    port = free_port()
    async def run():
        a = AdminServer("127.0.0.1", port, enabled=False)
        await a.start()
        try:
            with socket.socket() as s:
                assert s.connect_ex(("127.0.0.1", port)) != 0
        finally:
            await a.shutdown()
    asyncio.run(run())


def test_custom_command_url_and_idle_timeout(zkref_inproc):
    """The commands live under `admin.commandURL`; the old path is a 404. A keep-alive connection left idle
    longer than `admin.idleTimeout` is closed by the server.
    Reference: Java JettyAdminServer (context path commandUrl + "/*", connector.setIdleTimeout)"""
    zkref = zkref_inproc({"admin.commandURL": "/zk/cmds", "admin.idleTimeout": 300})
    assert json.loads(http(zkref.admin_port, "/zk/cmds/ruok")[2]) == {"command": "ruok", "error": None}
    assert http(zkref.admin_port, "/commands/ruok")[0] == 404
    with socket.create_connection(("127.0.0.1", zkref.admin_port), timeout=20) as s:
        s.sendall(b"GET /zk/cmds/ruok HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
        received = b""
        while b'"error" : null' not in received:
            chunk = s.recv(4096)
            assert chunk, "closed before the answer"
            received += chunk
        assert s.recv(4096) == b""          # EOF: the server closed the idle connection (recv times out otherwise)


def _https(port: int, path: str, ca: Path) -> tuple[int, dict[str, str], str]:
    "One HTTPS GET to 127.0.0.1:port, checking the server against `ca`; (status, headers, body)."
    import ssl
    from http.client import HTTPSConnection
    conn = HTTPSConnection("127.0.0.1", port, timeout=10, context=ssl.create_default_context(cafile=str(ca)))
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode()
    finally:
        conn.close()


@pytest.fixture
def admin_pki(tmp_path):
    from zkref.quorum.x509_util import make_test_pki
    return make_test_pki(tmp_path / "pki", ("server",))


@pytest.mark.java
@pytest.mark.parametrize("mode", ["admin.forceHttps", "admin.portUnification"])
def test_admin_https_as_jetty(java_admin, zkref_inproc, admin_pki, mode):
    """`admin.forceHttps=true` serves the commands over HTTPS only, `admin.portUnification=true` over HTTPS and
    HTTP on one port, with the `ssl.quorum.*` key and trust stores; an HTTPS answer carries Jetty's
    `Strict-Transport-Security` header, a plain one does not; a plain request to the HTTPS-only port gets no
    answer. The same on Java 3.8's Jetty and on zkref.
    Reference: Java JettyAdminServer(…, portUnification, forceHttps), Jetty SecureRequestCustomizer"""
    config = {"4lw.commands.whitelist": "*", mode: "true",
              "ssl.quorum.keyStore.location": admin_pki / "server.pem",
              "ssl.quorum.trustStore.location": admin_pki / "ca.pem"}
    seen = {}
    for name, server in (("java", java_admin(config)), ("zkref", zkref_inproc(config))):
        wait_for(lambda: _https(server.admin_port, "/commands/ruok", admin_pki / "ca.pem")[0] == 200, 20,
                 what=f"{name}'s HTTPS AdminServer")
        status, headers, body = _https(server.admin_port, "/commands/ruok", admin_pki / "ca.pem")
        try:                                               # the same over plain HTTP
            p_status, p_headers, p_body = http(server.admin_port, "/commands/ruok")
            plain = ("served", p_headers.get("strict-transport-security"), json.loads(p_body)) \
                if p_status == 200 else "no answer"
        except (OSError, ValueError, HTTPException):       # the HTTPS-only port: no HTTP answer
            plain = "no answer"
        seen[name] = (status, headers.get("strict-transport-security"), json.loads(body), plain)
    assert seen["java"][:2] == (200, "max-age=86400; includeSubDomains"), seen["java"]
    assert seen["java"][3] == (("served", None, seen["java"][2]) if mode == "admin.portUnification" else "no answer")
    assert seen["zkref"] == seen["java"], seen


@pytest.mark.java
def test_admin_https_without_its_stores_runs_no_admin_server_as_java(java_admin, zkref_inproc, admin_pki):
    """With `admin.forceHttps=true` and no trust store, Java's JettyAdminServer cannot load its certificates
    ("Failed to load authentication certificates for admin server."), so AdminServerFactory runs a
    DummyAdminServer: nothing listens on the admin port and the ZooKeeper server serves its clients. zkref too.
    Reference: Java JettyAdminServer(), AdminServerFactory.createAdminServer"""
    config = {"4lw.commands.whitelist": "*", "admin.forceHttps": "true",
              "ssl.quorum.keyStore.location": admin_pki / "server.pem"}
    for name, server in (("java", java_admin(config, wait=True)), ("zkref", zkref_inproc(config))):
        assert four_letter_word(server.client_port, "ruok") == "imok", name
        with pytest.raises(OSError):
            http(server.admin_port, "/commands/ruok")


# ------------------------------------------------------------------ `python -m zkref` with the AdminServer
def _zkref_process(tmp_path: Path, admin_port: int):
    return ZkrefServer(tmp_path / "zkref", {"admin.enableServer": "true", "admin.serverAddress": "127.0.0.1",
                                            "admin.serverPort": admin_port,
                                            "4lw.commands.whitelist": "*"}).start(wait=False)


def test_python_m_zkref_serves_the_admin_server(tmp_path):
    """`python -m zkref zoo.cfg` starts the AdminServer on `admin.serverPort` beside the client port, logs
    `Started AdminServer on address …, port … and command URL /commands`, and stops it on shutdown.
    Reference: Java ZooKeeperServerMain.runFromConfig (adminServer.start), JettyAdminServer.start"""
    admin_port = free_port()
    server = _zkref_process(tmp_path, admin_port)
    try:
        server.wait_serving(30)
        assert json.loads(http(admin_port, "/commands/ruok")[2]) == {"command": "ruok", "error": None}
        assert json.loads(http(admin_port, "/commands/srvr")[2])["server_stats"]["server_state"] == "standalone"
        assert (f"Started AdminServer on address 127.0.0.1, port {admin_port} and command URL /commands"
                in server.logs())
    finally:
        server.stop()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", admin_port)) != 0


def test_python_m_zkref_exits_4_when_the_admin_port_is_taken(tmp_path):
    """With `admin.serverPort` taken, `python -m zkref zoo.cfg` stops before serving with exit code 4 and
    `Unable to start AdminServer, exiting abnormally` on stderr, as Java's QuorumPeerMain does.
    Reference: Java ZooKeeperServerMain.main (ExitCode.ERROR_STARTING_ADMIN_SERVER), JettyAdminServer.start"""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0)); holder.listen()
        server = _zkref_process(tmp_path, holder.getsockname()[1])
        try:
            outcome = wait_for(lambda: ("exited" if server.proc.poll() is not None else
                                        "serving" if "Mode:" in four_letter_word(server.client_port, "srvr") else None),
                               30, 0.1, "zkref to exit or serve")
            assert outcome == "exited", "zkref served although its AdminServer port was taken"
            assert server.proc.returncode == 4
            assert "Unable to start AdminServer, exiting abnormally" in server.logs()
            assert f"port {holder.getsockname()[1]} and command URL /commands" in server.logs()
        finally:
            server.stop()


@pytest.mark.java
def test_hash_lists_digests_as_java_does(both):
    """After 128 transactions the tree logs its digest (every DIGEST_LOG_INTERVAL zxids); `hash` lists the
    logged digests as objects with Java's field names and order, and the `hash` four-letter word prints one
    `<zxid hex>: <digest>` line per digest.
    Reference: Java Commands.DigestCommand, DataTree.logZxidDigest/getDigestLog, DigestCommand (4lw)"""
    java, zkref = both
    for s in (java, zkref):
        zk = KazooClient(f"127.0.0.1:{s.client_port}", timeout=10)
        zk.start(timeout=15)
        try:
            zk.create("/h", b"")
            for i in range(130):
                zk.create(f"/h/n{i}", b"x")
        finally:
            zk.stop(); zk.close()
    j, z = (json.loads(http(s.admin_port, "/commands/hash")[2]) for s in (java, zkref))
    assert j["digests"] and z["digests"], (j, z)
    assert [list(d) for d in z["digests"]] == [list(d) for d in j["digests"]]
    assert shape(z) == shape(j)
    lines = [four_letter_word(s.client_port, "hash") for s in (java, zkref)]
    for text in lines:
        assert re.fullmatch(r"([0-9a-f]+: -?\d+\n)+", text), text


@pytest.mark.java
def test_slow_fsyncs_count_in_server_stats_as_javas(java_zk, zkref_zk):
    """FileTxnLog.commit counts every fsync slower than zookeeper.fsync.warningthresholdms (here -1 ms: every one)
    in the ServerStats of the server that set itself on the log (ZooKeeperServer's constructor), logs Java's
    warning for each, and `stats` shows the count as server_stats.fsync_threshold_exceed_count; `stat_reset`
    leaves it. One session and five creates are six commits, one fsync each.
    Reference: FileTxnLog.commit (incrementFsyncThresholdExceedCount), FileTxnSnapLog.setServerStats,
    ServerStats.reset, Commands.StatCommand (3.8)."""
    from test_standalone_server import RawClient
    from zkref.jute import CreateRequest
    from zkref.proto import OPEN_ACL_UNSAFE, OpCode
    seen = {}
    for start in (java_zk, zkref_zk):
        port = free_port()
        config = {"admin.enableServer": "true", "admin.serverAddress": "127.0.0.1", "admin.serverPort": port,
                  "fsync.warningthresholdms": "-1"}
        server = start(config, classpath=[SERVLET_API_JAR]) if start is java_zk else start(config)
        count = lambda: json.loads(http(port, "/commands/stats")[2])["server_stats"]["fsync_threshold_exceed_count"]
        wait_for(lambda: http(port, "/commands/ruok")[0] == 200, 30, what="the AdminServer")
        counts = [count()]
        c = RawClient(server.client_port)
        for i in range(5):
            h, _ = c.call(OpCode.create, CreateRequest(path=f"/slow{i}", data=b"", acl=OPEN_ACL_UNSAFE, flags=0))
            assert h.err == 0
        counts.append(count())
        http(port, "/commands/stat_reset")
        counts.append(count())
        c.close()
        seen[server.kind] = (counts, server.logs().count("fsync-ing the write ahead log in"))
    assert seen["java"] == ([0, 6, 6], 6), seen["java"]    # what Java printed
    assert seen["zkref"] == seen["java"], seen


@pytest.mark.java
def test_system_properties_are_names_java_has(both):
    """`system_properties` lists system properties: every name zkref gives is one Java 3.8's JVM gives for the
    same zoo.cfg (zkref has fewer: no JVM internals), and none of Environment.list's rows that are not
    properties — the `os.memory.*` figures, `java.compiler`.
    Reference: Commands.SystemPropertiesCommand (System.getProperties), Environment.list"""
    java, zkref = both
    j = json.loads(http(java.admin_port, "/commands/system_properties")[2])
    z = json.loads(http(zkref.admin_port, "/commands/system_properties")[2])
    assert not any(k.startswith("os.memory.") or k == "java.compiler" for k in j)   # what Java printed
    assert set(z) - set(j) == set()


def _client_views(port: int, admin_port: int, sessions: int = 16) -> tuple[dict, list, list[int]]:
    """Give a server `sessions` sessions with ephemerals and data watches on paths of their own (the same
    requests, in the same order, on either server); the `dump`, `wchc` and `wchp` JSON and the session ids."""
    clients = []
    try:
        for i in range(sessions):
            zk = KazooClient(f"127.0.0.1:{port}", timeout=10)
            zk.start(timeout=15)
            clients.append(zk)
        for i, zk in enumerate(clients):
            for k in range(1 + (i * 7) % 20):                  # up to 19 paths: their HashSets grow past 16
                zk.create(f"/eph-{i}-{k}", b"", ephemeral=True)
            for k in range(1 + (i * 3) % 15):                  # 40 watched paths, most watched by several
                zk.exists(f"/w{(i * 5 + k) % 40}", watch=lambda e: None)
            zk.get(f"/eph-{i}-0", watch=lambda e: None)
        get = lambda n: json.loads(http(admin_port, f"/commands/{n}")[2])   # noqa: E731
        return {n: get(n) for n in ("dump", "wchc", "wchp")}, clients, [zk.client_id[0] for zk in clients]
    except BaseException:
        for zk in clients:
            zk.stop(); zk.close()
        raise


def _in_hash_order(keys: list, hash32, capacity: int) -> bool:
    "True if `keys` go bucket by bucket, as a Java hash table of `capacity` buckets iterates."
    buckets = [((hash32(k) & 0xFFFFFFFF) ^ ((hash32(k) & 0xFFFFFFFF) >> 16)) & (capacity - 1) for k in keys]
    return buckets == sorted(buckets)


def _table_size(n: int, start: int) -> int:
    "The size of a java.util.HashMap made with capacity `start` once it holds `n` keys."
    capacity = 1
    while capacity < start:
        capacity *= 2
    while n > capacity * 3 // 4:
        capacity *= 2
    return capacity


@pytest.mark.java
def test_client_views_list_in_javas_map_order(java_admin, zkref_inproc):
    """`dump`, `watches` and `watches_by_path` list their keys and elements in the order of the Java maps they
    are made of: a new HashMap by session id or path, a `new HashSet<>(paths)` copy, a `new HashSet<Long>(n)`.
    Paths are the same on both servers, so their order is compared with Java's directly; session ids differ,
    so each server's are checked to go bucket by bucket, as a Java hash table iterates.
    Reference: Java WatchManager.getWatches / getWatchesByPath, DataTree.getEphemerals,
    SessionTrackerImpl.getSessionExpiryMap, HashMap.hash"""
    from zkref.snapshots import java_long_hash
    from zkref.znode_basics import java_string_hash
    java = java_admin({"4lw.commands.whitelist": "*"})
    zkref = zkref_inproc({"4lw.commands.whitelist": "*"})
    views, clients = {}, []
    try:
        for name, server in (("java", java), ("zkref", zkref)):
            got, cs, sids = _client_views(server.client_port, server.admin_port)
            clients += cs
            index = {str(sid): i for i, sid in enumerate(sids)} | {sid: i for i, sid in enumerate(sids)}
            views[name] = got, sids, index
        by_client = {}
        for name, (got, sids, index) in views.items():
            wchp = got["wchp"]["path_to_session_ids"]
            assert _in_hash_order(list(wchp), java_string_hash, _table_size(len(wchp), 16)), name
            for ids in wchp.values():
                assert _in_hash_order(ids, java_long_hash, _table_size(len(ids), max(int(len(ids) / 0.75) + 1, 16))), name
            by_client[name] = {
                "wchp": [(p, sorted(index[s] for s in ids)) for p, ids in wchp.items()],
                "wchc": {index[s]: paths for s, paths in got["wchc"]["session_id_to_watched_paths"].items()},
                "ephemerals": {index[s]: paths for s, paths in got["dump"]["session_id_to_ephemeral_paths"].items()}}
            for key in ("session_id_to_watched_paths", "session_id_to_ephemeral_paths"):
                owners = [int(s) for s in got["wchc" if "watched" in key else "dump"][key]]
                assert sorted(owners) == sorted(sids), (name, key)
                assert _in_hash_order(owners, java_long_hash, _table_size(len(owners), 16)), (name, key)
            for ids in got["dump"]["expiry_time_to_session_ids"].values():
                assert _in_hash_order(ids, java_long_hash, _table_size(len(ids), 16)), name
        assert by_client["zkref"] == by_client["java"]
        assert len(by_client["java"]["wchp"]) == 40 + 16 and max(map(len, by_client["java"]["ephemerals"].values())) == 19
    finally:
        for zk in clients:
            zk.stop(); zk.close()
