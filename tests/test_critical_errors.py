"""A critical thread's unexpected exception stops the server, as Java's ZooKeeperCriticalThread does: the
standalone SyncThread:0 (which also runs FinalRequestProcessor) logs it, counts it and puts the server in the
ERROR state, so ZooKeeperServerMain shuts down instead of serving from a tree that may disagree with its log."""
from __future__ import annotations

import logging

from kazoo.client import KazooClient

from conftest import wait_for
from test_admin_http import zkref_inproc  # noqa: F401 (fixture)
from zkref.proto import OpCode


def test_an_exception_applying_a_request_stops_the_server(zkref_inproc, caplog):  # noqa: F811
    """No client input is known to make Final fail (tests/test_differential.py found and fixed the ones that
    did), so the fault is injected: FinalRequestProcessor raises on a setData. The server logs Java's two lines
    ("Severe unrecoverable error, from thread : SyncThread:0", "Thread SyncThread:0 exits, error code 1"),
    counts unrecoverable_error_count, enters the ERROR state, and ZooKeeperServerMain shuts down; the txn was logged
    before Final ran, so a restart replays it. Reference: ZooKeeperCriticalThread.handleException,
    ZooKeeperServerListenerImpl.notifyStopping, ZooKeeperServerShutdownHandler.handle"""
    caplog.set_level(logging.INFO)
    server = zkref_inproc(admin=False)
    zks = server.main.zks
    final = zks.sync_processor.next
    real = final.process_request

    def failing(request):
        if request.type == OpCode.setData:
            raise RuntimeError("injected fault")
        real(request)
    final.process_request = failing
    zk = KazooClient(f"127.0.0.1:{server.client_port}", timeout=10, connection_retry={"max_tries": 0})
    zk.start(timeout=15)
    try:
        zk.create("/kept", b"old")
        zk.set_async("/kept", b"new")                  # no answer comes: the server stops
        wait_for(lambda: server.task.done(), 20, what="ZooKeeperServerMain to stop")
    finally:
        zk.stop(); zk.close()
    # then ZooKeeperServerMain shuts down as after SIGTERM (Java's main then says "Exiting normally")
    assert "Severe unrecoverable error, from thread : SyncThread:0\nRuntimeError: injected fault" in caplog.text
    assert "Thread SyncThread:0 exits, error code 1" in caplog.text
    assert zks.server_metrics.unrecoverable_error_count.get() == 1
    # the setData was logged before Final failed: a restart on the same data directory replays it
    again = zkref_inproc({"dataDir": server.cfg_path.parent / "data"}, name="again", admin=False)
    zk = KazooClient(f"127.0.0.1:{again.client_port}", timeout=10)
    zk.start(timeout=15)
    try:
        assert zk.get("/kept")[0] == b"new"
    finally:
        zk.stop(); zk.close()
