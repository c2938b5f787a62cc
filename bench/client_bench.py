"""Client-side benchmark of the standalone server, side by side with Java ZooKeeper 3.8.

    .venv/bin/python bench/client_bench.py                    # both servers, 1/8/32 sessions
    .venv/bin/python bench/client_bench.py --ops 500 --levels 1,8 --only zkref

For each server (started fresh, forceSync=yes, on 127.0.0.1 and a free port) it prints the startup time
(process start to `srvr` answering; the median of --starts fresh starts), the resident set size after the run, and for each operation
(create, getData, setData, exists, getChildren of a node with 1,000 children as the issue asks (`--children`),
delete) and each number of concurrent sessions the
throughput (ops/s), the p50/p99 latency of request/reply round trips (synchronous, or pipelined with --depth) and
the server's CPU time per operation (user + system, all threads, from /proc: what each operation costs the server;
a second table splits it into user-space and kernel time, beside this client's own CPU per operation). With both servers it
ends with the issue's targets (reads >= 1.0x Java's ops/s, writes >= 0.8x, p50 at 1 session <= Java's,
startup and memory <= 0.5x), each marked met or NOT met for this run.

zkref runs as `python -m zkref` does: on uvloop when it is installed (`ZKREF_EVENT_LOOP=asyncio` in the
environment measures the standard loop), with its bytecode compiled first as an installed package has it.
`--warmup N` first runs every op at every level N times unmeasured (default 1), so both servers are measured
warm: Java's JIT compiles its hot paths over the first thousands of requests, and a cold JVM flatters zkref.
`--repeat N` measures each op N times and shows the median run (this VM is noisy). `--depth N` pipelines:
each session keeps N requests outstanding (the latency is then from sending a request to its reply).
`--floor` also measures bench/python_floor.py, a CPython server that answers without doing anything: the ceiling
of any Python code path on this machine with this client, printed as a ratio to Java's reads.

The client is asyncio with raw sockets (zkref.proto encodes the requests), so client overhead is the same for
both servers. The machine has 2 cores shared with the client: read the figures as relative, not absolute.
This is a measurement script: it asserts nothing.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from conftest import JAVA_CLASSPATH, JAVA_LOG4J, four_letter_word, free_port, java_available  # noqa: E402
from zkref.jute import (ConnectRequest, CreateRequest, DeleteRequest, ExistsRequest, GetChildrenRequest,  # noqa: E402
                        GetDataRequest, ReplyHeader, SetDataRequest)
from zkref.proto import OPEN_ACL_UNSAFE, OpCode, encode_request, frame  # noqa: E402

OPS = ("create", "getData", "setData", "exists", "getChildren", "delete")


class Server:
    def __init__(self, kind: str, workdir: Path):
        self.kind, self.workdir = kind, workdir
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        cfg = (f"tickTime=2000\ndataDir={workdir / 'data'}\nclientPort={self.port}\nclientPortAddress=127.0.0.1\n"
               f"maxClientCnxns=0\nadmin.enableServer=false\nforceSync=yes\n")
        (workdir / "zoo.cfg").write_text(cfg)
        (workdir / "log4j.properties").write_text(JAVA_LOG4J.replace("INFO", "WARN"))
        self.proc = None

    def start(self) -> float:
        if self.kind == "floor":
            cmd, env = [sys.executable, str(ROOT / "bench" / "python_floor.py"), str(self.port)], dict(os.environ)
        elif self.kind == "java":
            cmd = ["java", "-Xmx512m", f"-Dlog4j.configuration=file:{self.workdir / 'log4j.properties'}",
                   "-Dzookeeper.forceSync=yes", "-cp", JAVA_CLASSPATH,
                   "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(self.workdir / "zoo.cfg")]
            env = dict(os.environ)
        else:
            cmd = [sys.executable, "-m", "zkref", str(self.workdir / "zoo.cfg")]
            env = dict(os.environ, PYTHONPATH=str(ROOT), ZOO_LOG_LEVEL="WARN")
        log = open(self.workdir / "server.log", "ab")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir)
        deadline = t0 + 60
        while "Mode:" not in four_letter_word(self.port, "srvr", timeout=1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.kind} did not start; see {self.workdir / 'server.log'}")
            time.sleep(0.01)
        return time.monotonic() - t0

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class Session:
    "One raw-socket session doing synchronous round trips."

    async def open(self, port: int) -> "Session":
        self.r, self.w = await asyncio.open_connection("127.0.0.1", port)
        self.w.write(frame(ConnectRequest(time_out=30000, passwd=bytes(16)).to_bytes() + b"\0"))
        await self.frame_in()
        self.xid = 0
        return self

    async def frame_in(self) -> bytes:
        n = int.from_bytes(await self.r.readexactly(4), "big")
        return await self.r.readexactly(n)

    async def call(self, op: int, record) -> int:
        self.xid += 1
        self.w.write(encode_request(self.xid, op, record))
        while True:
            b = await self.frame_in()
            h = ReplyHeader.from_bytes(b)
            if h.xid != -1:
                return h.err

    def close(self):
        self.w.close()


def request(op: str, path: str):
    return {"create": (OpCode.create, CreateRequest(path=path, data=b"x" * 32, acl=OPEN_ACL_UNSAFE, flags=0)),
            "getData": (OpCode.getData, GetDataRequest(path=path, watch=False)),
            "setData": (OpCode.setData, SetDataRequest(path=path, data=b"y" * 32, version=-1)),
            "exists": (OpCode.exists, ExistsRequest(path=path, watch=False)),
            "getChildren": (OpCode.getChildren, GetChildrenRequest(path=path, watch=False)),
            "delete": (OpCode.delete, DeleteRequest(path=path, version=-1))}[op]


async def pipelined(c: Session, requests, depth: int, lat: list[float]) -> None:
    "Send `requests` keeping up to `depth` outstanding; record each one's send-to-reply time (replies come in order)."
    window = asyncio.Semaphore(depth)
    sent: collections.deque[tuple[float, str]] = collections.deque()
    total = len(requests)

    async def replies():
        try:
            for _ in range(total):
                while True:
                    h = ReplyHeader.from_bytes(await c.frame_in())
                    if h.xid != -1:
                        break
                t, path = sent.popleft()
                lat.append(time.perf_counter() - t)
                window.release()
                if h.err:
                    raise RuntimeError(f"{path}: error {h.err}")
        finally:                 # an error or a dropped connection: wake the sender so it stops too
            for _ in range(depth):
                window.release()

    reader = asyncio.ensure_future(replies())
    for op, record, path in requests:
        await window.acquire()
        if reader.done():
            break
        c.xid += 1
        sent.append((time.perf_counter(), path))
        c.w.write(encode_request(c.xid, op, record))
        if c.w.transport.get_write_buffer_size() > 65536:
            await c.w.drain()
    await reader


def cpu_split(pid: int) -> tuple[float, float]:
    "User and system (kernel) CPU time of a process, all its threads (from /proc/<pid>/stat), in seconds."
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def cpu_seconds(pid: int) -> float:
    "User + system CPU time of a process, all its threads (from /proc/<pid>/stat)."
    return sum(cpu_split(pid))


CHILDREN_PARENT = "/bench-children"


async def ensure_children(c: Session, children: int) -> None:
    "Give the server CHILDREN_PARENT with `children` children, once (unmeasured; pipelined)."
    if await c.call(*request("exists", CHILDREN_PARENT)) == 0:
        return
    await c.call(*request("create", CHILDREN_PARENT))
    paths = [f"{CHILDREN_PARENT}/c{i:05d}" for i in range(children)]
    await pipelined(c, [(*request("create", path), path) for path in paths], 64, [])


async def run_level(port: int, pid: int, sessions: int, ops_total: int, depth: int = 1,
                    children: int = 1000) -> dict[str, tuple]:
    """For each op: (ops/s, p50 ms, p99 ms, server CPU µs/op, of which user and kernel, client CPU µs/op) with
    `sessions` sessions, `depth` requests outstanding in each."""
    clients = [await Session().open(port) for _ in range(sessions)]
    root = f"/bench-{sessions}-{time.monotonic_ns()}"
    await clients[0].call(*request("create", root))
    await ensure_children(clients[0], children)
    per = max(1, ops_total // sessions)
    out = {}
    for op in OPS:
        lat: list[float] = []

        async def worker(ci: int, c: Session):
            if depth > 1:
                paths = [f"{root}/s{ci}-{i}" if op != "getChildren" else CHILDREN_PARENT for i in range(per)]
                return await pipelined(c, [(*request(op, path), path) for path in paths], depth, lat)
            for i in range(per):
                path = f"{root}/s{ci}-{i}" if op != "getChildren" else CHILDREN_PARENT
                t = time.perf_counter()
                err = await c.call(*request(op, path))
                lat.append(time.perf_counter() - t)
                if err:
                    raise RuntimeError(f"{op} {path}: error {err}")

        t0, (usr0, sys0), client0 = time.perf_counter(), cpu_split(pid), time.process_time()
        await asyncio.gather(*(worker(i, c) for i, c in enumerate(clients)))
        elapsed, (usr1, sys1), client = time.perf_counter() - t0, cpu_split(pid), time.process_time() - client0
        lat.sort()
        per_op = lambda seconds: seconds / len(lat) * 1e6   # noqa: E731
        out[op] = (len(lat) / elapsed, lat[len(lat) // 2] * 1000, lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
                   per_op(usr1 - usr0 + sys1 - sys0), per_op(usr1 - usr0), per_op(sys1 - sys0), per_op(client))
    await clients[0].call(*request("delete", root))
    for c in clients:
        c.close()
    return out


def median_run(port: int, pid: int, sessions: int, ops: int, repeat: int, depth: int = 1,
               children: int = 1000) -> dict[str, tuple]:
    "run_level `repeat` times; for each op the run with the median throughput."
    runs = [asyncio.run(run_level(port, pid, sessions, ops, depth, children)) for _ in range(max(1, repeat))]
    return {op: sorted((r[op] for r in runs), key=lambda t: t[0])[len(runs) // 2] for op in OPS}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", type=int, default=2000, help="operations per op type and concurrency level")
    ap.add_argument("--levels", default="1,8,32", help="numbers of concurrent sessions")
    ap.add_argument("--only", choices=("zkref", "java", "floor"), help="benchmark one server only")
    ap.add_argument("--floor", action="store_true",
                    help="also measure bench/python_floor.py: a do-nothing CPython server, the ceiling of any Python code path")
    ap.add_argument("--starts", type=int, default=5, help="fresh starts per server; the median startup is shown")
    ap.add_argument("--repeat", type=int, default=1,
                    help="measure every op and level this many times; the median ops/s (and its latencies) is shown")
    ap.add_argument("--warmup", type=int, default=1,
                    help="unmeasured rounds of every op at every level before measuring (warms Java's JIT)")
    ap.add_argument("--depth", type=int, default=1,
                    help="requests each session keeps outstanding (pipelining); 1 = synchronous round trips")
    ap.add_argument("--children", type=int, default=1000,
                    help="children of the node getChildren reads (the issue's 1,000; until session 18 it read the "
                         "node the creates had filled, --ops children)")
    args = ap.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",")]
    # An installed package has its bytecode compiled (pip does it); this checkout may not (and
    # PYTHONDONTWRITEBYTECODE may be set), so compile it once rather than measure the compiler at every start.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "zkref")], check=True)
    kinds = [args.only] if args.only else ["zkref"] + (["java"] if java_available() else []) + (["floor"] if args.floor else [])
    results = {}
    with tempfile.TemporaryDirectory(prefix="client_bench-") as tmp:
        for kind in kinds:
            startups = []
            for i in range(max(1, args.starts)):          # each start on an empty data directory
                srv = Server(kind, Path(tmp) / f"{kind}-{i}")
                try:
                    startups.append(srv.start())
                    if i == max(1, args.starts) - 1:          # the last server is the one measured
                        for _ in range(args.warmup):
                            for lv in levels:
                                asyncio.run(run_level(srv.port, srv.proc.pid, lv, args.ops, args.depth, args.children))
                        res = {lv: median_run(srv.port, srv.proc.pid, lv, args.ops, args.repeat, args.depth, args.children)
                               for lv in levels}
                        results[kind] = (sorted(startups)[len(startups) // 2], srv.rss_mb(), res)
                finally:
                    srv.stop()
    # the interpreter's build changes zkref's figures by 10 % or more (site/benchmark-history.md, "Which python3")
    print(f"zkref runs on Python {sys.version.split()[0]}, {os.path.realpath(sys.executable)}")
    print(f"{'':24}" + "".join(f"{k:>44}" for k in results))
    print(f"{'startup (s)':24}" + "".join(f"{v[0]:>44.2f}" for v in results.values()))
    print(f"{'RSS after run (MiB)':24}" + "".join(f"{v[1]:>44.1f}" for v in results.values()))
    print(f"{'op @ sessions':24}" + "".join(f"{'ops/s   p50 ms   p99 ms  cpu us/op':>44}" for _ in results))
    for lv in levels:
        for op in OPS:
            row = f"{op + ' @ ' + str(lv):24}"
            for v in results.values():
                ops_s, p50, p99, cpu = v[2][lv][op][:4]
                row += f"{ops_s:>16.0f}{p50:>9.2f}{p99:>9.2f}{cpu:>10.0f}"
            print(row)
    print_cpu_split(results, levels)
    if "zkref" in results and "java" in results:
        print_targets(results["zkref"], results["java"], levels)
    if "floor" in results and "java" in results:
        print("\nceiling: the do-nothing CPython server (bench/python_floor.py) / java, ops/s")
        for lv in levels:
            print("  " + "  ".join(f"{op} @ {lv} {results['floor'][2][lv][op][0] / results['java'][2][lv][op][0]:.2f}x"
                                   for op in READS))
    return 0


READS, WRITES = ("getData", "exists", "getChildren"), ("create", "setData", "delete")


def print_cpu_split(results: dict, levels: list[int]) -> None:
    """Where each op's CPU went: the server's user-space and kernel time per op, and the client's (this process).
    The kernel's share (socket calls, fsync, wake-ups) is about the same for any server; the user-space share is
    the server's own code. /proc counts in clock ticks (10 ms), so a figure moves in steps of 10 ms / ops."""
    print("\nCPU per op (us): the server's user-space and kernel time, and this client's")
    print(f"{'':24}" + "".join(f"{k:>44}" for k in results))
    print(f"{'op @ sessions':24}" + "".join(f"{'server user  server kernel  client':>44}" for _ in results))
    for lv in levels:
        for op in OPS:
            row = f"{op + ' @ ' + str(lv):24}"
            for v in results.values():
                _, _, _, _, usr, kernel, client = v[2][lv][op]
                row += f"{usr:>23.0f}{kernel:>14.0f}{client:>7.0f}"
            print(row)


