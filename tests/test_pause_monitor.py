"""The pause monitor (Java's JvmPauseMonitor as an event-loop stall monitor) and QuorumPeer.initialize's
quorum authentication choice."""
from __future__ import annotations

import asyncio
import gc
import logging
import re
import socket
import time
from types import SimpleNamespace

import pytest

from zkref.metrics import DefaultMetricsProvider, ServerMetrics
from zkref.quorum.initialize import (JvmPauseMonitor, NullQuorumAuthLearner, NullQuorumAuthServer,
                                     QuorumSaslNotSupported, initialize_quorum_auth)

PAUSE_LINE = "Detected pause in JVM or host machine (eg GC): pause of approximately "


async def wait_until(condition, rounds: int = 250, step_s: float = 0.02) -> bool:
    "Poll `condition()` on the loop, a bounded number of times; True once it holds."
    for _ in range(rounds):
        if condition():
            return True
        await asyncio.sleep(step_s)
    return condition()


def test_detects_a_real_blocking_stall(caplog):
    """A coroutine that blocks the event loop (time.sleep) freezes every task on it; the monitor wakes late,
    logs Java's "Detected pause in JVM or host machine (eg GC): pause of approximately N ms, total pause:
    info level: 1, warn level: 0" with the GC line ("No GCs detected" or the pools that ran), counts it at
    INFO level (below the WARN threshold) and records the delay in jvm_pause_time_ms.
    Reference: Java JvmPauseMonitor.JVMMonitor.run and formatMessage."""
    block_ms, sleep_ms = 800, 50

    async def scenario():
        metrics = ServerMetrics(DefaultMetricsProvider())
        monitor = JvmPauseMonitor(info_threshold_ms=300, warn_threshold_ms=60_000, sleep_time_ms=sleep_ms,
                                  metrics=metrics)
        task = monitor.service_start()
        assert monitor.is_started() and task.get_name() == "JvmPauseMonitor"
        await asyncio.sleep(0.1)
        time.sleep(block_ms / 1000)   # the stall under test: blocks the loop the monitor runs on
        seen = await wait_until(lambda: monitor.num_gc_info_threshold_exceeded >= 1)
        monitor.service_stop()
        out = {}
        metrics.dump(out.__setitem__)
        return seen, monitor, out

    with caplog.at_level(logging.INFO):
        seen, monitor, out = asyncio.run(scenario())
    assert seen
    assert monitor.num_gc_warn_threshold_exceeded == 0
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith(PAUSE_LINE)]
    assert lines, caplog.text
    parsed = []   # (pause_ms, head, gc part): the longest is our stall (a busy host may add shorter ones)
    for line in lines:
        head, gc_part = line.split(" \n", 1)
        parsed.append((int(head[len(PAUSE_LINE):].split(" ms")[0]), head, gc_part))
    pause_ms, head, gc_part = max(parsed)
    assert pause_ms >= block_ms - sleep_ms   # the nap cannot end before the loop is free again
    assert re.search(r" ms, total pause: info level: [1-9]\d*, warn level: 0$", head), head
    assert gc_part == "No GCs detected" or gc_part.startswith("GC pool 'generation ")
    assert out["max_jvm_pause_time_ms"] >= block_ms - sleep_ms
    assert any(r.levelno == logging.INFO and r.name == "JvmPauseMonitor$JVMMonitor" and
               r.getMessage().startswith(PAUSE_LINE) for r in caplog.records)


def test_stall_beyond_warn_threshold_is_a_warning(caplog):
    """A delay beyond jvm.pause.warn-threshold.ms is logged at WARN and counted as a warn-level pause
    (and not also as an info-level one).
    Reference: Java JvmPauseMonitor.JVMMonitor.run (if warn … else if info)."""
    async def scenario():
        monitor = JvmPauseMonitor(info_threshold_ms=100, warn_threshold_ms=300, sleep_time_ms=50)
        monitor.service_start()
        await asyncio.sleep(0.1)
        time.sleep(0.7)
        seen = await wait_until(lambda: monitor.num_gc_warn_threshold_exceeded >= 1)
        monitor.service_stop()
        return seen, monitor

    with caplog.at_level(logging.INFO):
        seen, monitor = asyncio.run(scenario())
    assert seen
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.getMessage().startswith(PAUSE_LINE)]
    assert warnings and "warn level: 1" in warnings[0].getMessage()


