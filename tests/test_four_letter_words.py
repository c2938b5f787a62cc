"""Four-letter words: zkref's answers have the lines, keys and formats of a real Java 3.8 server's given the
same workload (values differ), with the whitelist on and off, while not serving, and `python -m zkref status`.

zkref runs in-process (see `InProcessZkref` in test_admin_http.py) with chapter 06's `run_four_letter_word`
and the quorum-aware words of chapter 09a installed, as `ZooKeeperServerMain` installs them.
"""
from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import JavaZooKeeper, ZkrefServer, java_available, four_letter_word, free_port, wait_for
from test_admin_http import InProcessZkref, workload, write_cfg, zkref_inproc  # noqa: F401 (fixture)
from zkref.config import ServerConfig
from zkref.persistence import FileTxnSnapLog, StorageOptions
from zkref.server.admin import install_four_letter_words
from zkref.server.cnxn import FOUR_LETTER_WORDS, ServerCnxnFactory
from zkref.server.processors import ZooKeeperServer

ROOT = Path(__file__).resolve().parent.parent
NOT_SERVING = "This ZooKeeper instance is not currently serving requests"


# --------------------------------------------------------------------------------------------- helpers
def send_word(port: int, payload: bytes) -> str:
    "Write raw bytes (a word, maybe with an argument) to a client port; the whole answer."
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(payload)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def line_shape(line: str) -> str:
    "A line with its values replaced by placeholders, its keys and punctuation kept."
    line = re.sub(r"^(Zookeeper version: |zookeeper\.version=|zk_version\t).*", r"\1<version>", line)
    line = re.sub(r"\w{3} \w{3} \d\d \d\d:\d\d:\d\d \w+ \d{4}", "<date>", line)
    line = re.sub(r"/[\d.]+:\d+", "/<addr>", line)
    line = re.sub(r"\[([01])\]\(", lambda m: "[ops=" + ("zero" if m[1] == "0" else "one") + "](", line)
    line = re.sub(r"lop=\w+", "lop=<op>", line)
    line = re.sub(r"0x[0-9a-f]+", "0x<hex>", line)
    line = re.sub(r"-?\d+(\.\d+)?(E-?\d+)?", "<n>", line)
    return line


def drop_empty_session_buckets(head: str) -> str:
    """`dump`'s session part without expiry buckets that list no session, and with the bucket count to match.
    ExpiryQueue keeps a bucket a session was just moved out of until that bucket's time passes, so whether a
    server lists such a "0 expire at …:" line depends on when its tick falls (see the test below)."""
    lines = head.split("\n")
    kept = [line for i, line in enumerate(lines)
            if not (re.fullmatch(r"\d+ expire at .+:", line)
                    and not (i + 1 < len(lines) and lines[i + 1].startswith("\t")))]
    buckets = sum(1 for line in kept if re.fullmatch(r"\d+ expire at .+:", line))
    return re.sub(r"Session Sets \(\d+\)", f"Session Sets ({buckets})", "\n".join(kept))


def text_shape(text: str) -> list[str]:
    "Shaped lines, with each run of list lines (` /client…`, `\\t…`) sorted: Java's order there is a hash order."
    out, run = [], []
    for line in text.split("\n"):
        shaped = line_shape(line)
        if line.startswith((" /", "\t")):
            run.append(shaped)
            continue
        out += sorted(run) + [shaped]
        run = []
    return out + sorted(run)


def keys(text: str, sep: str) -> list[str]:
    return [l.split(sep, 1)[0] for l in text.splitlines() if sep in l]


@pytest.fixture
def both(java_zk, zkref_inproc):
    "A Java 3.8 server and a zkref server with `4lw.commands.whitelist=*` and the same client workload."
    java = java_zk({"4lw.commands.whitelist": "*"})
    zkref = zkref_inproc({"4lw.commands.whitelist": "*"}, admin=False)
    clients = [workload(java.client_port), workload(zkref.client_port)]
    yield java, zkref
    for c in clients:
        c.stop(); c.close()


