"""Zab under a seeded random schedule of faults ("nemesis"), with clients writing all the while.

`test_zab_failures` checks one fault at a time. Here a seeded schedule throws several at the same ensemble,
one after another: SIGKILL of the leader or of a follower (restarted after a while), SIGSTOP of the leader
or of a follower (SIGCONT after a while: long enough, and the others drop it and elect without it), and the
loss of two servers at once (no quorum until they return). Two clients work through every fault, connected
to all three servers:
- a writer creates `/load/nNNNNN` one after another and records each create the server acknowledged;
- a counter reads `/nem/counter` and sets it to its version + 1 with that version (a compare-and-set), so
  its data always equals its version, and counts the sets that were acknowledged and those whose outcome it
  could not learn (connection lost in flight).
After each fault heals, the ensemble must form again and the writer must make progress (liveness). At the
end every server, after `sync`, holds every acknowledged create and the same `/load` children and the same
counter; the counter's version lies between the acknowledged sets and those plus the unknown ones, and its
data equals its version (no set was applied twice or lost). The zkref servers' merged Zab trace breaks none
of Zab.tla's invariants, and no zkref server logged a Python traceback.

`ZKREF_NEMESIS_SEEDS` (comma-separated) and `ZKREF_NEMESIS_ROUNDS` replay or lengthen a run; the default is
one seed and five faults per ensemble, well under two minutes each.
"""
from __future__ import annotations

import os
import random
import signal
import threading
import time

import pytest
from kazoo.exceptions import BadVersionError, KazooException
from kazoo.handlers.threading import KazooTimeoutError

from conftest import java_available, wait_for
from test_zab_failures import Ensemble, Writer, children_on, kazoo
from zkref.quorum.zab import trace_violations

pytestmark = pytest.mark.timeout(400)

SEEDS = [int(s) for s in os.environ.get("ZKREF_NEMESIS_SEEDS", "7").split(",") if s.strip()]
ROUNDS = int(os.environ.get("ZKREF_NEMESIS_ROUNDS", "5"))
# kazoo backs off exponentially between connection attempts, up to an hour by default: after a long fault a client
# could sleep through the rest of the test. A Java client retries within about a second; so do these.
CLIENT = dict(connection_retry=dict(max_tries=-1, delay=0.1, backoff=2, max_delay=1.0))
FAULTS = ("kill leader", "kill follower", "pause leader", "pause follower", "kill two")


class Counter(threading.Thread):
    "Compare-and-set increments of /nem/counter (data = version), counting acknowledged and unknown outcomes."

    def __init__(self, hosts: str, seconds: float = 300):
        super().__init__(daemon=True)
        self.hosts, self.seconds = hosts, seconds
        self.acked = self.unknown = self.conflicts = 0
        self.halt = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + self.seconds
        zk = kazoo(self.hosts, **CLIENT)
        try:
            zk.ensure_path("/nem")
            if zk.exists("/nem/counter") is None:
                zk.create("/nem/counter", b"0")
            while not self.halt.is_set() and time.monotonic() < deadline:
                try:
                    data, stat = zk.get_async("/nem/counter").get(timeout=10)
                except (KazooException, KazooTimeoutError):
                    self._reconnect(zk, deadline)
                    continue
                try:
                    zk.set_async("/nem/counter", str(stat.version + 1).encode(), stat.version).get(timeout=10)
                    self.acked += 1
                except BadVersionError:
                    # a set of ours whose reply was lost did apply, or our read was of an older state (a
                    # follower behind the leader): both are legal; the next round reads again
                    self.conflicts += 1
                except (KazooException, KazooTimeoutError):
                    self.unknown += 1          # connection lost in flight: applied or not, we cannot tell
                    self._reconnect(zk, deadline)
        finally:
            zk.stop()
            zk.close()

    def _reconnect(self, zk, deadline: float) -> None:
        wait_for(lambda: zk.connected or self.halt.is_set() or time.monotonic() > deadline, 90, 0.05,
                 what="the counter client to reconnect")


def counter_on(e: Ensemble, i: int) -> tuple[bytes, int]:
    "The counter's (data, version) as server `i` has it, after a `sync`."
    zk = kazoo(e.hosts([i]))
    try:
        zk.sync("/nem/counter")
        data, stat = zk.get("/nem/counter")
        return data, stat.version
    finally:
        zk.stop()
        zk.close()


