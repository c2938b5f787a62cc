"""Metrics: the providers, ServerMetrics' names and kinds, and Prometheus /metrics over real HTTP.

The Java side of the name comparison is the real Java ZooKeeper 3.8 server. Debian's `zookeeper` package
ships no `zookeeper-prometheus-metrics` jar (nor the Prometheus simpleclient jars), so the Java server
cannot serve /metrics here; it is compared through `mntr` with its default provider instead (every
provider metric appears there), and the Prometheus family names are compared with the metric names of
ServerMetrics.java and ZooKeeperServer.registerMetrics.
"""
from __future__ import annotations

import logging
import math
import re
import socket
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import four_letter_word, free_port
from zkref.metrics import (DEFAULT_METRICS_PROVIDER, SERVER_METRICS, ZOOKEEPER_SERVER_GAUGES, ZOOKEEPER_SERVER_GAUGE_SETS,
                           MetricsProviderBootstrap, ServerMetrics)
from zkref.metrics_provider import (ADVANCED, BASIC, DefaultMetricsProvider, MetricsProviderLifeCycleException,
                                    NullMetricsProvider, format_monitor_value, java_double_str)
from zkref.prometheus import PrometheusMetricsProvider

PROMETHEUS = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"


def scrape(port: int, path: str = "/metrics", method: str = "GET") -> tuple[int, str, str]:
    "One real HTTP request to 127.0.0.1:port; (status, content type, body)."
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(family) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}


@pytest.fixture
def prometheus():
    "Factory: a started Prometheus provider (own registry) on a free 127.0.0.1 port; all stopped after."
    started = []

    def start(**props):
        config = {"httpHost": "127.0.0.1", "httpPort": str(free_port()), **{k: str(v) for k, v in props.items()}}
        provider = MetricsProviderBootstrap.start_metrics_provider(PROMETHEUS, config)
        started.append(provider)
        return provider

    yield start
    for p in started:
        p.stop()


def server_gauges() -> dict:
    return {name: (lambda: 0) for name in ZOOKEEPER_SERVER_GAUGES}


def test_prometheus_metrics_served_over_http_with_java_names(prometheus):
    """The Prometheus provider serves every ServerMetrics metric and every registered gauge on GET /metrics
    in the text format, each under Java's name and Prometheus type (counter, summary, gauge).
    Reference: Java PrometheusMetricsProvider.start (servlet at /metrics) and ServerMetrics' constructor."""
    provider = prometheus()
    metrics = ServerMetrics(provider)
    metrics.register_gauges(server_gauges())
    status, ctype, text = scrape(provider.bound_port)
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    got = families(text)
    kinds = {"counter": "counter", "counter_set": "counter", "summary": "summary", "summary_set": "summary"}
    for _field, name, kind, *_ in SERVER_METRICS:
        assert name in got, name
        assert got[name].type == kinds[kind], name
    for name in ZOOKEEPER_SERVER_GAUGES:
        assert got[name].type == "gauge", name
    # simpleclient 0.9's exposition: counters keep their own name (no _total), labels end with a comma
    assert "\n# TYPE looking_count counter\nlooking_count 0.0\n" in text
    assert 'fsynctime{quantile="0.5",} NaN\n' in text


def test_prometheus_names_match_java_server_metrics_source():
    """The set of ZooKeeper families on /metrics is exactly the metric names of ServerMetrics.java (117)
    plus the gauges ZooKeeperServer.registerMetrics registers — nothing renamed, nothing extra.
    Reference: Java ServerMetrics(MetricsProvider) and ZooKeeperServer.registerMetrics."""
    provider = PrometheusMetricsProvider()
    provider.configure({"exportJvmInfo": "false"})
    metrics = ServerMetrics(provider)
    metrics.register_gauges(server_gauges())
    metrics.register_gauge_sets({n: dict for n in ZOOKEEPER_SERVER_GAUGE_SETS})
    names = {f.name for f in provider.collect()}
    expected = ({row[1] for row in SERVER_METRICS} | set(ZOOKEEPER_SERVER_GAUGES) | set(ZOOKEEPER_SERVER_GAUGE_SETS))
    assert names == expected
    assert len({row[1] for row in SERVER_METRICS}) == 117


