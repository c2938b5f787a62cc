"""Where one request's time goes: a stage timeline of zkref's standalone pipeline, one session, no pipelining.

    .venv/bin/python bench/stage_timeline.py                 # create, 3000 requests
    .venv/bin/python bench/stage_timeline.py --op setData --ops 5000

The script starts `python -m zkref` (forceSync=yes, a temporary data directory) in a child process that first
wraps the pipeline's stages with time stamps — the frame read, `process_packet`, Prep (`process_request`,
`p_request2txn`), Sync (`process_request`, `ZKDatabase.append`, `ZKDatabase.commit` on the sync thread), Final
(`process_request`, `DataTree.process_txn`) and the reply (`send_response`, `send_buffer`) — then drives it with
the benchmark's client (bench/client_bench.py) and prints, for the op measured, the median time between one stamp
and the next: `a> -> a<` is the time inside a, `a< -> b>` the time between two stages (for `append< -> commit>`,
the hand-off to the sync thread). The wrappers cost about a microsecond each, so read the figures as shares of the
whole rather than as absolute costs. A measurement aid for whoever tunes the hot path: it asserts nothing.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def serve(cfg: str, out: str) -> int:
    "The child: wrap the stages, run the server; at exit write [(tag, op, ns), ...] to `out`."
    sys.path.insert(0, str(ROOT))
    import atexit

    import zkref.__main__ as main
    import zkref.zkdatabase_commit  # noqa: F401  adds ZKDatabase.append/commit
    from zkref.datatree import DataTree
    from zkref.server.final_request_processor import FinalRequestProcessor
    from zkref.server.prep_request_processor import PrepRequestProcessor
    from zkref.server.processors import ZooKeeperServer
    from zkref.server.server_cnxn import ServerCnxn
    from zkref.server.sync_request_processor import SyncRequestProcessor
    from zkref.zkdatabase import ZKDatabase

    stamps: list[tuple[str, int, int]] = []
    op = [0]
    clock = time.perf_counter_ns

    def wrap(cls, name: str, tag: str) -> None:
        f = getattr(cls, name)
        if asyncio.iscoroutinefunction(f):
            async def timed(*a, **k):
                r = await f(*a, **k)
                stamps.append((tag, op[0], clock()))
                return r
        else:
            def timed(*a, **k):
                stamps.append((tag + ">", op[0], clock()))
                try:
                    return f(*a, **k)
                finally:
                    stamps.append((tag + "<", op[0], clock()))
        setattr(cls, name, timed)

    def packet_op(f):
        def timed(self, cnxn, body, *a, **k):
            op[0] = int.from_bytes(body[4:8], "big", signed=True) if len(body) >= 8 else 0
            stamps.append(("packet>", op[0], clock()))
            try:
                return f(self, cnxn, body, *a, **k)
            finally:
                stamps.append(("packet<", op[0], clock()))
        return timed

    wrap(ServerCnxn, "read_frames", "frame")   # one frame per call here: one session, one request at a time
    ZooKeeperServer.process_packet = packet_op(ZooKeeperServer.process_packet)
    wrap(PrepRequestProcessor, "process_request", "prep")
    wrap(PrepRequestProcessor, "p_request2txn", "txn")
    wrap(SyncRequestProcessor, "process_request", "sync")
    wrap(ZKDatabase, "append", "append")
    wrap(ZKDatabase, "commit", "commit")
    wrap(FinalRequestProcessor, "process_request", "final")
    wrap(DataTree, "process_txn", "apply")
    wrap(ZooKeeperServer, "send_response", "respond")
    wrap(ServerCnxn, "send_buffer", "send")
    atexit.register(lambda: Path(out).write_text(json.dumps(stamps)))
    main.use_fast_event_loop()
    return main.main([cfg])


def timeline(stamps: list, op: int) -> list[tuple[str, float]]:
    "Median gap between consecutive stamps of the requests of `op` that took the most common path."
    requests, current = [], []
    for tag, o, ns in stamps:
        if tag == "frame>":                    # a request's stamps start where its frame is read
            if current:
                requests.append(current)
            current = []
        current.append((tag, o, ns))
    requests.append(current)
    mine = [r for r in requests if any(o == op for _, o, _ in r)]
    shapes = collections.Counter(tuple(t for t, _, _ in r) for r in mine)
    if not shapes:
        return []
    shape = shapes.most_common(1)[0][0]
    same = [r for r in mine if tuple(t for t, _, _ in r) == shape][len(mine) // 10:]   # the first tenth warms up
    out = []
    for i in range(1, len(shape)):
        gaps = sorted(r[i][2] - r[i - 1][2] for r in same)
        out.append((f"{shape[i - 1]} -> {shape[i]}", gaps[len(gaps) // 2] / 1000))
    whole = sorted(r[-1][2] - r[0][2] for r in same)
    out.append(("whole (first to last stamp)", whole[len(whole) // 2] / 1000))
    return out


async def drive(port: int, op: str, n: int) -> None:
    "One session: (for reads, updates and deletes: create the nodes first) then `n` requests of `op`."
    sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tests")]
    import client_bench as cb
    s = await cb.Session().open(port)
    root = f"/timeline-{time.monotonic_ns()}"
    await s.call(*cb.request("create", root))
    paths = [f"{root}/n{i}" for i in range(n)]
    if op != "create":
        for p in paths:
            await s.call(*cb.request("create", p))
    for p in paths:
        await s.call(*cb.request(op, root if op == "getChildren" else p))
    s.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--op", default="create", choices=("create", "getData", "setData", "exists", "getChildren", "delete"))
    ap.add_argument("--ops", type=int, default=3000)
    ap.add_argument("--serve", nargs=2, metavar=("CFG", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        return serve(*args.serve)
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    from conftest import four_letter_word, free_port
    from zkref.proto import OpCode
    with tempfile.TemporaryDirectory(prefix="stage_timeline-") as tmp:
        port, cfg, out = free_port(), Path(tmp) / "zoo.cfg", Path(tmp) / "stamps.json"
        cfg.write_text(f"tickTime=2000\ndataDir={tmp}/data\nclientPort={port}\nclientPortAddress=127.0.0.1\n"
                       f"admin.enableServer=false\nforceSync=yes\n")
        env = dict(os.environ, ZOO_LOG_LEVEL="WARN", PYTHONPATH=str(ROOT))
        log = Path(tmp) / "server.log"
        proc = subprocess.Popen([sys.executable, __file__, "--serve", str(cfg), str(out)], env=env,
                                stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
        try:
            deadline = time.monotonic() + 30
            while "Mode:" not in four_letter_word(port, "srvr", timeout=1):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.05)
            asyncio.run(drive(port, args.op, args.ops))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        rows = timeline(json.loads(out.read_text()), int(getattr(OpCode, args.op)))
    print(f"{args.op}, one session, {args.ops} requests: median µs between stamps")
    for what, us in rows:
        print(f"  {what:34} {us:9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