def test_gc_during_the_stall_is_reported_per_generation(caplog):
    """The pause message lists the collections that ran during the nap, as Java lists GC pools:
    "GC pool '<name>' had collection(s): count=N time=Mms".
    Reference: Java JvmPauseMonitor.formatMessage (gcDiffs)."""
    async def scenario():
        monitor = JvmPauseMonitor(info_threshold_ms=200, warn_threshold_ms=60_000, sleep_time_ms=50)
        monitor.service_start()
        await asyncio.sleep(0.1)
        time.sleep(0.5)
        gc.collect()
        seen = await wait_until(lambda: monitor.num_gc_info_threshold_exceeded >= 1)
        monitor.service_stop()
        return seen

    with caplog.at_level(logging.INFO):
        assert asyncio.run(scenario())
    assert "GC pool 'generation 2' had collection(s): count=" in caplog.text


def test_start_line_defaults_and_config():
    """The monitor takes Java's keys and defaults (sleep 500 ms, info 1000 ms, warn 10000 ms), is built from
    a config's jvm_pause_* values, logs Java's start line, and stops cleanly (idempotently).
    Reference: Java JvmPauseMonitor constants, JvmPauseMonitor(QuorumPeerConfig), JVMMonitor.run."""
    assert (JvmPauseMonitor.SLEEP_TIME_MS_KEY, JvmPauseMonitor.INFO_THRESHOLD_KEY, JvmPauseMonitor.WARN_THRESHOLD_KEY,
            JvmPauseMonitor.JVM_PAUSE_MONITOR_FEATURE_SWITCH_KEY) == (
        "jvm.pause.sleep.time.ms", "jvm.pause.info-threshold.ms", "jvm.pause.warn-threshold.ms", "jvm.pause.monitor")
    m = JvmPauseMonitor()
    assert (m.sleep_time_ms, m.info_threshold_ms, m.warn_threshold_ms) == (500, 1000, 10000)
    config = SimpleNamespace(jvm_pause_info_threshold_ms=11, jvm_pause_warn_threshold_ms=22, jvm_pause_sleep_time_ms=33)
    m = JvmPauseMonitor.from_config(config)
    assert (m.info_threshold_ms, m.warn_threshold_ms, m.sleep_time_ms) == (11, 22, 33)
    with pytest.raises(ValueError, match="jvm.pause.sleep.time.ms must be a positive"):
        JvmPauseMonitor(sleep_time_ms=0)

    records = []

    class Keep(logging.Handler):
        def emit(self, record): records.append(record)

    async def scenario():
        handler = Keep()
        logging.getLogger("JvmPauseMonitor$JVMMonitor").addHandler(handler)
        logging.getLogger("JvmPauseMonitor$JVMMonitor").setLevel(logging.INFO)
        try:
            monitor = JvmPauseMonitor(sleep_time_ms=20)
            task = monitor.service_start()
            assert await wait_until(lambda: records)
            monitor.service_stop()
            monitor.service_stop()
            await asyncio.gather(task, return_exceptions=True)
            return task
        finally:
            logging.getLogger("JvmPauseMonitor$JVMMonitor").removeHandler(handler)

    task = asyncio.run(scenario())
    assert task.cancelled()
    assert records[0].getMessage() == \
        "Starting JVM Pause Monitor with infoThresholdMs:1000 warnThresholdMs:10000 and sleepTimeMs:20"


def test_null_quorum_auth_exchanges_no_bytes():
    """With quorum.auth.enableSasl=false (the default) both sides' authentication step is a no-op: no byte
    is written or read on the peer connection.
    Reference: Java QuorumPeer.initialize; NullQuorumAuthServer/NullQuorumAuthLearner.authenticate."""
    async def scenario():
        a, b = socket.socketpair()
        ra, wa = await asyncio.open_connection(sock=a)
        rb, wb = await asyncio.open_connection(sock=b)
        server, learner = initialize_quorum_auth(False)
        assert isinstance(server, NullQuorumAuthServer) and isinstance(learner, NullQuorumAuthLearner)
        await learner.authenticate(ra, wa, "127.0.0.1")
        await server.authenticate(rb, wb)
        wa.write(b"X")                     # the first byte after the auth step is the protocol's own
        await wa.drain()
        first = await asyncio.wait_for(rb.readexactly(1), 5)
        wa.close()
        wb.close()
        return first

    assert asyncio.run(scenario()) == b"X"


