"""`zookeeper.DigestAuthenticationProvider.enabled`: whether the `digest` scheme is registered, on a standalone
Java 3.8 server and on zkref, driven the same way (kazoo) and compared by replies and log lines."""
from __future__ import annotations

import re

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import AuthFailedError, InvalidACLError
from kazoo.security import make_digest_acl

from conftest import java_available, wait_for

pytestmark = pytest.mark.skipif(not java_available(), reason="needs Debian's Java ZooKeeper 3.8")

# `2026-01-01 00:00:00,000 [myid:] - INFO  [thread:Class@123] - message`
LINE = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ \[myid:\d*\] - (\w+)\s+\[.*:([\w$]+)@\d+\] - (.*)$")
ENABLED = "zookeeper.DigestAuthenticationProvider.enabled = "


def entries(log: str) -> list[tuple[str, str, str]]:
    "(level, class, message) of each log line, in log order."
    return [(m[1], m[2], m[3]) for m in map(LINE.match, log.splitlines()) if m]


def kazoo(hosts: str) -> KazooClient:
    k = KazooClient(hosts=hosts, timeout=10)
    k.start(timeout=15)
    return k


def scenario(server) -> tuple:
    "An addauth digest, then (another session) a create with a digest ACL: what each got, and the server's lines."
    k = kazoo(server.hosts)
    try:
        try:
            k.add_auth("digest", "alice:secret")
            auth = "ok"
        except AuthFailedError:
            auth = "AuthFailedError"
    finally:
        k.stop()
        k.close()
    k = kazoo(server.hosts)
    try:
        try:
            k.create("/d", b"", acl=[make_digest_acl("alice", "secret", all=True)])
            create = "ok"
        except InvalidACLError:
            create = "InvalidACLError"
    finally:
        k.stop()
        k.close()
    if auth != "ok":       # the refusal's line is logged as the reply goes out: wait for it
        wait_for(lambda: any(m.startswith("No authentication provider") for _, _, m in entries(server.logs())),
                 10, what=f"{server.kind}'s refusal line")
    es = entries(server.logs())
    enabled = [(lvl, cls, m) for lvl, cls, m in es if m.startswith(ENABLED)]
    at = es.index(enabled[0]) if enabled else 0
    refusals = [(lvl, cls, m) for lvl, cls, m in es if m.startswith(("No authentication provider", "Authentication failed"))]
    return auth, create, enabled, es[at - 1], refusals


@pytest.mark.parametrize("enabled", [None, "false"])
def test_digest_provider_registered_as_the_property_says(java_zk, zkref_zk, enabled):
    """ProviderRegistry.initialize (called by runFromConfig) always registers `ip` and registers `digest` only if
    DigestAuthenticationProvider.isEnabled(): -Dzookeeper.DigestAuthenticationProvider.enabled, parsed with
    Boolean.parseBoolean, default true; isEnabled logs `zookeeper.DigestAuthenticationProvider.enabled = <b>`, right
    after the class's static `ACL digest algorithm is: SHA1`. With it off, `addauth digest` finds no provider:
    AUTHFAILED and `No authentication provider for scheme: digest has ip ` (WARN), and a create with a digest ACL
    is refused as InvalidACL (fixupACL finds no provider for the scheme). zkref answers and logs the same.
    Reference: Java ProviderRegistry.initialize, DigestAuthenticationProvider.isEnabled,
    ZooKeeperServer.processPacket (auth), PrepRequestProcessor.fixupACL, 3.8."""
    flags = [] if enabled is None else [f"-Dzookeeper.DigestAuthenticationProvider.enabled={enabled}"]
    seen = {}
    for start in (java_zk, zkref_zk):
        server = start(jvm_flags=flags)
        seen[server.kind] = scenario(server)
    on = enabled is None
    assert seen["java"] == (
        "ok" if on else "AuthFailedError", "ok" if on else "InvalidACLError",
        [("INFO", "DigestAuthenticationProvider", ENABLED + ("true" if on else "false"))],
        ("INFO", "DigestAuthenticationProvider", "ACL digest algorithm is: SHA1"),
        [] if on else [("WARN", "ZooKeeperServer", "No authentication provider for scheme: digest has ip ")]), seen["java"]
    assert seen["zkref"] == seen["java"], seen
