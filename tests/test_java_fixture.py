"""The reference itself: the Java ZooKeeper 3.8 server the interop tests compare zkref against starts and answers."""
import pytest
from conftest import four_letter_word


@pytest.mark.java
def test_java_server_starts_standalone_and_answers_srvr(java_zk):
    """A standalone Java server answers `srvr` (the one four-letter word on by default) with `Mode: standalone`.

    Reference: ZooKeeper Administrator's Guide, "The Four Letter Words" (srvr); 4lw.commands.whitelist default.
    """
    server = java_zk()
    answer = four_letter_word(server.client_port, "srvr")
    assert answer.startswith("Zookeeper version: 3.8.")
    assert "Mode: standalone" in answer