def test_values_move_when_metrics_are_bumped(prometheus):
    """Counters, counter sets, summaries, summary sets and gauges all show new values on the next scrape;
    gauges are sampled at scrape time.
    Reference: Java PrometheusMetricsProvider.MetricsServletImpl.doGet (sampleGauges before serving)."""
    provider = prometheus()
    metrics = ServerMetrics(provider)
    nodes = {"n": 4}
    metrics.register_gauges({"znode_count": lambda: nodes["n"]})
    before = families(scrape(provider.bound_port)[2])
    assert samples(before["looking_count"])[("looking_count_total", ())] == 0.0   # the parser adds _total
    metrics.looking_count.inc()
    metrics.looking_count.add(2)
    metrics.fsync_time.add(10)
    metrics.fsync_time.add(20)
    metrics.write_per_namespace.add("app", 7)
    metrics.quota_exceeded_error_per_namespace.inc("/app")
    metrics.read_latency.add(5)
    nodes["n"] = 9
    after = families(scrape(provider.bound_port)[2])
    assert samples(after["looking_count"])[("looking_count_total", ())] == 3.0
    fs = samples(after["fsynctime"])
    assert fs[("fsynctime_count", ())] == 2.0 and fs[("fsynctime_sum", ())] == 30.0
    assert fs[("fsynctime", (("quantile", "0.5"),))] in (10.0, 20.0)
    wp = samples(after["write_per_namespace"])
    assert wp[("write_per_namespace_count", (("key", "app"),))] == 1.0
    assert samples(after["quota_exceeded_error_per_namespace"])[
        ("quota_exceeded_error_per_namespace_total", (("key", "/app"),))] == 1.0
    rl = samples(after["readlatency"])   # ADVANCED: quantiles 0.5, 0.9, 0.99
    assert {dict(k[1]).get("quantile") for k in rl if k[0] == "readlatency"} == {"0.5", "0.9", "0.99"}
    assert samples(after["znode_count"])[("znode_count", ())] == 9.0


def test_two_providers_in_one_process_do_not_share_values(prometheus):
    """Each server has its own provider and Prometheus registry, so two servers in one process report
    their own numbers (zkref has no global registry, unlike Java's CollectorRegistry.defaultRegistry).
    Reference: DESIGN.md §3 "nothing is global"; Java PrometheusMetricsProvider.collectorRegistry."""
    a, b = prometheus(), prometheus()
    ma, mb = ServerMetrics(a), ServerMetrics(b)
    ma.looking_count.add(5)
    mb.looking_count.inc()
    ma.election_time.add(100)
    fa, fb = families(scrape(a.bound_port)[2]), families(scrape(b.bound_port)[2])
    assert samples(fa["looking_count"])[("looking_count_total", ())] == 5.0
    assert samples(fb["looking_count"])[("looking_count_total", ())] == 1.0
    assert samples(fb["election_time"])[("election_time_count", ())] == 0.0
    d1, d2 = DefaultMetricsProvider(), DefaultMetricsProvider()
    ServerMetrics(d1).looking_count.inc()
    out = {}
    ServerMetrics(d2).dump(out.__setitem__)
    assert out["looking_count"] == 0


def test_export_jvm_info_adds_process_metrics_to_own_registry(prometheus):
    """exportJvmInfo=true (the default) exports the runtime's metrics next to ZooKeeper's — in Python the
    process_* and python_* families — and exportJvmInfo=false leaves them out.
    Reference: Java PrometheusMetricsProvider.start (DefaultExports.initialize when exportJvmInfo)."""
    on, off = prometheus(), prometheus(exportJvmInfo="false")
    names_on = set(families(scrape(on.bound_port)[2]))
    names_off = set(families(scrape(off.bound_port)[2]))
    assert {"process_resident_memory_bytes", "process_open_fds", "python_info"} <= names_on
    assert not any(n.startswith(("process_", "python_")) for n in names_off)


