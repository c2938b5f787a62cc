"""The Prometheus provider's metrics (zkref.prometheus_metrics) and its page (zkref.prometheus), scraped over real HTTP.

The reference is ZooKeeper 3.8's `zookeeper-prometheus-metrics` module (`PrometheusMetricsProvider` and its inner
classes) and the Prometheus Java client it uses, simpleclient 0.9.0 (`Summary`, `TimeWindowQuantiles`,
`exporter.common.TextFormat`). tests/test_metrics.py checks the metric names against Java's and the endpoint;
these tests check what the split-out metric classes put on the page.
"""
from __future__ import annotations

import logging
import math
import urllib.request

import pytest

from conftest import free_port
from zkref.metrics_provider import ADVANCED, BASIC
from zkref.prometheus import CONTENT_TYPE_004, PrometheusMetricsProvider
from zkref.prometheus_metrics import PrometheusContext, TimeWindowQuantiles


def scrape(port: int, method: str = "GET") -> tuple[int, str, bytes]:
    "One real HTTP request for /metrics on 127.0.0.1:port; (status, content type, body)."
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", method=method)
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read()


@pytest.fixture
def provider():
    "A started Prometheus provider on a free 127.0.0.1 port, without the process collectors; stopped after."
    p = PrometheusMetricsProvider()
    p.configure({"httpHost": "127.0.0.1", "httpPort": str(free_port()), "exportJvmInfo": "false"})
    p.start()
    yield p
    p.stop()


def test_negative_deltas_are_refused_with_javas_error_and_the_value_kept(provider, caplog):
    """A Prometheus counter cannot go down: a negative delta is logged as an error, "invalid delta -1 for metric
    looking_count" (with " with key K" for a counter set), and the value stays what it was.
    Reference: Java PrometheusMetricsProvider.PrometheusCounter.add, PrometheusLabelledCounter.add
    (simpleclient Counter.inc throws IllegalArgumentException on a negative amount)."""
    ctx = provider.get_root_context()
    ctx.get_counter("looking_count").add(3)
    ctx.get_counter_set("quota_exceeded_error_per_namespace").add("/app", 2)
    with caplog.at_level(logging.ERROR, logger="PrometheusMetricsProvider"):
        ctx.get_counter("looking_count").add(-1)
        ctx.get_counter_set("quota_exceeded_error_per_namespace").add("/app", -5)
    assert [r.getMessage() for r in caplog.records] == [
        "invalid delta -1 for metric looking_count",
        "invalid delta -5 for metric quota_exceeded_error_per_namespace with key /app"]
    page = scrape(provider.bound_port)[2].decode()
    assert "looking_count 3.0\n" in page
    assert 'quota_exceeded_error_per_namespace{key="/app",} 2.0\n' in page


def test_labelled_families_and_numbers_print_as_simpleclient_0_9(provider):
    """The page is text format 0.0.4 as simpleclient 0.9 writes it: HELP is the name, a label is followed by a
    comma, a summary set's `key` label comes before `quantile`, a null gauge reads 0, numbers print as Java's
    Double.toString (1.0E7, +Inf).
    Reference: simpleclient TextFormat.write004, Collector.doubleToGoString; Java
    PrometheusMetricsProvider.PrometheusGaugeWrapper.sample (null -> 0), PrometheusLabelledSummary."""
    ctx = provider.get_root_context()
    ctx.get_summary_set("write_per_namespace", BASIC).add("app", 7)
    ctx.register_gauge("znode_count", lambda: None)
    ctx.register_gauge("approximate_data_size", lambda: 10_000_000)
    ctx.register_gauge("max_latency_ratio", lambda: math.inf)
    status, content_type, body = scrape(provider.bound_port)
    page = body.decode()
    assert status == 200 and content_type == CONTENT_TYPE_004
    assert ("# HELP write_per_namespace write_per_namespace\n# TYPE write_per_namespace summary\n"
            'write_per_namespace{key="app",quantile="0.5",} 7.0\n'
            'write_per_namespace_count{key="app",} 1.0\n'
            'write_per_namespace_sum{key="app",} 7.0\n') in page
    assert "znode_count 0.0\n" in page
    assert "approximate_data_size 1.0E7\n" in page
    assert "max_latency_ratio +Inf\n" in page
    assert "_created" not in page   # simpleclient 0.9 has no _created series
    head = scrape(provider.bound_port, "HEAD")
    assert head[0] == 200 and head[2] == b""


def test_summary_detail_levels_give_javas_quantiles():
    """A BASIC summary has the median only, an ADVANCED one the quantiles 0.5, 0.9 and 0.99; each also has
    _count and _sum. Before its first value a summary shows its quantiles as NaN; a summary set shows nothing.
    Reference: Java PrometheusMetricsProvider.PrometheusSummary (quantile(0.5, 0.05), quantile(0.9, 0.01),
    quantile(0.99, 0.001) for ADVANCED), PrometheusLabelledSummary."""
    ctx = PrometheusContext()
    basic, advanced = ctx.get_summary("fsynctime", BASIC), ctx.get_summary("readlatency", ADVANCED)
    ctx.get_summary_set("read_per_namespace", BASIC)
    families = {m.name: m for m in ctx.collect()}
    assert [(s.name, s.labels) for s in families["fsynctime"].samples] == [
        ("fsynctime", {"quantile": "0.5"}), ("fsynctime_count", {}), ("fsynctime_sum", {})]
    assert math.isnan(families["fsynctime"].samples[0].value)
    assert families["read_per_namespace"].samples == []
    for v in range(1, 101):
        basic.add(v)
        advanced.add(v)
    families = {m.name: m for m in ctx.collect()}
    quantiles = {s.labels["quantile"]: s.value for s in families["readlatency"].samples if "quantile" in s.labels}
    assert set(quantiles) == {"0.5", "0.9", "0.99"}
    assert abs(quantiles["0.5"] - 50) <= 5 and abs(quantiles["0.9"] - 90) <= 1 and abs(quantiles["0.99"] - 99) <= 1
    totals = {s.name: s.value for s in families["fsynctime"].samples if "quantile" not in s.labels}
    assert totals == {"fsynctime_count": 100.0, "fsynctime_sum": 5050.0}


def test_quantiles_forget_values_after_ten_minutes():
    """Quantiles are over a sliding window of 600 seconds in 5 age buckets: values older than the window no
    longer count, and an empty window reads NaN, while _count and _sum keep counting.
    Reference: simpleclient 0.9 Summary.Builder (maxAgeSeconds 600, ageBuckets 5), TimeWindowQuantiles."""
    now = [0.0]
    window = TimeWindowQuantiles(clock=lambda: now[0])
    assert math.isnan(window.get(0.5))
    for v in range(10):
        window.insert(1000 + v)
    now[0] = 300.0
    window.insert(1)
    assert window.get(0.99) >= 1000            # the old values are still in the window
    now[0] = 601.0
    assert window.get(0.99) == 1               # only the value from t=300 is left
    now[0] = 901.0
    assert math.isnan(window.get(0.5))
