"""zkref's replays of Java's hashing against Java itself: `String.hashCode` (zkref.znode_basics.java_string_hash)
against values printed by Java 17, and the iteration order of Java's hash sets (zkref.properties.java_hash_order,
zkref.quorum.multiple_addresses) against tests/java/HashOrder.java."""
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from zkref.properties import java_hash_order, java_long_hash
from zkref.quorum.multiple_addresses import multiple_addresses
from zkref.quorum_server import java_host_string
from zkref.znode_basics import java_string_hash

# Printed by `java Hash.java` (Java 17) with System.out.println(s.hashCode()).
JAVA_VALUES = {
    "zookeeper": 1600681804,
    "\U0001F600x": 54959989,                 # outside the BMP: a surrogate pair, two code units
    "/app/\U0001F600\u00e9": -432489495,    # a path with a supplementary character and a Latin-1 one
    "digest": -1331913276,
    "bob": 97717,
    "\ud800": 55296,                          # a lone surrogate is one code unit in Java
}


@pytest.mark.parametrize("s,expected", list(JAVA_VALUES.items()))
def test_java_string_hash_matches_java(s, expected):
    """String.hashCode is s[0]*31^(n-1) + ... + s[n-1] over the UTF-16 code units, as a signed int; a
    character outside the BMP counts as its two surrogates. Reference: java.lang.String.hashCode"""
    assert java_string_hash(s) == expected


def test_old_names_are_the_one_function():
    """zkref.snapshots and zkref.audit still export java_string_hash, now the same function; the hash
    orders and Id.hashCode they build on it mask to 32 bits as Java's int arithmetic does.
    Reference: java.util.HashMap.hash, org.apache.zookeeper.data.Id.hashCode"""
    from zkref import audit, snapshots
    assert snapshots.java_string_hash is java_string_hash and audit.java_string_hash is java_string_hash
    assert "java_string_hash" in snapshots.__all__ and "java_string_hash" in audit.__all__
    # Id.hashCode: 17, then 37*result + each field's hashCode, in int arithmetic.
    r = 17
    for f in ("digest", "\U0001F600x"):
        r = (37 * r + java_string_hash(f) + 2**31) % 2**32 - 2**31
    assert audit.java_id_hash("digest", "\U0001F600x") == r & 0xFFFFFFFF


HASH_ORDER = Path(__file__).resolve().parent / "java" / "HashOrder.java"


def _random_literal(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return ".".join(str(rng.randrange(256)) for _ in range(4))
    return ":".join(format(rng.randrange(65536), "x") for _ in range(8))


@pytest.mark.skipif(shutil.which("java") is None, reason="needs a JDK (java runs the source file)")
def test_hash_orders_match_javas():
    """The order Java iterates its hash sets: `MultipleAddresses`'s `ConcurrentHashMap` key set of
    `InetSocketAddress` (IPv4 and IPv6 literals; 2 to 20 addresses, so tables that grew, whose split buckets come
    out partly reversed), a `ConcurrentHashMap` of `Long` (the sessions of a snapshot) and a `HashSet` of `Long`,
    up to 300 keys. 900 random sets, printed by tests/java/HashOrder.java and by zkref, must be equal.
    Reference: Java ConcurrentHashMap.putVal/addCount/transfer, HashMap.resize, InetSocketAddress.hashCode,
    Inet4Address.hashCode, Inet6Address.hashCode, Long.hashCode."""
    rng = random.Random(3188)
    lines, expected = [], []
    for _ in range(400):
        addrs = [(_random_literal(rng), rng.randrange(1, 65536)) for _ in range(rng.randint(2, 20))]
        lines.append("addr " + " ".join(f"{h},{p}" for h, p in addrs))
        expected.append(" ".join(f"{java_host_string(h)},{p}" for h, p in multiple_addresses(addrs)))
    for kind in ("long-chm", "long-hash"):
        for _ in range(250):
            base = rng.randrange(1 << 55) << 8 if rng.random() < 0.5 else 0      # a server id in the top byte
            keys = [(base + rng.randrange(1 << rng.choice((8, 16, 40, 62)))) % (1 << 63)
                    for _ in range(rng.randint(1, 300))]
            lines.append(kind + " " + " ".join(map(str, keys)))
            order = java_hash_order(keys, java_long_hash, concurrent=kind == "long-chm")
            expected.append(" ".join(map(str, order)))
    out = subprocess.run(["java", str(HASH_ORDER)], input="\n".join(lines) + "\n", capture_output=True, text=True,
                         timeout=120, check=True).stdout.splitlines()
    assert len(out) == len(lines)
    wrong = [(line, java, zkref) for line, java, zkref in zip(lines, out, expected) if java != zkref]
    assert wrong == [], (len(wrong), wrong[:2])