def print_targets(z, j, levels: list[int]):
    "The issue's targets, each as zkref/java and whether it is met on this run."
    def line(what: str, ratio: float, ok: bool, goal: str, note: str = ""):
        print(f"  {what:34}{ratio:>8.2f}x   {'met' if ok else 'NOT met':8} (target {goal}){note}")
    print("\ntargets (zkref / java):")
    line("startup time", z[0] / j[0], z[0] <= 0.5 * j[0], "<= 0.5x")
    line("RSS after run", z[1] / j[1], z[1] <= 0.5 * j[1], "<= 0.5x")
    for lv in levels:
        for op in READS + WRITES:
            r = z[2][lv][op][0] / j[2][lv][op][0]
            goal = 1.0 if op in READS else 0.8
            zc, jc = z[2][lv][op][3], j[2][lv][op][3]
            line(f"{op} @ {lv} ops/s", r, r >= goal, f">= {goal}x",
                 f"   server CPU/op {zc:.0f} vs {jc:.0f} us ({zc / jc:.2f}x)" if jc else "")
    if 1 in levels:
        for op in READS + WRITES:
            zp, jp = z[2][1][op][1], j[2][1][op][1]
            line(f"{op} @ 1 p50 latency", zp / jp, zp <= jp, "<= 1.0x")


if __name__ == "__main__":
    sys.exit(main())
