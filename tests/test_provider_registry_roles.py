"""A quorum peer builds its authentication providers once per process, not once per role.

Java's `QuorumPeerMain.runFromConfig` calls `ProviderRegistry.initialize()` once; the registry makes each
`authProvider.*` class then, and `X509AuthenticationProvider`'s constructor warns about a missing key store and
trust store. A peer that changes roles (FOLLOWING, LOOKING, LEADING…) makes a new ZooKeeperServer each time, but
the provider is not made again, so the warnings are in its log once. zkref makes a provider per server object and
so, until session 23, repeated the warnings at every role.
Reference: Java QuorumPeerMain.runFromConfig, ProviderRegistry.initialize, X509AuthenticationProvider()
"""
from __future__ import annotations

import pytest

from conftest import Ensemble, java_available, wait_for

X509 = "org.apache.zookeeper.server.auth.X509AuthenticationProvider"
KINDS = ["java", "zkref"] if java_available() else ["zkref"]
WARNINGS = ("keystore not specified for client connection", "Truststore not specified for client connection")


@pytest.mark.parametrize("kind", KINDS)
def test_x509_provider_warnings_once_per_process_across_roles(kind, tmp_path):
    e = Ensemble(tmp_path, (kind,) * 3, **{"authProvider.x509": X509})
    e.start()
    try:
        leader = e.wait_formed()
        survivors = [i for i in e.ids if i != leader]
        e.stop(leader)                                  # the two left elect again: each takes a new role
        wait_for(lambda: sorted(e.mode(i) or "" for i in survivors) == ["follower", "leader"], 90, 0.2,
                 what="the two survivors to form again")
        for i in survivors:
            log = e.log(i)
            assert log.count("LEADER ELECTION TOOK") >= 2          # two roles in this process
            assert [log.count(w) for w in WARNINGS] == [1, 1], f"server {i}"
    finally:
        e.stop_all()
