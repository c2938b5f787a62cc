"""zkref's one `String.hashCode` (zkref.znode_basics.java_string_hash) against values printed by Java 17."""
import pytest

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