def test_quorum_sasl_needs_its_jaas_sections(tmp_path):
    """quorum.auth.enableSasl=true makes QuorumPeer.initialize build the SASL pair, which needs the JAAS file's
    QuorumServer and QuorumLearner sections: without a file, or without a section, it fails with Java's message
    ("Failed to initialize authentication mechanism using SASL"), and a Kerberos section is refused (zkref has
    DIGEST-MD5 only). Reference: Java QuorumPeer.initialize, SaslQuorumAuthServer/Learner constructors"""
    from zkref.quorum.quorum_auth import SaslQuorumAuthLearner, SaslQuorumAuthServer
    from zkref.server.sasl import SaslException
    with pytest.raises(SaslException, match=r"^Failed to initialize authentication mechanism using SASL"):
        initialize_quorum_auth(True)
    jaas = tmp_path / "jaas.conf"
    jaas.write_text('QuorumServer { org.apache.zookeeper.server.auth.DigestLoginModule required user_p="s"; };\n')
    props = {"java.security.auth.login.config": str(jaas)}.get
    with pytest.raises(SaslException, match=r"section 'QuorumLearner' could not be found"):
        initialize_quorum_auth(True, True, True, props=props)
    jaas.write_text(jaas.read_text() + 'QuorumLearner { org.apache.zookeeper.server.auth.DigestLoginModule required '
                    'username="p" password="s"; };\n')
    server, learner = initialize_quorum_auth(True, True, True, props=props)
    assert isinstance(server, SaslQuorumAuthServer) and isinstance(learner, SaslQuorumAuthLearner)
    jaas.write_text('QuorumServer { com.sun.security.auth.module.Krb5LoginModule required; };\n')
    with pytest.raises(QuorumSaslNotSupported, match="Krb5LoginModule"):
        initialize_quorum_auth(True, props=props)


@pytest.mark.java
def test_message_has_the_java_servers_shape(java_zk, caplog):
    """Freezing the real Java 3.8 server (SIGSTOP, then SIGCONT) makes its JvmPauseMonitor log
    "Detected pause in JVM or host machine (eg GC): pause of approximately N ms, total pause: info level: I,
    warn level: W " and, on the next line, the GC pools or "No GCs detected"; a stall of zkref's event loop
    produces a message of exactly the same shape, from a logger whose class part reads as Java's.
    Reference: Java JvmPauseMonitor.formatMessage; ZooKeeper Admin Guide "jvm.pause.*"."""
    import signal
    from conftest import wait_for

    server = java_zk({"jvm.pause.monitor": "true", "jvm.pause.info-threshold.ms": "200",
                      "jvm.pause.sleep.time.ms": "50"})
    wait_for(lambda: "Starting JVM Pause Monitor" in server.logs(), 30, what="the Java pause monitor to start")
    # Java's monitor thread logs "Starting" before it takes its first start time: a freeze in between is no
    # pause to it. So let it run its loop a while first, and on a loaded machine, where that thread may not have
    # been scheduled even then, freeze it again (at most three freezes in all).
    time.sleep(0.5)
    for attempt in range(3):
        server.proc.send_signal(signal.SIGSTOP)   # the stall under test (our own process, by PID)
        try:
            time.sleep(0.8)
        finally:
            server.proc.send_signal(signal.SIGCONT)
        try:
            wait_for(lambda: "Detected pause in JVM" in server.logs(), 10, what="the Java server to report the pause")
            break
        except TimeoutError:
            if attempt == 2:
                raise
    text = server.logs()
    m = re.search(r"\[[^\]]*:(JvmPauseMonitor\$JVMMonitor)@\d+\] - (Detected pause in JVM[^\n]*)\n([^\n]*)", text)
    assert m, text[-2000:]
    java_class, java_head, java_next = m.groups()
    shape = re.escape(java_head)
    shape = re.sub(r"\\?\d+", r"\\d+", shape)
    assert re.fullmatch(shape, java_head)

    async def scenario():
        monitor = JvmPauseMonitor(info_threshold_ms=200, warn_threshold_ms=60_000, sleep_time_ms=50)
        monitor.service_start()
        await asyncio.sleep(0.1)
        time.sleep(0.5)
        seen = await wait_until(lambda: monitor.num_gc_info_threshold_exceeded >= 1)
        monitor.service_stop()
        return seen

    with caplog.at_level(logging.INFO):
        assert asyncio.run(scenario())
    ours = [r for r in caplog.records if r.getMessage().startswith(PAUSE_LINE)][0]
    head, gc_part = ours.getMessage().split("\n", 1)
    assert re.fullmatch(shape, head), (java_head, head)
    assert ours.name == java_class
    gc_shape = r"No GCs detected|GC pool '[^']+' had collection\(s\): count=\d+ time=\d+ms"
    assert re.match(gc_shape, java_next) and re.match(gc_shape, gc_part)
