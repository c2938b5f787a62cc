"""Election timings of zkref and Java ZooKeeper 3.8 ensembles, side by side.

    .venv/bin/python bench/election_bench.py [--rounds 3] [--sizes 3 5] [--no-java]

For each ensemble size and implementation (zkref: one `python -m zkref` process per server; Java: Debian's
ZooKeeper 3.8 QuorumPeerMain), on 127.0.0.1 with tickTime=200, initLimit=10, syncLimit=5, through the mini
cluster's proxies:

* start → leader: from launching every server (process start-up included: Python imports, the JVM) to a
  settled leader — exactly one server logged LEADING and a quorum of voters logged LEADING or FOLLOWING;
* kill → leader: from SIGKILL of that leader to a new settled leader among the survivors.

"Settled" is the election's decision as each server logs it (`LEADING` / `FOLLOWING`), the same line in both
implementations. Java then also syncs (Zab); zkref has no Zab yet, so this compares elections only.
Figures are medians (and min–max) over the rounds; the machine is shared, so read them as rough.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zkref.testing import MiniCluster, java_available  # noqa: E402


async def one_round(n: int, java: bool) -> tuple[float, float]:
    "(start → leader, kill → leader) in seconds for one fresh ensemble."
    cluster = MiniCluster(n, mode="process", java=set(range(1, n + 1)) if java else frozenset())
    try:
        t0 = time.monotonic()
        await cluster.start()
        leader = await cluster.wait_for_leader(120)
        t_start = time.monotonic() - t0
        t1 = time.monotonic()
        await cluster.kill(leader)
        await cluster.wait_for_leader(120, other_than={leader})
        t_kill = time.monotonic() - t1
        return t_start, t_kill
    finally:
        await cluster.close()


def summary(xs: list[float]) -> str:
    return f"{statistics.median(xs) * 1000:7.0f} ms ({min(xs) * 1000:.0f}–{max(xs) * 1000:.0f})"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[3, 5])
    parser.add_argument("--no-java", action="store_true", help="zkref only")
    args = parser.parse_args()
    impls = [("zkref", False)] + ([("java 3.8", True)] if java_available() and not args.no_java else [])
    print(f"{'servers':>7}  {'impl':8}  {'start → leader':>26}  {'kill leader → new leader':>26}")
    for n in args.sizes:
        for name, java in impls:
            starts, kills = [], []
            for _ in range(args.rounds):
                t_start, t_kill = await one_round(n, java)
                starts.append(t_start)
                kills.append(t_kill)
            print(f"{n:>7}  {name:8}  {summary(starts):>26}  {summary(kills):>26}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
