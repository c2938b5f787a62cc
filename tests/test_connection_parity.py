"""Client connections as Java 3.8's ServerCnxn / NIOServerCnxn / NIOServerCnxnFactory and ResponseCache: the
per-connection statistics `cons` prints, the response cache's eviction and counters, and which thread logs each
connection line. Each test runs the same steps on a real Java 3.8.0 server and on zkref and compares."""
import re
import socket
import time

from kazoo.client import KazooClient

from conftest import four_letter_word, wait_for

CFG = {"4lw.commands.whitelist": "*"}


def mntr(port: int) -> dict[str, str]:
    "`mntr` as {name without zk_: value}."
    out = {}
    for line in four_letter_word(port, "mntr").splitlines():
        key, _, value = line.partition("\t")
        out[key.removeprefix("zk_")] = value.strip()
    return out


def kazoo(hosts: str) -> KazooClient:
    k = KazooClient(hosts=hosts, timeout=10)
    k.start(timeout=15)
    return k


CACHE_KEYS = ("response_packet_cache_hits", "response_packet_cache_misses")


def test_response_cache_evicts_in_insertion_order(zkref_zk, java_zk):
    """Java's ResponseCache is a LinkedHashMap in insertion order (its LRUCache calls `super(cacheSize / 4)`, not
    the access-order constructor) that drops its eldest entry once it holds `cacheSize` entries: a hit does not
    make an entry younger. With zookeeper.maxResponseCacheSize=3 (two entries kept), reading /a, /b, /a (a hit),
    /c evicts /a, so the next read of /a is a miss. Reference: Java ResponseCache.get/put, ResponseCache.LRUCache."""
    seen = {}
    for start in (java_zk, zkref_zk):
        server = start(CFG, jvm_flags=["-Dzookeeper.maxResponseCacheSize=3"])
        k = kazoo(server.hosts)
        try:
            for p in ("/a", "/b", "/c"):
                k.create(p, p.encode())
            for p in ("/a", "/b", "/a", "/c", "/a", "/c"):
                k.get(p)
        finally:
            k.stop()
            k.close()
        m = mntr(server.client_port)
        seen[server.kind] = tuple(int(m[key]) for key in CACHE_KEYS)
    assert seen["java"] == (2, 4), seen["java"]       # hits: /a (3rd read), /c (6th); misses: /a, /b, /c, /a
    assert seen["zkref"] == seen["java"], seen


def test_response_cache_size_zero_counts_misses(zkref_zk, java_zk):
    """A cache of size 0 keeps nothing, but ServerCnxn.serialize still looks it up (it checks only that the cache
    exists, not ResponseCache.isEnabled), so every getData is a miss and counted as one; a cache of 1 likewise.
    Reference: Java ServerCnxn.serialize (RESPONSE_PACKET_CACHE_MISSING), ResponseCache.LRUCache.removeEldestEntry."""
    seen = {}
    for start, kind in ((java_zk, "java"), (zkref_zk, "zkref")):
        for size in (0, 1):
            server = start(CFG, name=f"{kind}{size}", jvm_flags=[f"-Dzookeeper.maxResponseCacheSize={size}"])
            k = kazoo(server.hosts)
            try:
                k.create("/a", b"x")
                for _ in range(3):
                    k.get("/a")
            finally:
                k.stop()
                k.close()
            m = mntr(server.client_port)
            seen[(server.kind, size)] = tuple(int(m[key]) for key in CACHE_KEYS)
            server.stop()
    assert seen[("java", 0)] == seen[("java", 1)] == (0, 3), seen
    assert seen[("zkref", 0)] == seen[("java", 0)] and seen[("zkref", 1)] == seen[("java", 1)], seen