def test_only_metrics_path_is_served(prometheus):
    """The servlet is mounted at /metrics only: other paths are 404, TRACE is refused, POST is served as GET,
    and ?name[]= restricts the families returned.
    Reference: Java PrometheusMetricsProvider.start (addServlet at "/metrics", constrainTraceMethod);
    simpleclient MetricsServlet.doPost/doGet."""
    provider = prometheus()
    ServerMetrics(provider)
    assert scrape(provider.bound_port, "/")[0] == 404
    assert scrape(provider.bound_port, "/metricsx")[0] == 404
    assert scrape(provider.bound_port, "/metrics", "TRACE")[0] == 403
    assert scrape(provider.bound_port, "/metrics", "POST")[0] == 200
    status, _, text = scrape(provider.bound_port, "/metrics?name[]=looking_count&name[]=fsynctime")
    assert status == 200 and set(families(text)) == {"looking_count", "fsynctime"}


def test_provider_configuration_defaults_and_bad_values():
    """httpHost defaults to 0.0.0.0 and httpPort to 7000, exportJvmInfo to true; a non-numeric port is
    Java's NumberFormatException text; Boolean.parseBoolean makes anything but 'true' false.
    Reference: Java PrometheusMetricsProvider.configure."""
    p = PrometheusMetricsProvider()
    p.configure({})
    assert (p.host, p.port, p.export_jvm_info) == ("0.0.0.0", 7000, True)
    assert (p.num_worker_threads, p.max_queue_size, p.worker_shutdown_timeout_ms) == (1, 1000000, 1000)
    p.configure({"exportJvmInfo": "yes"})
    assert p.export_jvm_info is False
    with pytest.raises(ValueError, match=r'^For input string: "abc"$'):
        p.configure({"httpPort": "abc"})
    with pytest.raises(ValueError, match=r'^For input string: "99999999999"$'):
        p.configure({"httpPort": "99999999999"})


def test_unknown_provider_class_cannot_boot(caplog):
    """An unknown metricsProvider.className fails with Java's message "Cannot boot MetricsProvider <name>",
    logged at ERROR by the bootstrap.
    Reference: Java MetricsProviderBootstrap.startMetricsProvider."""
    with caplog.at_level(logging.ERROR):
        with pytest.raises(MetricsProviderLifeCycleException, match=r"^Cannot boot MetricsProvider com\.acme\.Nope$"):
            MetricsProviderBootstrap.start_metrics_provider("com.acme.Nope", {})
    assert "Cannot boot MetricsProvider com.acme.Nope" in caplog.text
    assert type(MetricsProviderBootstrap.start_metrics_provider(DEFAULT_METRICS_PROVIDER, {})) is DefaultMetricsProvider
    assert type(MetricsProviderBootstrap.start_metrics_provider(
        "org.apache.zookeeper.metrics.impl.NullMetricsProvider", {})) is NullMetricsProvider