def formed(e: Ensemble, timeout: float = 120) -> int:
    "e.wait_formed over all servers; on a timeout, say which processes exited and show each log's tail."
    try:
        return e.wait_formed(list(e.kinds), timeout=timeout)
    except TimeoutError as ex:
        tails = []
        for i, p in e.servers.items():
            code = p.proc.poll() if p.proc is not None else "never started"
            tails.append(f"--- server {i} ({p.kind}, exit code {code}):\n" + "\n".join(
                line for line in p.logs().splitlines() if "Processing srvr command" not in line)[-3000:])
        raise TimeoutError(f"{ex}\n" + "\n".join(tails)) from None


def run_schedule(e: Ensemble, rng: random.Random, rounds: int, writer: Writer, log: list[str]) -> None:
    "Throw `rounds` faults drawn from `rng` at the ensemble; after each, wait until it formed and writes resume."
    for r in range(rounds):
        leader = formed(e)
        followers = [i for i in e.kinds if i != leader]
        fault = rng.choice(FAULTS)
        hold = rng.uniform(0.5, 4.0)           # how long the fault lasts: part of the schedule, not a wait
        if fault == "kill two":
            victims = [leader, rng.choice(followers)] if rng.random() < 0.5 else followers
        else:
            victims = [leader if fault.endswith("leader") else rng.choice(followers)]
        log.append(f"round {r}: {fault} {victims} for {hold:.1f} s (leader was {leader})")
        if fault.startswith("pause"):
            for v in victims:
                e.procs[v].proc.send_signal(signal.SIGSTOP)
            time.sleep(hold)
            for v in victims:
                e.procs[v].proc.send_signal(signal.SIGCONT)
        else:
            for v in victims:
                e.stop(v, signal.SIGKILL)
            time.sleep(hold)
            e.start(*victims)
        formed(e)
        before = len(writer.acked)
        wait_for(lambda: len(writer.acked) >= before + 20 or not writer.is_alive(), 90,
                 what=f"writes to resume after round {r} ({fault})")
        assert writer.is_alive(), "the writer stopped before the schedule ended"


