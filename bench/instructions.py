"""Instructions per request: a noise-free measure of what a change costs or saves, for A/B comparisons.

    .venv/bin/python bench/instructions.py                               # getData, exists, setData, create at 1 session
    .venv/bin/python bench/instructions.py --base /tmp/base --ops getData,setData   # this checkout against another one

This VM's speed drifts by ±30 % between runs minutes apart, so a saving of a few µs per request is lost in the
noise of bench/client_bench.py, and the VM offers no hardware counters to `perf`. Valgrind's callgrind counts the
instructions a process executes whatever the machine is doing meanwhile: the same run twice gives the same count
to a fraction of a percent. For each operation this script starts `python -m zkref` (forceSync=yes, a temporary
data directory) under callgrind twice, once for `--small` and once for `--large` requests over `--sessions`
sessions (one outstanding each, as client_bench.py's client; `--depth N` pipelines N in each), and prints the difference divided by the difference
of the request counts: the user-space instructions one request costs the server — Python, uvloop, libc; not the
kernel's share (the socket calls, the fsync), which is the same for any server code. The start-up and the setup
requests cancel out. `delete` is measured as a create and a delete less a create. With `--base` the same runs are
made with another checkout's code (e.g. `git worktree add /tmp/base HEAD~1`) and the ratio is printed.

Needs valgrind (Debian package `valgrind`); a run takes about 10 s per operation and checkout. A measurement aid: it
asserts nothing, and instructions are not time (a cache miss costs more than an add), so confirm a large
difference with client_bench.py.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from client_bench import Session, pipelined, request  # noqa: E402
from conftest import four_letter_word, free_port  # noqa: E402

OPS = ("getData", "exists", "getChildren", "setData", "create", "delete")


async def drive(port: int, op: str, sessions: int, n: int, depth: int = 1) -> None:
    "`n` requests of `op` (for delete: n creates, then n deletes) over `sessions` sessions, `depth` outstanding in each."
    clients = [await Session().open(port) for _ in range(sessions)]
    await clients[0].call(*request("create", "/i"))
    per = max(1, n // sessions)

    async def each(fn):
        await asyncio.gather(*(fn(ci, c) for ci, c in enumerate(clients)))

    async def run(name, path_of):
        async def one(ci, c):
            if depth > 1:
                return await pipelined(c, [(*request(name, path_of(ci, i)), "") for i in range(per)], depth, [])
            for i in range(per):
                await c.call(*request(name, path_of(ci, i)))
        await each(one)

    if op in ("create", "delete"):
        await run("create", lambda ci, i: f"/i/s{ci}-{i}")
        if op == "delete":
            await run("delete", lambda ci, i: f"/i/s{ci}-{i}")
    else:
        await run(op, lambda ci, i: "/i")


def instructions(root: Path, op: str, sessions: int, n: int, depth: int = 1) -> int:
    "Instructions the server executed, start to exit, serving `n` requests of `op` with the code of `root`."
    with tempfile.TemporaryDirectory() as tmp:
        wd, port = Path(tmp), free_port()
        (wd / "zoo.cfg").write_text(f"tickTime=2000\ndataDir={wd / 'data'}\nclientPort={port}\n"
                                    "clientPortAddress=127.0.0.1\nmaxClientCnxns=0\nadmin.enableServer=false\n"
                                    "forceSync=yes\n")
        env = dict(os.environ, PYTHONPATH=str(root), ZOO_LOG_LEVEL="WARN")
        log = wd / "server.log"
        proc = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={wd / 'callgrind.out'}",
                                 sys.executable, "-m", "zkref", str(wd / "zoo.cfg")],
                                stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env, cwd=wd)
        try:
            deadline = time.monotonic() + 300
            while "Mode:" not in four_letter_word(port, "srvr", timeout=5):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start under valgrind:\n{log.read_text()[-2000:]}")
                time.sleep(0.5)
            asyncio.run(drive(port, op, sessions, n, depth))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(300)
        found = re.findall(r"Collected : (\d+)", log.read_text())
        if not found:
            raise RuntimeError(f"no instruction count in valgrind's output:\n{log.read_text()[-2000:]}")
        return int(found[-1])


def per_request(root: Path, op: str, sessions: int, small: int, large: int, depth: int = 1) -> float:
    "User-space instructions per request of `op` (a delete: create+delete less create)."
    count = lambda o, n: instructions(root, o, sessions, n, depth)   # noqa: E731
    per = (count(op, large) - count(op, small)) / (large - small)
    if op == "delete":
        per -= per_request(root, "create", sessions, small, large, depth)
    return per


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ops", default="getData,exists,setData,create", help=f"comma-separated, of {', '.join(OPS)}")
    ap.add_argument("--sessions", type=int, default=1)
    ap.add_argument("--small", type=int, default=500, help="requests in the first run")
    ap.add_argument("--large", type=int, default=2500, help="requests in the second run")
    ap.add_argument("--depth", type=int, default=1, help="requests each session keeps outstanding (as client_bench.py's)")
    ap.add_argument("--base", type=Path, help="another checkout to compare with (its zkref package is used)")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian package valgrind)")
    ops = [o for o in args.ops.split(",") if o]
    for o in ops:
        if o not in OPS:
            sys.exit(f"unknown op {o!r}; known: {', '.join(OPS)}")
    head = f"{'op @ sessions':<20}{'this checkout':>16}"
    print(head + (f"{'base':>16}{'this / base':>14}" if args.base else ""), flush=True)
    for op in ops:
        mine = per_request(ROOT, op, args.sessions, args.small, args.large, args.depth)
        line = f"{op + ' @ ' + str(args.sessions) + (f' d{args.depth}' if args.depth > 1 else ''):<20}{mine:>16,.0f}"
        if args.base:
            base = per_request(args.base.resolve(), op, args.sessions, args.small, args.large, args.depth)
            line += f"{base:>16,.0f}{mine / base:>13.3f}x"
        print(line, flush=True)


if __name__ == "__main__":
    main()
