"""Storage benchmark: txn-log group commit, snapshot write/load, and Java's load time on the same files.

    .venv/bin/python bench/storage_bench.py              # 100k znodes
    .venv/bin/python bench/storage_bench.py --nodes 1000000 --java

Prints figures; asserts nothing (speed belongs here, not in tests). Files go to a temporary directory on the
same disk as /tmp, which is removed afterwards. With --java the Debian Java ZooKeeper 3.8 server is started on
the data directory zkref wrote (127.0.0.1, a free port) and its own "Snapshot loaded in N ms" line is read.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from zkref.jute import ACL, CreateSessionTxn, CreateTxn, Id, TxnDigest, TxnHeader  # noqa: E402
from zkref.persistence import (FileSnap, FileTxnLog, FileTxnSnapLog, StorageOptions, snapshot_bytes,  # noqa: E402
                               write_snapshot_file)
from zkref.zkdatabase import ZKDatabase  # noqa: E402

WORLD = [ACL(perms=31, id=Id(scheme="world", id="anyone"))]


def bench_group_commit(work: Path, total: int) -> None:
    "Append `total` txns, committing (write + fsync) every `batch` appends."
    print(f"== txn log: {total} creates of 100-byte znodes, one fsync per batch (fdatasync, 64 MB prealloc)")
    print(f"{'batch':>6} {'txns/s':>10} {'fsyncs/s':>9} {'ms/commit':>10}")
    for batch in (1, 10, 100, 1000):
        d = work / f"log-{batch}"
        d.mkdir()
        log = FileTxnLog(d)
        n = min(total, 2000) if batch == 1 else total
        start = time.perf_counter()
        for z in range(1, n + 1):
            log.append(TxnHeader(client_id=1, cxid=z, zxid=z, time=0, type=1),
                       CreateTxn(path=f"/node{z:08d}", data=b"x" * 100, acl=WORLD, parent_cversion=z),
                       TxnDigest(version=2, tree_digest=z))
            if z % batch == 0:
                log.commit()
        log.commit()
        elapsed = time.perf_counter() - start
        log.close()
        commits = max(n // batch, 1)
        print(f"{batch:>6} {n / elapsed:>10.0f} {commits / elapsed:>9.0f} {elapsed / commits * 1000:>10.2f}")
        shutil.rmtree(d)

    d = work / "log-async"
    d.mkdir()
    log = FileTxnLog(d)

    async def loop_with_group_commit(n: int) -> float:
        "The server's shape: appends on the loop, one commit in flight at a time in a worker thread."
        start = time.perf_counter()
        inflight = None
        for z in range(1, n + 1):
            log.append(TxnHeader(client_id=1, cxid=z, zxid=z, time=0, type=1),
                       CreateTxn(path=f"/node{z:08d}", data=b"x" * 100, acl=WORLD, parent_cversion=z))
            if inflight is None or inflight.done():
                if inflight is not None:
                    await inflight
                inflight = asyncio.ensure_future(asyncio.to_thread(log.commit))
            if z % 100 == 0:
                await asyncio.sleep(0)
        if inflight is not None:
            await inflight
        await asyncio.to_thread(log.commit)
        return time.perf_counter() - start

    elapsed = asyncio.run(loop_with_group_commit(total))
    log.close()
    print(f"asyncio loop, commit in a worker whenever the previous one finished: {total / elapsed:.0f} txns/s")


def build_tree(work: Path, nodes: int) -> ZKDatabase:
    "A database with `nodes` znodes (100 parents x children, 64-byte data), logged and committed."
    db = ZKDatabase(FileTxnSnapLog(work / "data", work / "data", StorageOptions()))
    db.load_data_base()
    zxid, start = 0, time.perf_counter()
    session = 0x100000a00000000

    def apply(type_, txn):
        nonlocal zxid
        zxid += 1
        header = TxnHeader(client_id=session, cxid=zxid, zxid=zxid, time=1764168000000 + zxid, type=type_)
        db.process_txn(header, txn)
        db.append(header, txn, TxnDigest(version=2, tree_digest=db.data_tree.get_tree_digest()))
        if zxid % 1000 == 0:
            db.commit()

    db.sessions_with_timeouts[session] = 30000
    apply(-10, CreateSessionTxn(time_out=30000))
    parents = max(nodes // 1000, 1)
    for p in range(parents):
        apply(1, CreateTxn(path=f"/p{p:04d}", data=b"", acl=WORLD, parent_cversion=p + 1))
    for i in range(nodes - parents):
        p = i % parents
        cv = db.data_tree.get_node(f"/p{p:04d}").stat.cversion + 1
        apply(1, CreateTxn(path=f"/p{p:04d}/n{i:08d}", data=os.urandom(32).hex().encode(), acl=WORLD, parent_cversion=cv))
    db.commit()
    db.roll_log()
    print(f"   built {db.get_node_count() - 1} znodes through process_txn + log in {time.perf_counter() - start:.1f} s")
    return db


def bench_snapshot(work: Path, nodes: int, java: bool) -> None:
    print(f"== snapshot of {nodes} znodes")
    db = build_tree(work, nodes)
    start = time.perf_counter()
    data = snapshot_bytes(db.data_tree, db.sessions_with_timeouts)
    encode = time.perf_counter() - start
    path = db.snap_log.snap_dir / f"snapshot.{db.data_tree.last_processed_zxid:x}"
    start = time.perf_counter()
    write_snapshot_file(path, data, fsync=True)
    write = time.perf_counter() - start
    print(f"   encode in one go (take_snapshot / FileSnap.serialize):  {encode * 1000:8.0f} ms "
          f"({len(data) / 1e6:.1f} MB)")
    print(f"   write + fsync (worker thread):                          {write * 1000:8.0f} ms")

    async def serving_snapshot() -> tuple[float, float, int]:
        "take_snapshot_async while a ticker task stands for the requests the loop keeps serving."
        gaps, ticks = [0.0], 0
        async def ticker():
            nonlocal ticks
            last = time.perf_counter()
            while True:
                await asyncio.sleep(0)
                now = time.perf_counter()
                gaps[0] = max(gaps[0], now - last)
                last, ticks = now, ticks + 1
        t = asyncio.create_task(ticker())
        start = time.perf_counter()
        await db.take_snapshot_async()
        total = time.perf_counter() - start
        t.cancel()
        return total, gaps[0], ticks

    total, worst, ticks = asyncio.run(serving_snapshot())
    print(f"   take_snapshot_async (sliced, 2000 znodes per slice):    {total * 1000:8.0f} ms, longest loop stall "
          f"{worst * 1000:.1f} ms, the loop ran {ticks} times meanwhile")
    db.close()
    del db

    start = time.perf_counter()
    fresh = ZKDatabase(FileTxnSnapLog(work / "data", work / "data", StorageOptions()))
    zxid = fresh.load_data_base()
    load = time.perf_counter() - start
    print(f"   zkref load_data_base (read + parse + checks):           {load * 1000:8.0f} ms, zxid 0x{zxid:x}")
    del fresh
    if java:
        bench_java_load(work / "data")


def bench_java_load(data: Path, heap: str = "4g") -> None:
    "Start the Java server on the data dir zkref wrote; report its own load time and time to serve."
    import subprocess
    from conftest import JAVA_CLASSPATH, JAVA_LOG4J, four_letter_word, free_port, java_available
    if not java_available():
        print("   Java ZooKeeper not installed: skipped")
        return
    work = data.parent / "java"
    work.mkdir(exist_ok=True)
    port = free_port()
    (work / "zoo.cfg").write_text(f"dataDir={data}\nclientPort={port}\nclientPortAddress=127.0.0.1\n"
                                  "tickTime=2000\nadmin.enableServer=false\n")
    (work / "log4j.properties").write_text(JAVA_LOG4J)
    cmd = ["java", f"-Xmx{heap}", f"-Dlog4j.configuration=file:{work / 'log4j.properties'}",
           "-Dzookeeper.jmx.log4j.disable=true", "-cp", JAVA_CLASSPATH,
           "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(work / "zoo.cfg")]
    with open(work / "server.log", "wb") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=work)
        try:
            deadline = start + 900
            while "Mode:" not in four_letter_word(port, "srvr") and proc.poll() is None and time.perf_counter() < deadline:
                time.sleep(0.1)
            serving = time.perf_counter() - start
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    logs = (work / "server.log").read_text(errors="replace")
    loaded = re.search(r"Snapshot loaded in (\d+) ms, highest zxid is (0x[0-9a-f]+)", logs)
    taken = re.search(r"Snapshot taken in (\d+) ms", logs)
    if not loaded:
        print(f"   Java 3.8 did not load the data dir (-Xmx{heap}); last log lines:\n" + "\n".join(logs.splitlines()[-5:]))
        return
    print(f"   Java 3.8 on the same files (-Xmx{heap}): 'Snapshot loaded in {loaded.group(1)} ms' "
          f"(zxid {loaded.group(2)}), serving after {serving * 1000:.0f} ms incl. JVM start"
          + (f", its startup snapshot took {taken.group(1)} ms" if taken else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--txns", type=int, default=20000, help="txns per group-commit run")
    ap.add_argument("--nodes", type=int, nargs="+", default=[100_000], help="snapshot sizes (znodes)")
    ap.add_argument("--java", action="store_true", help="also time Java 3.8 loading the same data dir")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="zkref-bench-"))
    try:
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, files in {work}")
        bench_group_commit(work, args.txns)
        for n in args.nodes:
            shutil.rmtree(work / "data", ignore_errors=True)
            shutil.rmtree(work / "java", ignore_errors=True)
            bench_snapshot(work, n, args.java)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