ENSEMBLES = {
    "zkref": ("zkref", "zkref", "zkref"),
    "mixed": ("zkref", "java", "zkref"),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", ["zkref", pytest.param("mixed", marks=pytest.mark.java)])
def test_random_faults_lose_no_acknowledged_write(name, seed, tmp_path):
    """Under a seeded random schedule of SIGKILLs, SIGSTOPs and quorum losses, with a writer and a
    compare-and-set counter working throughout, the ensemble re-forms and serves after every fault, and at the
    end all servers agree: every acknowledged create is on every server, the same children and the same
    counter everywhere, the counter's version between its acknowledged sets and those plus the unknown ones,
    its data equal to its version. zkref's Zab trace keeps Zab.tla's invariants. The mixed ensemble has a
    Java 3.8 server in the middle.
    Reference: Zab.tla Integrity, Agreement, TotalOrder, PrimaryIntegrity; ZooKeeper Programmer's Guide,
    "ZooKeeper guarantees" (sequential consistency, atomicity, single system image, reliability); Java
    Leader.lead, Follower.followLeader, LearnerHandler.syncFollower"""
    kinds = ENSEMBLES[name]
    if "java" in kinds and not java_available():
        pytest.skip("Java ZooKeeper is not installed")
    rng = random.Random(seed)
    e = Ensemble(tmp_path, kinds)
    log: list[str] = [f"{name} ensemble {kinds}, seed {seed}, {ROUNDS} rounds"]
    writer = counter = None
    try:
        e.start()
        formed(e)
        writer = Writer(e.hosts(), limit=100_000, seconds=300, client_options=CLIENT)
        counter = Counter(e.hosts(), seconds=300)
        writer.start()
        counter.start()
        wait_for(lambda: len(writer.acked) >= 50 or not writer.is_alive(), 60, what="the writer to get going")
        try:
            run_schedule(e, rng, ROUNDS, writer, log)
        finally:
            writer.halt.set()
            counter.halt.set()
            writer.join(60)
            counter.join(60)
            print("\n".join(log))
        assert not writer.is_alive() and not counter.is_alive()
        log.append(f"writer: {len(writer.acked)} acknowledged, {writer.failed} unknown; counter: {counter.acked} "
                   f"acknowledged, {counter.unknown} unknown, {counter.conflicts} version conflicts")
        print(log[-1])

        formed(e)
        acked = set(writer.acked)
        children = {i: children_on(e, i, "/load") for i in e.kinds}
        counters = {i: counter_on(e, i) for i in e.kinds}
        for i in e.kinds:
            assert acked <= children[i], f"server {i} lost acknowledged creates: {sorted(acked - children[i])[:10]}"
        assert len({frozenset(c) for c in children.values()}) == 1, "the servers disagree on /load's children"
        assert len(set(counters.values())) == 1, f"the servers disagree on the counter: {counters}"
        data, version = counters[e.ids[0]]
        assert data == str(version).encode(), f"counter data {data!r} at version {version}: a set applied twice?"
        assert counter.acked <= version <= counter.acked + counter.unknown, (version, counter.acked, counter.unknown)
    finally:
        for t in (writer, counter):
            if t is not None:
                t.halt.set()
        e.stop_all()
    for i, kind in e.kinds.items():
        if kind == "zkref":
            assert "Traceback (most recent call last)" not in e.log(i), f"server {i} logged a traceback"
    if all(k == "zkref" for k in kinds):
        trace = e.trace()
        assert any(ev.type == "PROPOSAL" for ev in trace)
        assert trace_violations(trace) == []


# --- network partitions: the mini cluster's cuttable links -------------------------------------------------------

PARTITIONS = ("isolate leader", "isolate follower", "cut one link", "isolate leader, then kill it", "kill leader")


def cluster_children_and_counter(port: int) -> tuple[set[str], tuple[bytes, int]]:
    "/load's children and the counter as the server on `port` has them, after a `sync`."
    zk = kazoo(f"127.0.0.1:{port}")
    try:
        zk.sync("/load")
        children = set(zk.get_children("/load"))
        zk.sync("/nem/counter")
        data, stat = zk.get("/nem/counter")
        return children, (data, stat.version)
    finally:
        zk.stop()
        zk.close()


async def partition_schedule(c, rng: random.Random, rounds: int, writer: Writer, log: list[str]) -> None:
    "Throw `rounds` partitions and kills drawn from `rng` at the mini cluster; after each, wait for service."
    import asyncio

    async def progress(what: str) -> None:
        before, deadline = len(writer.acked), time.monotonic() + 90
        while len(writer.acked) < before + 20:
            assert writer.is_alive(), "the writer stopped before the schedule ended"
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- server {s}:\n" + "\n".join(
                    [line for line in c.logs(s).splitlines() if "Processing srvr command" not in line][-40:])
                    for s in c.sids)
                raise TimeoutError(f"no write acknowledged for 90 s after {what}; states {c.states()}; "
                                   f"{writer.failed} creates failed so far, the last: {writer.last_error}\n{tails}")
            await asyncio.sleep(0.1)

    for r in range(rounds):
        leader = await c.wait_for_leader(90)
        await c.wait_serving(timeout_s=90)
        followers = [s for s in c.sids if s != leader]
        fault = rng.choice(PARTITIONS)
        hold = rng.uniform(0.5, 4.0)            # how long the fault lasts: part of the schedule, not a wait
        log.append(f"round {r}: {fault} for {hold:.1f} s (leader was {leader})")
        killed = []
        if fault == "isolate leader":
            c.disconnect(leader)
        elif fault == "isolate follower":
            c.disconnect(rng.choice(followers))
        elif fault == "cut one link":            # the third server still talks to both sides
            c.partition({leader}, {rng.choice(followers)})
        elif fault == "isolate leader, then kill it":
            c.disconnect(leader)
            await asyncio.sleep(hold / 2)
            await c.kill(leader)
            killed.append(leader)
        else:
            await c.kill(leader)
            killed.append(leader)
        await asyncio.sleep(hold)
        c.heal()
        for sid in killed:
            await c.start_server(sid)
        await c.wait_for_leader(120)
        await c.wait_serving(timeout_s=120)
        await progress(f"round {r} ({fault})")


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("java", [pytest.param(False, id="zkref"), pytest.param(True, id="mixed", marks=pytest.mark.java)])
def test_random_partitions_lose_no_acknowledged_write(java, seed, tmp_path):
    """The mini cluster's links (election and quorum) go through proxies the test can cut: a seeded schedule
    isolates the leader (it must stop committing once it has no quorum, and step down), isolates a follower,
    cuts one leader–follower link while the third server still talks to both, isolates the leader and then
    kills it, or kills the leader, while a writer and a compare-and-set counter work through all three servers'
    client ports. After each fault heals the ensemble serves again and writes resume; at the end every server
    has every acknowledged write, the servers agree, and the counter was applied exactly as acknowledged (data =
    version, version between the acknowledged sets and those plus the unknown ones). In the mixed cluster
    server 2 is Java 3.8.
    Reference: Zab.tla Integrity, Agreement, PrimaryIntegrity; Java Leader.lead (the tick loop's quorum check:
    "Not sufficient followers synced, only synced with sids"), Learner read timeouts (syncLimit); ZooKeeper
    Programmer's Guide, "ZooKeeper guarantees\""""
    import asyncio

    from zkref.testing import MiniCluster, java_available as have_java
    if java and not have_java():
        pytest.skip("Java ZooKeeper is not installed")
    rng = random.Random(seed)
    log: list[str] = [f"mini cluster ({'mixed: server 2 is Java' if java else 'zkref'}), seed {seed}, {ROUNDS} rounds"]

    async def scenario(c):
        loop = asyncio.get_running_loop()
        await c.start()
        await c.wait_for_leader(90)
        await c.wait_serving(timeout_s=90)
        hosts = ",".join(f"127.0.0.1:{c.members[s].client_port}" for s in c.sids)
        writer, counter = Writer(hosts, limit=100_000, seconds=300, client_options=CLIENT), Counter(hosts, seconds=300)
        writer.start()
        counter.start()
        try:
            while len(writer.acked) < 50:
                assert writer.is_alive(), "the writer stopped before it got going"
                await asyncio.sleep(0.1)
            await partition_schedule(c, rng, ROUNDS, writer, log)
        finally:
            writer.halt.set()
            counter.halt.set()
            await loop.run_in_executor(None, writer.join, 60)
            await loop.run_in_executor(None, counter.join, 60)
            print("\n".join(log))
        log.append(f"writer: {len(writer.acked)} acknowledged, {writer.failed} unknown; counter: {counter.acked} "
                   f"acknowledged, {counter.unknown} unknown, {counter.conflicts} version conflicts")
        print(log[-1])
        await c.wait_for_leader(120)
        await c.wait_serving(timeout_s=120)
        seen = {s: await loop.run_in_executor(None, cluster_children_and_counter, c.members[s].client_port)
                for s in c.sids}
        logs = {s: c.logs(s) for s in c.sids if c.members[s].runtime != "java"}
        return writer, counter, seen, logs

    writer, counter, seen, logs = run_on_cluster_process(scenario, java, tmp_path)
    acked = set(writer.acked)
    for s, (children, _) in seen.items():
        assert acked <= children, f"server {s} lost acknowledged creates: {sorted(acked - children)[:10]}"
    assert len({frozenset(ch) for ch, _ in seen.values()}) == 1, "the servers disagree on /load's children"
    counters = {s: ctr for s, (_, ctr) in seen.items()}
    assert len(set(counters.values())) == 1, f"the servers disagree on the counter: {counters}"
    data, version = next(iter(counters.values()))
    assert data == str(version).encode(), f"counter data {data!r} at version {version}: a set applied twice?"
    assert counter.acked <= version <= counter.acked + counter.unknown, (version, counter.acked, counter.unknown)
    for s, text in logs.items():
        assert "Traceback (most recent call last)" not in text, f"server {s} logged a traceback"


def run_on_cluster_process(scenario, java: bool, root):
    "A three-server mini cluster of processes in `root` (server 2 Java when `java`), tickTime 200 ms; always closed."
    from conftest import run_on_cluster
    return run_on_cluster(scenario, 3, mode="process", java={2} if java else frozenset(), root=root)