def test_port_in_use_is_a_lifecycle_error():
    """A /metrics port that cannot be bound stops the boot with a MetricsProviderLifeCycleException
    (Java logs "Cannot start /metrics server" and rethrows).
    Reference: Java PrometheusMetricsProvider.start."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(MetricsProviderLifeCycleException):
            MetricsProviderBootstrap.start_metrics_provider(PROMETHEUS, {"httpHost": "127.0.0.1", "httpPort": str(port)})
    with pytest.raises(MetricsProviderLifeCycleException, match="port out of range:70000"):
        MetricsProviderBootstrap.start_metrics_provider(PROMETHEUS, {"httpHost": "127.0.0.1", "httpPort": "70000"})


def test_stop_closes_the_endpoint_and_may_be_repeated(prometheus):
    """stop() releases the HTTP endpoint, never throws and can be called more than once.
    Reference: Java MetricsProvider.stop javadoc."""
    provider = prometheus()
    port = provider.bound_port
    assert scrape(port)[0] == 200
    provider.stop()
    provider.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_summary_levels_cannot_be_mixed():
    """A name taken by a BASIC summary cannot be asked for as ADVANCED, and the other way round.
    Reference: Java DefaultMetricsProvider.DefaultMetricsContext.getSummary / getSummarySet."""
    for provider in (DefaultMetricsProvider(), PrometheusMetricsProvider()):
        ctx = provider.get_root_context()
        ctx.get_summary("x", BASIC)
        with pytest.raises(ValueError, match="^Already registered a basic summary as x$"):
            ctx.get_summary("x", ADVANCED)
        ctx.get_summary_set("y", ADVANCED)
        with pytest.raises(ValueError, match="^Already registered a non basic summary set as y$"):
            ctx.get_summary_set("y", BASIC)
        assert ctx.get_summary("x", BASIC) is ctx.get_summary("x", BASIC)


def test_default_provider_mntr_values_and_reset():
    """The default provider dumps summaries as avg_/min_/max_/cnt_/sum_ (plus p50_/p95_/p99_/p999_ when
    ADVANCED), averages rounded half-up to 4 places; reset_all_values zeroes all but gauges.
    Reference: Java AvgMinMaxCounter.values/getAvg, AvgMinMaxPercentileCounter.values, DefaultMetricsProvider.resetAllValues."""
    metrics = ServerMetrics(DefaultMetricsProvider())
    metrics.register_gauges({"znode_count": lambda: 7})
    for v in (1, 2, 2):
        metrics.fsync_time.add(v)
    for v in range(1, 101):
        metrics.read_latency.add(v)
    out = {}
    metrics.dump(out.__setitem__)
    assert (out["avg_fsynctime"], out["min_fsynctime"], out["max_fsynctime"], out["cnt_fsynctime"],
            out["sum_fsynctime"]) == (1.6667, 1, 2, 3, 5)
    assert (out["p50_readlatency"], out["p95_readlatency"], out["p99_readlatency"], out["p999_readlatency"]) == (51, 96, 100, 100)
    metrics.reset_all()
    out = {}
    metrics.dump(out.__setitem__)
    assert out["cnt_fsynctime"] == 0 and out["max_readlatency"] == 0 and out["znode_count"] == 7


def test_mntr_value_formatting_as_java():
    """mntr prints integers as integers and other numbers with Java's Double.toString.
    Reference: Java MonitorCommand.print; java.lang.Double.toString."""
    assert [format_monitor_value(v) for v in (0, -1, 0.0, 26.0, 1.6667, 1e7, 1.5e-4, 0.001, 123456789.0)] == \
        ["0", "-1", "0.0", "26.0", "1.6667", "1.0E7", "1.5E-4", "0.001", "1.23456789E8"]
    assert java_double_str(math.nan) == "NaN" and java_double_str(-2.5) == "-2.5"


@pytest.mark.java
def test_default_provider_keys_equal_java_mntr(java_zk):
    """With the default provider, every key the real Java 3.8 server prints in mntr after zk_version and
    zk_server_state comes from ServerMetrics plus the server's gauges; zkref's ServerMetrics on its default
    provider, with the same gauges registered, dumps exactly the same key set, and the untouched values
    print identically.
    Reference: Java MonitorCommand.commandRun, DefaultMetricsProvider.dump, ZooKeeperServer.registerMetrics."""
    server = java_zk({"4lw.commands.whitelist": "*"})
    text = four_letter_word(server.client_port, "mntr")
    java = dict(line.split("\t", 1) for line in text.splitlines() if line)
    java = {k[len("zk_"):]: v for k, v in java.items()}
    assert java.pop("server_state") == "standalone" and java.pop("version")
    metrics = ServerMetrics(DefaultMetricsProvider())
    metrics.register_gauges(server_gauges())
    metrics.register_gauge_sets({n: dict for n in ZOOKEEPER_SERVER_GAUGE_SETS})
    ours = {}
    metrics.dump(ours.__setitem__)
    assert set(ours) == set(java)
    # counters and summaries nobody touched yet read the same in both (one value each: no moving parts)
    for key in ("looking_count", "avg_election_time", "p99_readlatency", "cnt_follower_sync_time", "diff_count"):
        assert format_monitor_value(ours[key]) == java[key], key


def test_gauges_registered_from_the_server_loop_are_read_on_it():
    """zkref's server state lives on its event loop, so gauges registered from a coroutine are sampled on
    that loop when /metrics is scraped from the HTTP thread (Java leaves callback thread safety to the
    application; zkref's server keeps its state unlocked on one loop).
    Reference: Java Gauge.get javadoc ("without taking care of synchronization"); DESIGN.md §3 one loop per server."""
    import asyncio
    import threading

    async def scenario():
        provider = MetricsProviderBootstrap.start_metrics_provider(
            PROMETHEUS, {"httpHost": "127.0.0.1", "httpPort": str(free_port()), "exportJvmInfo": "false"})
        try:
            threads = []
            ServerMetrics(provider).register_gauges(
                {"watch_count": lambda: threads.append(threading.get_ident()) or 3})
            status, _, text = await asyncio.get_running_loop().run_in_executor(None, scrape, provider.bound_port)
            return status, text, threads, threading.get_ident()
        finally:
            provider.stop()

    status, text, threads, loop_thread = asyncio.run(scenario())
    assert status == 200 and "\nwatch_count 3.0\n" in text
    assert threads == [loop_thread]


def test_start_logs_javas_lines(caplog):
    """Booting the Prometheus provider logs Java's lines: the configuration, then
    "Starting /metrics HTTP endpoint at host: H, port: P, exportJvmInfo: true"; ServerMetrics logs the provider.
    Reference: Java PrometheusMetricsProvider.configure/start, ServerMetrics.metricsProviderInitialized."""
    port = free_port()
    with caplog.at_level(logging.INFO):
        provider = MetricsProviderBootstrap.start_metrics_provider(PROMETHEUS, {"httpHost": "127.0.0.1", "httpPort": str(port)})
        try:
            ServerMetrics(provider)
        finally:
            provider.stop()
    msgs = [r.getMessage() for r in caplog.records]
    assert f"Initializing metrics, configuration: {{httpHost=127.0.0.1, httpPort={port}}}" in msgs
    assert f"Starting /metrics HTTP endpoint at host: 127.0.0.1, port: {port}, exportJvmInfo: true" in msgs
    assert any(re.fullmatch(r"ServerMetrics initialized with provider "
                            r"org\.apache\.zookeeper\.metrics\.prometheus\.PrometheusMetricsProvider@[0-9a-f]+", m)
               for m in msgs)


JAVA_DOUBLE_TO_STRING = """import java.io.*;
public class DoubleToString { public static void main(String[] a) throws Exception {
  BufferedReader r = new BufferedReader(new InputStreamReader(System.in)); String l;
  while ((l = r.readLine()) != null) System.out.println(Double.toString(Double.longBitsToDouble(Long.parseLong(l))));
}}
"""


@pytest.mark.java
def test_double_formatting_matches_java(tmp_path):
    """mntr prints non-integer values with Java's Double.toString; zkref's formatting equals the real JVM's
    for values from 1e-8 to 1e16 (averages, latencies, sizes). Beyond 1e16 and for subnormals the JDK 17
    algorithm prints non-shortest digits that zkref does not reproduce (a documented divergence).
    Reference: java.lang.Double.toString (JDK 17, the JVM Debian's ZooKeeper runs on); Java MonitorCommand.print."""
    import random
    import shutil
    import struct
    import subprocess
    if not (shutil.which("javac") and shutil.which("java")):
        pytest.skip("needs a JDK (javac)")
    (tmp_path / "DoubleToString.java").write_text(JAVA_DOUBLE_TO_STRING)
    subprocess.run(["javac", "DoubleToString.java"], cwd=tmp_path, check=True, timeout=60)
    rng = random.Random(20261126)
    values = [0.0, 1.0, 0.1, 1 / 3, 1.6667, 26.0, 1e-3, 9.999e-4, 1e7, 9999999.5, 1.5e-4, 123456789.0]
    values += [10 ** rng.uniform(-8, 16) for _ in range(3000)] + [rng.randint(0, 10**6) / 7 for _ in range(1000)]
    values += [round(rng.uniform(0, 1000), 4) for _ in range(1000)]
    bits = "\n".join(str(struct.unpack(">q", struct.pack(">d", v))[0]) for v in values) + "\n"
    java = subprocess.run(["java", "-cp", str(tmp_path), "DoubleToString"], input=bits, capture_output=True,
                          text=True, timeout=60, check=True).stdout.split()
    assert len(java) == len(values)
    mismatches = [(v, j, java_double_str(v)) for v, j in zip(values, java) if java_double_str(v) != j]
    assert mismatches == []


JAVA_SUMMARIES = """import java.io.*; import java.util.*;
import org.apache.zookeeper.server.metric.*;
public class Summaries { public static void main(String[] a) throws Exception {
  BufferedReader r = new BufferedReader(new InputStreamReader(System.in)); String l;
  AvgMinMaxPercentileCounter p = new AvgMinMaxPercentileCounter("x"); AvgMinMaxCounter c = new AvgMinMaxCounter("y");
  while ((l = r.readLine()) != null) {
    if (l.equals("-")) {
      for (Map.Entry<String,Object> e : p.values().entrySet()) System.out.println(e.getKey() + "=" + e.getValue());
      for (Map.Entry<String,Object> e : c.values().entrySet()) System.out.println(e.getKey() + "=" + e.getValue());
      System.out.println("-");
      p = new AvgMinMaxPercentileCounter("x"); c = new AvgMinMaxCounter("y");
    } else { long v = Long.parseLong(l); p.add(v); c.add(v); }
  }
}}
"""


@pytest.mark.java
def test_default_summaries_equal_javas_classes(tmp_path):
    """The default provider's summaries compute what ZooKeeper's own AvgMinMaxCounter and
    AvgMinMaxPercentileCounter compute (avg rounded half-up to 4 places, Dropwizard's uniform-snapshot
    percentiles rounded with Math.round), checked by feeding the same values to the classes in Debian's
    zookeeper.jar and printing them as mntr does. Up to 4096 values the reservoir keeps every value, so the
    comparison is exact.
    Reference: Java AvgMinMaxCounter.values, AvgMinMaxPercentileCounter.values (zookeeper 3.8.0 jar)."""
    import random
    import shutil
    import subprocess
    from zkref.metric_counters import AvgMinMaxCounter, AvgMinMaxPercentileCounter
    if not (shutil.which("javac") and shutil.which("java")):
        pytest.skip("needs a JDK (javac)")
    cp = "/usr/share/java/zookeeper.jar:/usr/share/java/metrics-core.jar"
    (tmp_path / "Summaries.java").write_text(JAVA_SUMMARIES)
    subprocess.run(["javac", "-cp", cp, "Summaries.java"], cwd=tmp_path, check=True, timeout=60)
    rng = random.Random(3)
    datasets = [[], [5], [1, 2, 2], list(range(1, 101)), [rng.randint(-50, 50) for _ in range(17)],
                [rng.randint(0, 10**6) for _ in range(1000)], [rng.randint(0, 300) for _ in range(4096)],
                [rng.choice((1, 2, 3)) for _ in range(7)]]
    feed = "".join("".join(f"{v}\n" for v in d) + "-\n" for d in datasets)
    out = subprocess.run(["java", "-cp", f"{cp}:{tmp_path}", "Summaries"], input=feed, capture_output=True,
                         text=True, timeout=60, check=True).stdout
    java_blocks = [dict(line.split("=", 1) for line in block.strip().splitlines())
                   for block in out.split("-\n") if block.strip()]
    assert len(java_blocks) == len(datasets)
    for data, java in zip(datasets, java_blocks):
        p, c = AvgMinMaxPercentileCounter("x"), AvgMinMaxCounter("y")
        for v in data:
            p.add(v)
            c.add(v)
        ours = {k: format_monitor_value(v) for k, v in {**p.values(), **c.values()}.items()}
        assert ours == java, data[:10]


def test_adds_from_many_threads_are_all_counted():
    """Java's counters are AtomicLongs (SimpleCounter, AvgMinMaxCounter's total/count/min/max): an add made on any
    thread is never lost. zkref's adds are appended without a lock and folded in when read or by the folder thread
    (chapter 05b); four threads adding at once (through `add` and `add_int`) while a fifth reads must still sum
    exactly.
    Reference: Java SimpleCounter.add (AtomicLong.addAndGet), AvgMinMaxCounter.addDataPoint."""
    import threading
    from zkref.metric_counters import AvgMinMaxCounter, AvgMinMaxPercentileCounter, SimpleCounter
    s, a, p = SimpleCounter("s"), AvgMinMaxCounter("a"), AvgMinMaxPercentileCounter("p")
    n, workers, stop = 20_000, 4, threading.Event()

    def adder(k):
        for i in range(n):
            if i % 2:
                s.add(1)
                a.add(k * n + i)
                p.add(i % 7)
            else:
                s.add_int(1)
                a.add_int(k * n + i)
                p.add_int(i % 7)

    def reader():
        while not stop.is_set():
            s.get(), a.values(), p.values()

    r = threading.Thread(target=reader)
    r.start()
    ts = [threading.Thread(target=adder, args=(k,)) for k in range(workers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    stop.set()
    r.join(60)
    total = workers * n
    assert s.get() == total
    assert (a.count, a.min, a.max, a.total) == (total, 0, total - 1, total * (total - 1) // 2)
    assert p.count == total and p.max == 6 and len(p._reservoir) == 4096
    s.reset(), a.reset(), p.reset()
    assert (s.get(), a.count, p.count, p.values()["p50_p"]) == (0, 0, 0, 0)


def test_reservoir_sampling_follows_algorithm_r_whatever_the_folds():
    """Past 4096 values, the n-th value replaces slot ⌊u·n⌋ when that is below 4096 (Java's
    ResettableUniformReservoir.update, ThreadLocalRandom.nextLong(count)). Folding the pending adds in batches
    must draw the same random numbers for the same values in the same order as adding them one at a time.
    Reference: Java AvgMinMaxPercentileCounter.ResettableUniformReservoir.update."""
    import random
    from zkref.metric_counters import RESERVOIR_SIZE, AvgMinMaxPercentileCounter
    values = [random.Random(7).randint(0, 10**6) for _ in range(3 * RESERVOIR_SIZE + 11)]
    expected, rng, seen = [], random.Random(42), 0          # algorithm R, written out one value at a time
    for v in values:
        seen += 1
        if seen <= RESERVOIR_SIZE:
            expected.append(v)
        else:
            slot = int(rng.random() * seen)
            if slot < RESERVOIR_SIZE:
                expected[slot] = v
    for read_every in (1, 97, 5000):                         # fold after every add, now and then, or at the end
        p = AvgMinMaxPercentileCounter("x", rng=random.Random(42))
        for i, v in enumerate(values):
            p.add(v)
            if i % read_every == 0:
                p.values()
        p.values()
        assert p._reservoir == expected, read_every


def test_a_value_that_is_no_number_fails_in_add_and_loses_nothing():
    """Java's add takes a long: a fractional value is truncated, and nothing but a number can be passed. zkref's
    adds are folded in later (chapter 05b), so a bad value must fail in the caller's `add`, not in a later fold
    that would drop the values pending with it.
    Reference: Java SimpleCounter.add(long), AvgMinMaxCounter.add(long)."""
    from zkref.metric_counters import AvgMinMaxCounter, AvgMinMaxPercentileCounter, SimpleCounter
    for c in (SimpleCounter("s"), AvgMinMaxCounter("a"), AvgMinMaxPercentileCounter("p")):
        c.add(3)
        c.add(2.9)                                    # truncated, as a long parameter
        with pytest.raises((TypeError, ValueError)):
            c.add("not a number")
        with pytest.raises((TypeError, ValueError)):
            c.add(None)
        c.add(4)
        if isinstance(c, SimpleCounter):
            assert c.get() == 9
        else:
            assert (c.count, c.total, c.min, c.max) == (3, 9, 2, 4)


def test_pending_adds_are_folded_without_a_reader():
    """A counter nobody reads must not grow without bound: Java's AtomicLong/LongAdder holds one number whatever the
    adds. zkref's `add_int` only appends (chapter 05b), so the folder thread folds every live counter's pending
    values every FOLD_EVERY seconds; a counter that no one reads holds at most one round's adds.
    Reference: Java SimpleCounter (AtomicLong), AvgMinMaxCounter (AtomicLongs), chapter 05b's folder thread."""
    import threading
    import time
    from zkref.metric_counters import FOLD_EVERY, AvgMinMaxPercentileCounter, SimpleCounter
    s, p = SimpleCounter("s"), AvgMinMaxPercentileCounter("p")
    for i in range(10_000):
        s.add_int(1)
        p.add_int(i)
    deadline = time.monotonic() + 10 * FOLD_EVERY
    while (s._pending or p._pending) and time.monotonic() < deadline:
        time.sleep(FOLD_EVERY / 5)
    assert not s._pending and not p._pending            # folded without get/values being called
    assert s._value == 10_000 and (p._count, p._total, p._min, p._max) == (10_000, 49_995_000, 0, 9_999)
    assert len(p._reservoir) == 4096
    assert [t for t in threading.enumerate() if t.name == "zkref-metrics-folder" and t.daemon]


def test_every_provider_metric_takes_add_int():
    """The request path counts through `add_int` (chapter 05b); every provider's counters, summaries and their sets
    take it with the same meaning as `add`: the default provider (Java's DefaultMetricsProvider), Prometheus
    (Java's PrometheusMetricsProvider) and the null provider (Java's NullMetricsProvider).
    Reference: Java Counter.add(long), Summary.add(long), CounterSet.add(String, long), SummarySet.add(String, long)."""
    from zkref.metrics_provider import BASIC, ADVANCED, DefaultMetricsProvider, NullMetricsProvider
    from zkref.prometheus import PrometheusMetricsProvider
    for provider in (DefaultMetricsProvider(), PrometheusMetricsProvider(), NullMetricsProvider()):
        ctx = provider.get_root_context()
        c, cs = ctx.get_counter("c"), ctx.get_counter_set("cs")
        b, a = ctx.get_summary("b", BASIC), ctx.get_summary("a", ADVANCED)
        bs, as_ = ctx.get_summary_set("bs", BASIC), ctx.get_summary_set("as", ADVANCED)
        c.add(2); c.add_int(3); cs.add("k", 2); cs.add_int("k", 3)
        for m in (b, a):
            m.add(2); m.add_int(4)
        for m in (bs, as_):
            m.add("k", 2); m.add_int("k", 4)
        if isinstance(provider, NullMetricsProvider):
            continue
        got = {}
        provider.dump(lambda k, v: got.__setitem__(k, v))
        if isinstance(provider, DefaultMetricsProvider):
            assert got["c"] == 5 and got["k_cs"] == 5
            assert all(got[f"{f}_{n}"] == v for n in ("b", "a", "k_bs", "k_as")
                       for f, v in (("cnt", 2), ("sum", 6), ("min", 2), ("max", 4)))


def test_a_provider_without_add_int_still_counts_the_request_path():
    """`metricsProvider.className` may name a provider class of the user's (a dotted Python path; divergences
    page). Its metrics may know only Java's `add`; the request path's `add_int` (chapter 05b) must then reach that
    `add`, and everything else of the metric stays the provider's.
    Reference: Java ServerMetrics.metricsProviderInitialized (any MetricsProvider's Counter/Summary.add)."""
    from zkref.metrics import ServerMetrics
    from zkref.metrics_provider import MetricsContext, MetricsProvider

    class Recorder:
        def __init__(self, name):
            self.name, self.seen = name, []
        def add(self, *a):
            self.seen.append(a)

    class Context(MetricsContext):
        def __init__(self):
            self.made = {}
        def _make(self, name, *_):
            return self.made.setdefault(name, Recorder(name))
        get_counter = get_counter_set = get_summary = get_summary_set = _make
        def register_gauge(self, *a): pass
        def unregister_gauge(self, *a): pass
        def register_gauge_set(self, *a): pass
        def unregister_gauge_set(self, *a): pass

    class Provider(MetricsProvider):
        def __init__(self):
            self.ctx = Context()
        def get_root_context(self):
            return self.ctx

    m = ServerMetrics(Provider())
    m.read_latency.add_int(7)
    m.read_per_namespace.add_int("app", 12)
    m.response_bytes.add(3)
    assert m.read_latency.seen == [(7,)] and m.read_latency.name == "readlatency"
    assert m.read_per_namespace.seen == [("app", 12)] and m.response_bytes.seen == [(3,)]


def test_a_bad_value_given_to_add_int_is_logged_and_the_counter_goes_on(caplog):
    """`add_int` trusts its caller (chapter 05b): a value that is no int is only found when the folder thread folds
    it. That fold must say so and leave the counter working, and the other counters folding, instead of killing the
    folder thread (which would let every counter's pending values grow for the life of the process).
    Reference: Java SimpleCounter.add(long) — a bad value cannot reach Java's counter at all."""
    import logging
    from zkref.metric_counters import SimpleCounter, fold_all
    bad, good = SimpleCounter("bad"), SimpleCounter("good")
    bad.add_int("not a number")
    good.add_int(2)
    with caplog.at_level(logging.WARNING, logger="MetricsFolder"):
        fold_all()
    assert "Cannot fold the values added to bad" in caplog.text
    assert good.get() == 2 and not bad._pending
    bad.add_int(5)
    assert bad.get() == 5
