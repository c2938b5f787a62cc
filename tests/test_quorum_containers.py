"""Containers and TTL nodes in an ensemble: the leader's ContainerManager deletes them, on every server.

Java's `LeaderZooKeeperServer.setupRequestProcessors` makes a `ContainerManager` over the leader's
`PrepRequestProcessor` (`setupContainerManager`), starts it with the server and stops it first on shutdown;
followers and observers run none. Its `deleteContainer` requests are proposed like any write. The same scenario
runs on a Java 3.8 ensemble and a zkref one.
"""
from __future__ import annotations

import re

import pytest
from kazoo.client import KazooClient

from conftest import Ensemble, java_available, wait_for
from test_differential_ensemble import Waker
from test_standalone_server import RawClient
from zkref.jute import Create2Response, CreateRequest, CreateTTLRequest, DeleteRequest
from zkref.proto import OPEN_ACL_UNSAFE, OpCode

pytestmark = pytest.mark.timeout(300)

KINDS = ["zkref", pytest.param("java", marks=pytest.mark.skipif(not java_available(), reason="needs Java 3.8"))]


@pytest.mark.parametrize("kind", KINDS)
def test_leader_deletes_empty_containers_and_expired_ttl_nodes_everywhere(tmp_path, kind):
    """A container made through a follower, once its only child is deleted, and a TTL node past its TTL, are
    deleted by the leader's ContainerManager (`Attempting to delete candidate container: …` in the leader's log
    only) and are gone on every server; a container that never had a child stays (maxNeverUsedIntervalMs 0).
    The manager logs `Using checkIntervalMs=… maxPerMinute=… maxNeverUsedIntervalMs=…` once per leader role.
    Reference: Java LeaderZooKeeperServer.setupContainerManager/startup/shutdown, ContainerManager.getCandidates"""
    e = Ensemble(tmp_path / kind, (kind,) * 3, jvm_flags=["-Dznode.container.checkIntervalMs=100"],
                 extendedTypesEnabled="true")
    e.start()
    try:
        leader = e.wait_formed()
        follower = next(i for i in e.ids if i != leader)
        # ZOOKEEPER-4537 in Debian's Java 3.8.0 (see test_differential_ensemble.py): the raw session below sends one
        # request at a time and no pings, so sessions of the Waker's own ping every Java server
        waker = Waker([e.client(i) for i in e.ids], 0.2) if kind == "java" else None
        raw = RawClient(e.client(follower))
        try:
            h, body = raw.call(OpCode.createContainer, CreateRequest(path="/ctr", data=b"", acl=OPEN_ACL_UNSAFE, flags=4))
            assert h.err == 0 and Create2Response.from_bytes(body).stat.ephemeral_owner == 0
            h, _ = raw.call(OpCode.createContainer, CreateRequest(path="/unused", data=b"", acl=OPEN_ACL_UNSAFE, flags=4))
            assert h.err == 0
            raw.call(OpCode.create, CreateRequest(path="/ctr/child", data=b"", acl=OPEN_ACL_UNSAFE, flags=0))
            h, _ = raw.call(OpCode.createTTL, CreateTTLRequest(path="/ttl", data=b"x", acl=OPEN_ACL_UNSAFE, flags=5,
                                                               ttl=300))
            assert h.err == 0
            h, _ = raw.call(OpCode.delete, DeleteRequest(path="/ctr/child", version=-1))
            assert h.err == 0
        finally:
            raw.close()
            if waker is not None:
                waker.close()
        clients = {i: KazooClient(hosts=f"127.0.0.1:{e.client(i)}", timeout=30) for i in e.ids}
        try:
            for c in clients.values():
                c.start(30)
            for i, c in clients.items():
                wait_for(lambda: c.exists("/ctr") is None and c.exists("/ttl") is None, 30,
                         what=f"server {i}: the empty container and the expired TTL node deleted")
                c.sync("/")
                assert c.exists("/unused") is not None, i
        finally:
            for c in clients.values():
                c.stop()
                c.close()
        for i in e.ids:
            log = e.log(i)
            deletes = re.findall(r"ContainerManager@\d+\] - Attempting to delete candidate container: (\S+)", log)
            settings = re.findall(r"ContainerManager@\d+\] - Using checkIntervalMs=(\d+) maxPerMinute=(\d+) "
                                  r"maxNeverUsedIntervalMs=(\d+)", log)
            if i == leader:
                assert {"/ctr", "/ttl"} <= set(deletes), deletes
                assert settings == [("100", "10000", "0")], settings
            else:
                assert deletes == [] and settings == [], (i, deletes, settings)
    finally:
        e.stop_all()
