"""Zab: 3-server write/read throughput and latency, and failover time; zkref beside Java ZooKeeper 3.8.

    .venv/bin/python bench/zab_bench.py [--writes 2000] [--reads 6000] [--sessions 1 8] [--kills 3] [--only zkref|java]
                                        [--traced]

For each implementation, a fresh 3-server ensemble of real processes on 127.0.0.1 (zkref: `python -m zkref zoo.cfg`,
as a user runs it — uvloop's event loop when installed — through tests/test_zab_failures.py's Ensemble with its Zab
trace file off; `--traced` runs the tests' launcher instead: `zkref.main` on asyncio's loop recording every packet as
a JSON line, which about halves the write throughput at 8 sessions; Java:
Debian's 3.8 QuorumPeerMain), tickTime=500, initLimit=10, syncLimit=5, forceSync on:

* writes: `--writes` creates of 64-byte znodes by N kazoo sessions (synchronous calls, one thread each),
  the sessions spread round-robin over the three servers (so most writes are forwarded to the leader);
  ops/s over the wall time, and the p50/p99 latency of one create;
* reads: `--reads` getData of one znode the same way;
* failover: a session on the two followers keeps writing (each create waits at most 1 s); the leader is
  SIGKILLed; the figure is the time from the kill to the first create acknowledged after it (election,
  sync, the client's reconnect). Then the killed server restarts and rejoins; repeated `--kills` times.

The machine is shared and has 2 cores that all three servers (and the client) share: read the figures as
rough, and as a comparison on the same machine, not as absolute numbers.
"""
from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from kazoo.client import KazooClient  # noqa: E402
from kazoo.exceptions import KazooException  # noqa: E402
from kazoo.handlers.threading import KazooTimeoutError  # noqa: E402

from conftest import java_available  # noqa: E402
from test_zab_failures import Ensemble  # noqa: E402

QUICK_RETRY = dict(max_tries=-1, delay=0.05, backoff=1, max_delay=0.1)


def client(hosts: str) -> KazooClient:
    zk = KazooClient(hosts=hosts, timeout=10, connection_retry=QUICK_RETRY)
    zk.start(timeout=30)
    return zk


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000


def run_load(e: Ensemble, sessions: int, total: int, op) -> tuple[float, float, float]:
    "(ops/s, p50 ms, p99 ms) for `total` calls of op(zk, n) over `sessions` threads spread over the servers."
    zks = [client(e.hosts([1 + k % 3])) for k in range(sessions)]
    lat: list[list[float]] = [[] for _ in zks]
    per = total // sessions

    def work(k: int) -> None:
        zk, out = zks[k], lat[k]
        for n in range(per):
            t = time.perf_counter()
            op(zk, k * per + n)
            out.append(time.perf_counter() - t)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(sessions)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    for zk in zks:
        zk.stop()
        zk.close()
    flat = [x for xs in lat for x in xs]
    return len(flat) / wall, pct(flat, 0.5), pct(flat, 0.99)


def failover(e: Ensemble, rounds: int) -> list[float]:
    "Seconds from SIGKILL of the leader to the first acknowledged create after it, per round."
    out = []
    for r in range(rounds):
        leader = e.wait_formed(timeout=120)
        rest = [i for i in (1, 2, 3) if i != leader]
        zk = client(e.hosts(rest))
        try:
            zk.create(f"/fo-{r}-warm", b"")
            e.stop(leader, signal.SIGKILL)
            t0 = time.perf_counter()
            deadline = t0 + 120
            n = 0
            while time.perf_counter() < deadline:
                n += 1
                try:
                    zk.create_async(f"/fo-{r}-{n}", b"").get(timeout=1)
                    break
                except (KazooException, KazooTimeoutError):
                    time.sleep(0.01)        # a bench, not a test: pace the retry loop
            out.append(time.perf_counter() - t0)
        finally:
            zk.stop()
            zk.close()
        e.start(leader)
        e.wait_formed(timeout=120)
    return out


def bench(kind: str, args) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"zab-bench-{kind}-") as tmp:
        e = Ensemble(Path(tmp), (kind,) * 3, trace=args.traced)
        try:
            e.start()
            e.wait_formed(timeout=120)
            res = {}
            zk = client(e.hosts())
            zk.ensure_path("/b")
            zk.create("/r", b"x" * 64)
            zk.stop()
            zk.close()
            for s in args.sessions:
                prefix = f"/b/s{s}-"
                res[f"write @ {s}"] = run_load(e, s, args.writes, lambda zk, n: zk.create(f"{prefix}{n}", b"x" * 64))
                res[f"read @ {s}"] = run_load(e, s, args.reads, lambda zk, n: zk.get("/r"))
            res["failover"] = failover(e, args.kills)
            return res
        finally:
            e.stop_all()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--writes", type=int, default=2000)
    ap.add_argument("--reads", type=int, default=6000)
    ap.add_argument("--sessions", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--only", choices=("zkref", "java"))
    ap.add_argument("--traced", action="store_true", help="zkref records its Zab trace file, as the tests run it")
    args = ap.parse_args()
    kinds = [k for k in ("zkref", "java") if args.only in (None, k)]
    if "java" in kinds and not java_available():
        print("Java ZooKeeper is not installed: zkref only")
        kinds.remove("java")
    results = {k: bench(k, args) for k in kinds}
    names = {"zkref": "zkref (3 processes)", "java": "Java 3.8 (3 JVMs)"}
    print(f"{'3 servers, 127.0.0.1':22}" + "".join(f"{names[k]:>34}" for k in results))
    print(f"{'op @ sessions':22}" + "".join(f"{'ops/s   p50 ms   p99 ms':>34}" for _ in results))
    for key in next(iter(results.values())):
        if key == "failover":
            continue
        print(f"{key:22}" + "".join(f"{r[key][0]:>16.0f}{r[key][1]:>9.2f}{r[key][2]:>9.2f}" for r in results.values()))
    if args.kills:
        print(f"{'kill leader → write':22}" + "".join(
            f"{'median %.2f s (%.2f–%.2f)' % (statistics.median(r['failover']), min(r['failover']), max(r['failover'])):>34}"
            for r in results.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