class NotServingZkref:
    "A zkref client port whose ZooKeeperServer was created but never started (as while a database loads)."

    def __init__(self, workdir: Path, config: dict):
        config = {"dataDir": workdir / "data", "clientPort": free_port(), "clientPortAddress": "127.0.0.1", **config}
        self.client_port = int(config["clientPort"])
        self.config = ServerConfig().parse(str(write_cfg(workdir, config)))
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.factory = None

    async def _start(self) -> None:
        c = self.config
        zks = ZooKeeperServer(FileTxnSnapLog(c.data_log_dir, c.data_dir, StorageOptions.from_properties(c.system_properties)),
                              c.tick_time, c.min_session_timeout, c.max_session_timeout, -1, c)
        self.factory = ServerCnxnFactory()
        await self.factory.configure(c.client_port_address, c.max_client_cnxns, -1, False, c)
        await self.factory.start()
        self.factory.set_zookeeper_server(zks)
        install_four_letter_words(self.factory)

    def __enter__(self) -> "NotServingZkref":
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)
        return self

    def __exit__(self, *exc) -> None:
        if self.factory is not None:
            asyncio.run_coroutine_threadsafe(self.factory.shutdown(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


# --------------------------------------------------------------------------------------------- tests
@pytest.mark.java
def test_every_word_has_javas_lines(both):
    """After the same workload (a session, an ephemeral node, three watches), every four-letter word answers
    with Java's lines: the same fixed texts (`imok`, `rw`, `306`, the reset sentences), the same line formats
    with values replaced (`srvr`, `stat`, `cons`, `dump`, `wchs`, `wchc`, `wchp`, `dirs`, `hash`), the same keys
    in the same order (`conf`, `envi`), and nothing for a four-byte word that is not a command.
    Reference: Java server/command/* (each FourLetterCommand.commandRun), NIOServerCnxn.checkFourLetterWord"""
    java, zkref = both
    for word in [w for w in FOUR_LETTER_WORDS if w not in ("crst", "srst", "mntr", "stmk")] + ["abcd", "crst", "srst"]:
        j, z = four_letter_word(java.client_port, word), four_letter_word(zkref.client_port, word)
        if word in ("conf", "envi"):
            assert keys(z, "=") == keys(j, "="), f"{word}:\njava  {j!r}\nzkref {z!r}"
        elif word == "dump":
            j_head, j_cnxns = j.split("Connections dump:\n")
            z_head, z_cnxns = z.split("Connections dump:\n")
            assert (text_shape(drop_empty_session_buckets(z_head)) == text_shape(drop_empty_session_buckets(j_head))
                    ), f"java  {j!r}\nzkref {z!r}"
            # Java can list an expiry bucket that has just emptied ("0 expire at …:" with no lines under it)
            sets = r"Connections Sets \(\d+\)/\(\d+\):\n(\d+ expire at .+:\n(\tip: /[\d.]+:\d+ sessionId: 0x[0-9a-f]+\n)*)+"
            assert re.fullmatch(sets, j_cnxns) and re.fullmatch(sets, z_cnxns), f"java  {j!r}\nzkref {z!r}"
        else:
            assert text_shape(z) == text_shape(j), f"{word}:\njava  {j!r}\nzkref {z!r}"


@pytest.mark.java
def test_dump_keeps_an_emptied_session_bucket_until_its_time(both):
    """A request moves its session to a later expiry bucket; the bucket it left stays, empty, until its time,
    so `dump` lists "0 expire at …:". Java and zkref both show it.
    Reference: ExpiryQueue.remove/update ("they'll eventually be removed when they expire"), ExpiryQueue.dump"""
    from kazoo.client import KazooClient
    for server in both:
        zk = KazooClient(f"127.0.0.1:{server.client_port}", timeout=4)   # a 4 s session: 2 ticks of 2 s
        zk.start()
        try:
            def emptied_bucket_listed():
                zk.exists("/")                       # touches the session: into the bucket of now + 4 s
                return re.search(r"^0 expire at ", four_letter_word(server.client_port, "dump"), re.M)
            wait_for(emptied_bucket_listed, 15, 0.1, what=f"an emptied expiry bucket in dump on port {server.client_port}")
        finally:
            zk.stop(); zk.close()


def test_stat_marks_the_asking_connection(both):
    """`stat` and `cons` list the connection that asks with interest ops `[0]` and idle clients with `[1]`,
    one client per line and one empty line after the list.
    Reference: Java StatCommand, ConsCommand, ServerCnxn.dumpConnectionInfo"""
    java, zkref = both
    for s in (java, zkref):
        stat = four_letter_word(s.client_port, "stat")
        clients = stat.split("Clients:\n", 1)[1].split("\n\n", 1)[0].splitlines()
        assert sorted(c.split("(")[0][-3:] for c in clients) == ["[0]", "[1]"], stat
        cons = four_letter_word(s.client_port, "cons")
        assert cons.endswith(")\n\n") and sorted(l.split("(")[0][-3:] for l in cons.splitlines() if l) == ["[0]", "[1]"]


@pytest.mark.java
def test_mntr_lines_are_javas_format(both):
    """`mntr` prints `zk_<key>\\t<value>` lines, `zk_version` and `zk_server_state` first; every key zkref
    prints is a key Java prints, and numbers print as Java prints longs and doubles.
    Reference: Java MonitorCommand.print, ZooKeeperServer.dumpMonitorValues"""
    java, zkref = both
    j, z = four_letter_word(java.client_port, "mntr"), four_letter_word(zkref.client_port, "mntr")
    assert keys(z, "\t")[:2] == keys(j, "\t")[:2] == ["zk_version", "zk_server_state"]
    assert set(keys(z, "\t")) <= set(keys(j, "\t")), sorted(set(keys(z, "\t")) - set(keys(j, "\t")))
    java_values = dict(l.split("\t", 1) for l in j.splitlines())
    for line in z.splitlines():
        k, v = line.split("\t", 1)
        assert line_shape(v) == line_shape(java_values[k]) or k == "zk_version", line


@pytest.mark.java
def test_stmk_reads_its_argument_and_gtmk_reports_it(both):
    """`stmk` followed by an 8-byte long sets the trace mask and prints it; `gtmk` prints the mask (306 by
    default); `stmk` without its 8 bytes prints nothing.
    Reference: Java NIOServerCnxn.checkFourLetterWord (setTraceMaskCmd), SetTraceMaskCommand, TraceMaskCommand"""
    java, zkref = both
    for s in (java, zkref):
        assert four_letter_word(s.client_port, "gtmk") == "306"
        assert send_word(s.client_port, b"stmk" + (4).to_bytes(8, "big")) == "4"
        assert four_letter_word(s.client_port, "gtmk") == "4"
        assert send_word(s.client_port, b"stmk" + (306).to_bytes(8, "big")) == "306"
        assert send_word(s.client_port, b"stmk") == ""


@pytest.mark.java
@pytest.mark.parametrize("whitelist", [None, "ruok, stat ,conf", "mntr,nope"])
def test_whitelist_refusal_is_javas(java_zk, zkref_inproc, whitelist):
    """Only whitelisted words run (`srvr` always; none else when `4lw.commands.whitelist` is unset; names are
    trimmed); every other word answers `<word> is not executed because it is not in the whitelist.` and a
    newline — zkref answers exactly what Java answers, word by word.
    Reference: ZooKeeper Admin Guide, "4lw.commands.whitelist"; Java FourLetterCommands.isEnabled, NopCommand"""
    config = {} if whitelist is None else {"4lw.commands.whitelist": whitelist}
    java = java_zk(dict(config))
    zkref = zkref_inproc(dict(config), admin=False)
    for word in FOUR_LETTER_WORDS:
        if word == "stmk":
            continue
        j, z = four_letter_word(java.client_port, word), four_letter_word(zkref.client_port, word)
        refusal = f"{word} is not executed because it is not in the whitelist.\n"
        assert (z == refusal) == (j == refusal), f"{word}: java {j!r} zkref {z!r}"
        if j == refusal:
            assert z == j


@pytest.mark.java
def test_not_serving_answers_are_javas(java_zk, tmp_path):
    """While the client port is open but no server is serving (a quorum peer still LOOKING; a standalone
    server loading its database), each word answers as Java's command does: most print `This ZooKeeper
    instance is not currently serving requests` and a newline, `hash` the sentence alone, `isro` `null`,
    and `ruok`, `envi`, `gtmk` answer as usual.
    Reference: Java AbstractFourLetterCommand.isZKServerRunning and each command's commandRun"""
    ports = [free_port() for _ in range(4)]
    java = java_zk({"4lw.commands.whitelist": "*", "initLimit": 5, "syncLimit": 2,
                    "server.1": f"127.0.0.1:{ports[0]}:{ports[1]}", "server.2": f"127.0.0.1:{ports[2]}:{ports[3]}"},
                   myid=1, wait=False)
    wait_for(lambda: four_letter_word(java.client_port, "ruok") == "imok", 30, 0.1, "the Java peer's client port")
    with NotServingZkref(tmp_path / "zkref", {"4lw.commands.whitelist": "*"}) as zkref:
        for word in FOUR_LETTER_WORDS:
            if word == "stmk":
                continue
            j, z = four_letter_word(java.client_port, word), four_letter_word(zkref.client_port, word)
            if word == "envi":
                assert keys(z, "=") == keys(j, "=")
            else:
                assert z == j, f"{word}: java {j!r} zkref {z!r}"
        assert four_letter_word(zkref.client_port, "srvr") == NOT_SERVING + "\n"
        assert four_letter_word(zkref.client_port, "isro") == "null"


def _status(cfg: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zkref", "status", str(cfg)], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


@pytest.mark.java
def test_python_m_zkref_status(java_zk, tmp_path):
    """`python -m zkref status zoo.cfg` asks the configured client port with `srvr`, as `zkServer.sh status`
    does, and prints the client port line and `Mode: standalone` (exit 0) for a zkref and for a Java
    standalone server; with nothing listening it prints `Error contacting service. It is probably not
    running.` and exits 1.
    Reference: zkServer.sh status; Java StatCommand ("Mode: standalone")"""
    zkref = ZkrefServer(tmp_path / "zkref", {"admin.enableServer": "false"}).start()
    try:
        java = java_zk()
        for port, cfg in ((zkref.client_port, zkref.cfg_path), (java.client_port, java.cfg_path)):
            out = _status(cfg)
            assert out.returncode == 0, out.stderr
            assert out.stdout == (f"Client port found: {port}. Client address: 127.0.0.1. Client SSL: false.\n"
                                  "Mode: standalone\n")
    finally:
        zkref.stop()
    out = _status(zkref.cfg_path)
    assert out.returncode == 1
    assert out.stdout.splitlines()[-1] == "Error contacting service. It is probably not running."


@pytest.mark.parametrize("whitelist", [None, "ruok, stat ,conf", "*"])
def test_white_list_lines_are_javas(tmp_path, whitelist):
    """At the first four-letter word a server process answers (here the fixtures' `srvr`), Java logs the known
    words (its `HashMap<Integer, String>`: `code=word` in that map's order) and the enabled ones (its
    `HashSet<String>`, in that set's order), once: later words log only `Processing … command`. zkref logs the
    same two lines, once, before the first `Processing` line.
    Reference: Java FourLetterCommands.isEnabled (whiteListInitialized, cmd2String, whiteListedCommands)"""
    if not java_available():
        pytest.skip("needs Debian's Java ZooKeeper 3.8")
    config = {} if whitelist is None else {"4lw.commands.whitelist": whitelist}
    found = {}
    for cls in (JavaZooKeeper, ZkrefServer):
        server = cls(tmp_path / cls.kind, dict(config))
        try:
            server.start()
            for word in ("ruok", "stat", "srvr"):
                four_letter_word(server.client_port, word)
        finally:
            server.stop()
        # (class, message) of the FourLetterCommands lines and of the `Processing … command` lines, in log order
        lines = [(m[1], m[2]) for m in (re.search(r":(\w+)@\d+\] - (.*)$", l) for l in server.logs().splitlines())
                 if m and (m[1] == "FourLetterCommands" or m[2].startswith("Processing "))]
        assert [c for c, _ in lines[:3]] == ["FourLetterCommands", "FourLetterCommands", "NIOServerCnxn"], lines[:3]
        found[cls.kind] = [e for e in lines if e[0] == "FourLetterCommands"]
    assert len(found["java"]) == 2, found["java"]
    assert found["zkref"] == found["java"]


@pytest.mark.java
def test_envi_gives_the_machines_values_as_the_jvm_does(both):
    """`envi`'s machine rows are the JVM's: `os.name` and `os.version` as uname gives them, `os.arch` as OpenJDK
    names the machine (amd64 on x86_64), and `user.name` from the password database, whatever $USER says (a
    service manager often leaves it unset). Both servers run on this machine as this user, so the rows are equal.
    Reference: Java Environment.list, EnvCommand; OpenJDK's os.arch and user.name (java_props_md.c)."""
    java, zkref = both
    rows = lambda port: dict(line.split("=", 1) for line in four_letter_word(port, "envi").splitlines() if "=" in line)
    keys = ("os.name", "os.arch", "os.version", "user.name")
    j, z = rows(java.client_port), rows(zkref.client_port)
    assert {k: z[k] for k in keys} == {k: j[k] for k in keys}


@pytest.mark.java
def test_watch_dumps_list_paths_in_javas_hash_order(java_zk, zkref_zk):
    """`wchp` and `wchc` print the paths as Java's tables hold them — a HashMap<String, Set<Watcher>> by path, a
    HashSet<String> per watcher — so in the order of the strings' hashCode, not the order the watches came in.
    One session watches twelve paths (some then fire and are gone); both dumps list the rest as Java 3.8 does.
    Reference: WatchManager.addWatch/triggerWatch/dumpWatches (watchTable, watch2Paths), java.util.HashMap."""
    from test_standalone_server import RawClient
    from zkref.jute import CreateRequest, GetDataRequest, SetDataRequest
    from zkref.proto import OPEN_ACL_UNSAFE, OpCode
    paths = ["/zz", "/w10", "/w9", "/a", "/a-b", "/b", "/config-x", "/m", "/q1", "/q2", "/q10", "/longer"]
    seen = {}
    for start in (java_zk, zkref_zk):
        server = start({"4lw.commands.whitelist": "*"})
        c = RawClient(server.client_port)
        for p in paths:
            assert c.call(OpCode.create, CreateRequest(path=p, data=b"", acl=OPEN_ACL_UNSAFE, flags=0))[0].err == 0
        for p in paths:
            assert c.call(OpCode.getData, GetDataRequest(path=p, watch=True))[0].err == 0
        for p in ("/w9", "/q1"):                         # two of them fire, and leave both tables
            assert c.call(OpCode.setData, SetDataRequest(path=p, data=b"x", version=-1))[0].err == 0
        dumps = [four_letter_word(server.client_port, w) for w in ("wchp", "wchc")]
        seen[server.kind] = [re.sub(r"0x[0-9a-f]+", "0xS", d) for d in dumps]
        c.close()
    assert seen["java"][0].count("\t0xS") == len(paths) - 2            # what Java printed
    assert seen["zkref"] == seen["java"], seen


def _ephemerals_section(text: str) -> tuple[list[int], dict[int, list[str]]]:
    "The `dump` answer's `Sessions with Ephemerals` section: the sessions in printed order, and each one's paths."
    owners, paths = [], {}
    for line in text.split("Sessions with Ephemerals (")[1].splitlines()[1:]:
        if line.startswith("0x"):
            owners.append(int(line[2:-1], 16))
            paths[owners[-1]] = []
        elif line.startswith("\t"):
            paths[owners[-1]].append(line[1:])
        else:                                            # "Connections dump:"
            break
    return owners, paths


@pytest.mark.java
def test_dump_lists_ephemeral_owners_in_javas_map_order(java_zk, zkref_zk):
    """`dump` prints the sessions with ephemerals in the order of Java's ConcurrentHashMap<Long, HashSet<String>>:
    bucket by bucket of a table that doubled when three quarters full (20 owners: 32 buckets) and never shrinks,
    so after 14 of the sessions close the 6 left are still in the order of 32 buckets (the test keeps 6 whose
    order in 16 buckets would differ: session ids count up from a multiple of 65,536, so 20 of them reach both
    halves of 32 buckets). Each session's paths print as Java's
    HashSet<String> holds them. Session ids differ between the servers, so their order is checked against the
    table's buckets on both; the paths are compared with Java's directly.
    Reference: Java DataTree.dumpEphemerals, ConcurrentHashMap.addCount/transfer, HashSet"""
    from test_standalone_server import RawClient
    from zkref.jute import CreateRequest
    from zkref.proto import OPEN_ACL_UNSAFE, OpCode
    from zkref.snapshots import java_long_hash
    spread = lambda sid: java_long_hash(sid) ^ (java_long_hash(sid) >> 16)   # noqa: E731  HashMap.spread
    seen = {}
    for start in (java_zk, zkref_zk):
        server = start({"4lw.commands.whitelist": "*"})
        clients = [RawClient(server.client_port) for _ in range(20)]
        index = {c.session_id & (2**64 - 1): i for i, c in enumerate(clients)}
        for i, c in enumerate(clients):
            for k in range(1 + (i * 7) % 20):
                req = CreateRequest(path=f"/eph-{i}-{k}", data=b"", acl=OPEN_ACL_UNSAFE, flags=1)  # EPHEMERAL
                assert c.call(OpCode.create, req)[0].err == 0
        owners, paths = _ephemerals_section(four_letter_word(server.client_port, "dump"))
        assert sorted(index[s] for s in owners) == list(range(20))
        assert [spread(s) & 31 for s in owners] == sorted(spread(s) & 31 for s in owners), server.kind
        seen[server.kind] = {index[s]: ps for s, ps in paths.items()}
        # keep one session high in 32 buckets but low in 16 and one the other way round, if there are such
        by_bucket = sorted(clients, key=lambda c: spread(c.session_id & (2**64 - 1)) & 31)
        high = [c for c in by_bucket if spread(c.session_id & (2**64 - 1)) & 16]
        low = [c for c in by_bucket if not spread(c.session_id & (2**64 - 1)) & 16]
        keep = [high[0], low[-1]] + [c for c in clients if c not in (high[0], low[-1])][:4]
        kept = sorted(spread(c.session_id & (2**64 - 1)) for c in keep)
        assert sorted(kept, key=lambda h: h & 31) != sorted(kept, key=lambda h: h & 15)   # 16 buckets would differ
        for c in clients:
            if c not in keep:
                assert c.call(OpCode.closeSession)[0].err == 0
        owners, paths = _ephemerals_section(four_letter_word(server.client_port, "dump"))
        assert sorted(owners) == sorted(c.session_id & (2**64 - 1) for c in keep)
        assert [spread(s) & 31 for s in owners] == sorted(spread(s) & 31 for s in owners), server.kind
        assert {index[s]: ps for s, ps in paths.items()} == {i: seen[server.kind][i] for i in map(index.get, owners)}
        for c in keep:
            c.close()
    assert seen["zkref"] == seen["java"]
