"""How much of a read's cost is zkref's request pipeline, and who is the bottleneck: zkref as it is, against zkref
with getData answered straight from the tree.

    .venv/bin/python bench/read_path_ceiling.py                  # 8 and 32 sessions, 20,000 getData each, twice
    .venv/bin/python bench/read_path_ceiling.py --levels 8 --ops 40000 --rounds 3

For each kind of server it starts `python -m zkref` (forceSync=yes, a temporary data directory), creates one znode
per request to come, then runs getData round trips (one outstanding per session) with `--levels` sessions, and
prints the ops/s with the CPU the client and the server each spent during the reads (percent of one core, µs per
op). The second kind, `no pipeline`, is the same server with a wrapper that answers a getData itself when Sync has
nothing queued: the path decoded by hand, the node looked up, the reply header, data and Stat packed with one
`struct` each and written. No ACL check, no session touch, no metrics, no watch: it is not a server anyone should
run, only the ceiling of any read path that keeps zkref's connection layer (asyncio streams, one task per
connection, the frame reading of chapter 06). The two kinds run alternately, `--rounds` times, as this VM's speed
drifts.

Reading the figures: when the `no pipeline` server's CPU is well below 100 % and the client's is at 100 %, the
client is the bottleneck there, and the ops/s is also the ceiling of this benchmark's client on this machine. The
difference of server CPU per op between the two kinds is what zkref's Java-shaped pipeline (Request, Prep, Sync,
Final, the metrics, the response cache, the reply) costs per read. A measurement aid: it asserts nothing.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from client_bench import Session, cpu_seconds, request  # noqa: E402
from conftest import four_letter_word, free_port  # noqa: E402

# The wrapper of the `no pipeline` kind: imports zkref, replaces ZooKeeperServer.process_packet, runs the server.
NO_PIPELINE = textwrap.dedent('''
    import struct, sys
    import zkref.__main__ as zkref_main
    import zkref.server.client_packets  # noqa: F401  (process_packet is added there)
    from zkref.main import main
    from zkref.server.processors import ZooKeeperServer
    HEADER, STAT = struct.Struct(">iqii"), struct.Struct(">qqqqiiiqiiq")
    GET_DATA = (4).to_bytes(4, "big")
    full = ZooKeeperServer.process_packet
    def process_packet(self, cnxn, body):
        sync = self.sync_processor
        if body[4:8] == GET_DATA and not (sync.queue or sync.to_flush or sync.busy):
            n = int.from_bytes(body[8:12], "big")
            node = self.dt.nodes.get(body[12:12 + n].decode())
            if node is not None:
                s, data = node.stat, node.data or b""
                reply = (HEADER.pack(int.from_bytes(body[:4], "big", signed=True), self.dt.last_processed_zxid, 0,
                                     len(data)) + data
                         + STAT.pack(s.czxid, s.mzxid, s.ctime, s.mtime, s.version, s.cversion, s.aversion,
                                     s.ephemeral_owner, len(data), node.num_children(), s.pzxid))
                cnxn.writer.write(len(reply).to_bytes(4, "big") + reply)
                return
        return full(self, cnxn, body)
    ZooKeeperServer.process_packet = process_packet
    zkref_main.use_fast_event_loop()
    sys.exit(main())
''')


def start(kind: str, workdir: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    workdir.mkdir(parents=True)
    (workdir / "zoo.cfg").write_text(f"tickTime=2000\ndataDir={workdir / 'data'}\nclientPort={port}\n"
                                     "clientPortAddress=127.0.0.1\nmaxClientCnxns=0\nadmin.enableServer=false\n"
                                     "forceSync=yes\n")
    cmd = [sys.executable, "-m", "zkref"] if kind == "zkref" else [sys.executable, "-c", NO_PIPELINE]
    env = dict(os.environ, PYTHONPATH=str(ROOT), ZOO_LOG_LEVEL="WARN")
    proc = subprocess.Popen([*cmd, str(workdir / "zoo.cfg")], stdout=open(workdir / "server.log", "wb"),
                            stderr=subprocess.STDOUT, env=env, cwd=workdir)
    deadline = time.monotonic() + 60
    while "Mode:" not in four_letter_word(port, "srvr", timeout=1):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{kind} did not start; see {workdir / 'server.log'}")
        time.sleep(0.02)
    return proc, port


async def reads(port: int, pid: int, sessions: int, ops: int) -> tuple[float, float, float]:
    "(ops/s, client CPU s, server CPU s) of `ops` getData round trips over `sessions` sessions."
    clients = [await Session().open(port) for _ in range(sessions)]
    root, per = f"/ceiling-{time.monotonic_ns()}", max(1, ops // sessions)
    await clients[0].call(*request("create", root))

    async def each(fn):
        await asyncio.gather(*(fn(i, c) for i, c in enumerate(clients)))

    async def create(ci, c):
        for i in range(per):
            await c.call(*request("create", f"{root}/s{ci}-{i}"))

    async def get(ci, c):
        for i in range(per):
            if await c.call(*request("getData", f"{root}/s{ci}-{i}")):
                raise RuntimeError("getData failed")

    await each(create)
    t0, c0, s0 = time.perf_counter(), time.process_time(), cpu_seconds(pid)
    await each(get)
    elapsed, client_cpu, server_cpu = time.perf_counter() - t0, time.process_time() - c0, cpu_seconds(pid) - s0
    for c in clients:
        c.close()
    return per * sessions / elapsed, client_cpu, server_cpu


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", default="8,32", help="numbers of concurrent sessions")
    ap.add_argument("--ops", type=int, default=20000, help="getData round trips per level")
    ap.add_argument("--rounds", type=int, default=2, help="times each kind is measured, alternately")
    args = ap.parse_args(argv)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "zkref")], check=True)
    print(f"{'server':14}{'sessions':>9}{'ops/s':>9}{'client CPU':>13}{'us/op':>7}{'server CPU':>13}{'us/op':>7}")
    with tempfile.TemporaryDirectory(prefix="read-ceiling-") as tmp:
        for r in range(args.rounds):
            for kind in ("zkref", "no pipeline"):
                proc, port = start(kind, Path(tmp) / f"{kind.replace(' ', '-')}-{r}")
                try:
                    for lv in (int(x) for x in args.levels.split(",")):
                        ops_s, ccpu, scpu = asyncio.run(reads(port, proc.pid, lv, args.ops))
                        secs, n = (lv * max(1, args.ops // lv)) / ops_s, lv * max(1, args.ops // lv)
                        print(f"{kind:14}{lv:>9}{ops_s:>9.0f}{ccpu / secs * 100:>12.0f}%{ccpu / n * 1e6:>7.0f}"
                              f"{scpu / secs * 100:>12.0f}%{scpu / n * 1e6:>7.0f}", flush=True)
                finally:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(20)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
