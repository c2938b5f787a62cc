"""How a leader closes a learner's socket, as Java 3.8's LearnerHandler: the static line, the closing line, the
socket_closing_time summary."""
import re
import signal

import pytest

from conftest import Ensemble, four_letter_word, java_available, wait_for

pytestmark = pytest.mark.skipif(not java_available(), reason="needs Debian's Java ZooKeeper 3.8")


def messages(log: str) -> list[tuple[str, str, str]]:
    "(level, class, message) of each log line."
    return re.findall(r" - (\w+)\s+\[.*?:([\w$]+)@\d+\] - (.*)", log)


def closing_count(port: int) -> int:
    return int(re.search(r"zk_cnt_socket_closing_time\s+(\d+)", four_letter_word(port, "mntr")).group(1))


@pytest.mark.parametrize("kind", ["java", "zkref"])
@pytest.mark.parametrize("asynchronously", [False, True])
def test_a_learner_that_goes_away_has_its_socket_closed_once_and_said_so(kind, asynchronously, tmp_path):
    """When a follower's connection breaks, its LearnerHandler logs the IOException, closes the socket once with
    'Synchronously closing socket to learner <sid>.' ('Asynchronously …' with zookeeper.leader.closeSocketAsync
    =true) and adds the time to socket_closing_time, then says GOODBYE; the property is logged once per process
    as the first handler is made ('zookeeper.leader.closeSocketAsync = <b>').
    Reference: Java LearnerHandler's static block, LearnerHandler.run (catch IOException), closeSocket, closeSockSync."""
    flags = ["-Dzookeeper.leader.closeSocketAsync=true"] if asynchronously else []
    e = Ensemble(tmp_path, (kind,) * 3, jvm_flags=flags)
    e.start()
    try:
        leader = e.wait_formed()
        before = closing_count(e.client(leader))
        follower = next(i for i in e.ids if i != leader)
        e.stop(follower, signal.SIGKILL)
        word = "Asynchronously" if asynchronously else "Synchronously"
        closing = ("INFO", "LearnerHandler", f"{word} closing socket to learner {follower}.")
        wait_for(lambda: closing in messages(e.log(leader)), 30, what="the closing line")
        wait_for(lambda: closing_count(e.client(leader)) == before + 1, 10, what="socket_closing_time's count")
        log = messages(e.log(leader))
    finally:
        e.stop_all()
    static = ("INFO", "LearnerHandler", f"zookeeper.leader.closeSocketAsync = {str(asynchronously).lower()}")
    assert log.count(static) == 1, kind
    assert log.index(static) < log.index(next(x for x in log if x[2].startswith("Follower sid: "))), kind
    assert log.count(closing) == 1, kind
    log = [x for x in log if x[1] == "LearnerHandler"]       # the handler's own lines (other threads interleave)
    i = log.index(closing)
    assert log[i - 1][:2] == ("ERROR", "LearnerHandler") and log[i - 1][2].startswith(
        "Unexpected exception in LearnerHandler: "), (kind, log[i - 1])
    assert log[i + 1][:2] == ("WARN", "LearnerHandler") and "GOODBYE" in log[i + 1][2], (kind, log[i + 1])


@pytest.mark.parametrize("kind", ["java", "zkref"])
def test_a_follower_whose_leader_goes_closes_its_socket_once_and_times_it(kind, tmp_path):
    """The learner's side: a follower whose leader dies closes its socket to the leader once (Follower.followLeader's
    catch and Learner.shutdown both call closeSocket; sockBeingClosed lets one through) and adds the time to
    socket_closing_time, which outlives the role (ServerMetrics): after the two survivors form again, each has
    one closing counted, the new leader's from when it followed. Reference: Java Learner.closeSocket,
    closeSockSync (SOCKET_CLOSING_TIME), Follower.followLeader, Learner.shutdown."""
    e = Ensemble(tmp_path, (kind,) * 3)
    e.start()
    try:
        leader = e.wait_formed()
        survivors = [i for i in e.ids if i != leader]
        before = {i: closing_count(e.client(i)) for i in survivors}
        e.stop(leader, signal.SIGKILL)
        e.wait_formed(survivors)
        after = {i: closing_count(e.client(i)) for i in survivors}
    finally:
        e.stop_all()
    assert before == {i: 0 for i in survivors}, (kind, before)
    assert after == {i: 1 for i in survivors}, (kind, after)
