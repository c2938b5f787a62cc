"""QuorumPeer and QuorumPeerMain.run_from_config: start-up order and log lines, epoch files, refusals, exit codes,
the client port before and after the election (Zab's roles, the default), a leader's step-down, pluggable roles
(the election-only holding roles among them) and the AdminServer in quorum mode.

Where Java has an observable behaviour (a log line, an exit code, a file) the test runs the real Java 3.8
server on the same kind of input and compares.
"""
from __future__ import annotations

import asyncio
import json
import re
import socket
import struct
import urllib.request

import pytest
from conftest import free_port, run_on_cluster as run

from zkref.config import QuorumPeerConfig
from zkref.persistence import read_long_from_file
from zkref.quorum.election import ServerState
from zkref.quorum.main import QuorumPeerMain, UnsupportedConfigException
from zkref.quorum.peer import HOLDING_ROLES
from zkref.testing import MiniCluster, java_available

needs_java = pytest.mark.skipif(not java_available(), reason="Java ZooKeeper 3.8 (Debian package zookeeper) is not installed")


async def exit_code(c: MiniCluster, sid: int, timeout_s: float = 60.0) -> int:
    "Start server `sid` alone and wait for its process to exit; its exit code."
    await c.start([sid])
    proc = c.members[sid].runner.proc
    deadline = asyncio.get_running_loop().time() + timeout_s
    while proc.poll() is None:
        assert asyncio.get_running_loop().time() < deadline, f"server {sid} did not exit:\n{c.logs(sid)[-2000:]}"
        await asyncio.sleep(0.05)
    return proc.returncode


def snap_dir(c: MiniCluster, sid: int):
    return c.members[sid].dir / "data" / "version-2"


# ---------------------------------------------------------------------------------------------------------
# Epoch files

def test_missing_epoch_files_are_created_from_the_last_zxid():
    """A data directory without epoch files (an upgrade) gets acceptedEpoch and currentEpoch equal to the epoch
    of its last zxid, with Java's "not found! Creating with a reasonable default" lines.

    Reference: Java QuorumPeer.loadDataBase
    """
    async def scenario(c):
        c.seed(1, 0x200000003)
        await c.start([1])
        await c.wait_state(1, "LOOKING")
        d = snap_dir(c, 1)
        return read_long_from_file(d / "acceptedEpoch"), read_long_from_file(d / "currentEpoch"), c.logs(1)
    accepted, current, log = run(scenario, 3)
    assert (accepted, current) == (2, 2)
    assert "currentEpoch not found! Creating with a reasonable default of 2. This should only happen when you are " \
           "upgrading your installation" in log


def test_current_epoch_tmp_rescues_an_old_current_epoch():
    """If currentEpoch is older than the last zxid's epoch but currentEpoch.tmp exists (a sync that crashed after
    writing it), the peer takes the tmp value and starts.

    Reference: Java QuorumPeer.loadDataBase (currentEpoch.tmp)
    """
    async def scenario(c):
        c.seed(1, 0x300000002)
        d = snap_dir(c, 1)
        (d / "currentEpoch").write_text("2")
        (d / "currentEpoch.tmp").write_text("3")
        (d / "acceptedEpoch").write_text("3")
        await c.start([1])
        await c.wait_state(1, "LOOKING")
        return c.peer(1).current_epoch, read_long_from_file(d / "currentEpoch"), c.peer(1).current_vote
    current, on_disk, vote = run(scenario, 3)
    assert current == 3 and on_disk == 3 and (vote.zxid, vote.peer_epoch) == (0x300000002, 3)


EPOCH_ERRORS = {
    "accepted<current": ({"currentEpoch": "2", "acceptedEpoch": "1"}, 0x100000004,
                         "The accepted epoch, 1 is less than the current epoch, 2"),
    "current older than zxid": ({"currentEpoch": "1", "acceptedEpoch": "1"}, 0x200000004,
                                "The current epoch, 1, is older than the last zxid, 8589934596"),
    "not a number": ({"currentEpoch": "one", "acceptedEpoch": "1"}, 0x100000004, "Found one in "),
}


@pytest.mark.parametrize("case", sorted(EPOCH_ERRORS))
def test_bad_epoch_files_stop_the_start_with_java_errors(case):
    """Epoch files that break Zab's rules stop the server: `Unable to load database on disk` with the
    IOException's text, then exit code 1 (Java's RuntimeException "Unable to run quorum server").

    Reference: Java QuorumPeer.loadDataBase, QuorumPeer.readLongFromFile, QuorumPeerMain.main
    """
    files, zxid, message = EPOCH_ERRORS[case]

    async def scenario(c):
        c.seed(1, zxid)
        for name, text in files.items():
            (snap_dir(c, 1) / name).write_text(text)
        return await exit_code(c, 1), c.logs(1)
    code, log = run(scenario, 3, mode="process")
    assert code == 1
    assert "Unable to load database on disk" in log and message in log and "Unable to run quorum server" in log


@needs_java
@pytest.mark.java
@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(EPOCH_ERRORS))
def test_java_gives_the_same_epoch_errors(case):
    """The real Java 3.8 server, on the same data directory (written by zkref), logs the same IOException text
    and exits with the same code.

    Reference: Java QuorumPeer.loadDataBase
    """
    files, zxid, message = EPOCH_ERRORS[case]

    async def scenario(c):
        c.seed(1, zxid)
        for name, text in files.items():
            (snap_dir(c, 1) / name).write_text(text)
        return await exit_code(c, 1), c.logs(1)
    code, log = run(scenario, 3, java={1})
    assert code == 1
    assert "Unable to load database on disk" in log and message in log


# ---------------------------------------------------------------------------------------------------------
# Refusals and exit codes

def test_my_id_not_in_the_peer_list():
    """A server whose myid is not among the server.N lines refuses to start: "My id 4 not in the peer list",
    exit code 1.

    Reference: Java QuorumPeer.start
    """
    async def scenario(c):
        c.write_config(1)
        (c.members[1].dir / "data" / "myid").write_text("4\n")
        c.write_config = lambda sid: c.members[sid].cfg       # keep the edited myid
        return await exit_code(c, 1), c.logs(1)
    code, log = run(scenario, 3, mode="process")
    assert code == 1 and "My id 4 not in the peer list" in log


@pytest.mark.parametrize("setting, value, jvm, named", [
    ("reconfigEnabled", "true", {}, "reconfigEnabled=true"),
])
def test_unsupported_quorum_settings_are_refused(setting, value, jvm, named):
    """Settings whose machinery zkref lacks stop the start with a message naming the setting, before any port
    is bound (the client port is free again afterwards).

    Reference: zkref divergences page; Java QuorumPeerMain.runFromConfig (the settings it passes to QuorumPeer)
    """
    async def scenario(c):
        c.write_config(1)
        config = QuorumPeerConfig(jvm)
        config.parse(str(c.members[1].cfg))
        with pytest.raises(UnsupportedConfigException) as e:
            await QuorumPeerMain().run_from_config(config)
        with socket.socket() as s:
            s.bind(("127.0.0.1", c.members[1].client_port))
        return str(e.value)
    message = run(scenario, 3, config={setting: value})
    assert message.startswith(f"{named} is not supported by zkref: it does not implement ")


def test_refusal_exits_with_invalid_config_code():
    """`python -m zkref` with an unsupported setting exits with code 2 and Java's "Invalid config, exiting
    abnormally" on stderr.

    Reference: Java QuorumPeerMain.main (ConfigException → ExitCode.INVALID_INVOCATION)
    """
    async def scenario(c):
        return await exit_code(c, 1), c.logs(1)
    code, log = run(scenario, 3, mode="process", config={"reconfigEnabled": "true"})
    assert code == 2 and "Invalid config, exiting abnormally" in log and "reconfigEnabled=true is not supported" in log


@pytest.mark.parametrize("java", [False, pytest.param(True, marks=[needs_java, pytest.mark.java, pytest.mark.slow])])
def test_election_port_in_use_exits_with_14(java):
    """If the election port cannot be bound (after zookeeper.electionPortBindRetry attempts) the server exits
    with code 14, as Java does.

    Reference: Java QuorumCnxManager.Listener (ExitCode.UNABLE_TO_BIND_QUORUM_PORT)
    """
    async def scenario(c):
        with socket.socket() as blocker:
            blocker.bind(("127.0.0.1", c.members[1].election_port))
            blocker.listen()
            return await exit_code(c, 1), c.logs(1)
    kwargs = {"java": {1}} if java else {"mode": "process"}
    code, log = run(scenario, 3, config={"electionPortBindRetry": 1}, **kwargs)
    assert code == 14
    assert "As I'm leaving the listener thread, I won't be able to participate in leader election any longer" in log


# ---------------------------------------------------------------------------------------------------------
# Start-up order, log lines, thread name

KEY_LINES = re.compile(r"^(Starting quorum peer, myid=\d+|Local sessions? .*|Local session upgrading .*|[\w.]+ set to .*"
                       r"|Using \d+ms as the quorum cnxn socket timeout|FOLLOWING - LEADER ELECTION TOOK - "
                       r"|LOOKING|FOLLOWING|LEADING|New election\. My id = \d+, proposed zxid=0x\w+"
                       r"|Peer state changed: \w+)")


def key_lines(log: str, sid: int) -> list[str]:
    "The start-up lines of a follower's log, up to the end of its first election, without numbers that vary."
    out = []
    for line in log.splitlines():
        if f"[myid:{sid}]" not in line or " - " not in line:
            continue
        text = line.split("] - ", 2)[-1].strip()
        m = KEY_LINES.match(text)
        if m and not text.startswith(("autopurge", "minSessionTimeout set to 400 ms", "maxSessionTimeout set to 4000 ms")):
            out.append(m.group(0))
        if text.startswith("FOLLOWING - LEADER ELECTION TOOK"):
            break
    return out


@needs_java
@pytest.mark.java
@pytest.mark.slow
def test_start_up_lines_match_java():
    """A zkref follower logs the same start-up lines, in the same order, as a Java 3.8 follower: the setters,
    the socket timeout, LOOKING, the election, "Peer state changed: following", FOLLOWING and the election
    time; the peer loop's lines come from a task named `QuorumPeer[myid=1](plain=127.0.0.1:PORT)(secure=disabled)`.

    Reference: Java QuorumPeerMain.runFromConfig, QuorumPeer setters, setPeerState, run, updateThreadName
    """
    async def scenario(c):
        await c.start()
        await c.wait_for_leader(60)
        await c.wait_state(1, "FOLLOWING", 60)
        deadline = asyncio.get_running_loop().time() + 30
        while "FOLLOWING - LEADER ELECTION TOOK" not in c.logs(1):
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        return c.logs(1), c.members[1].client_port
    zkref_log, zkref_port = run(scenario, 3)
    java_log, _ = run(scenario, 3, java={1, 2, 3})
    assert key_lines(zkref_log, 1) == key_lines(java_log, 1)
    assert "Peer state changed: following" in key_lines(zkref_log, 1)
    assert f"[QuorumPeer[myid=1](plain=127.0.0.1:{zkref_port})(secure=disabled):QuorumPeer@" in zkref_log


# ---------------------------------------------------------------------------------------------------------
# The client port while LOOKING and once settled

def connect_request() -> bytes:
    "A framed ConnectRequest (protocol 0, no session)."
    body = struct.pack(">iqiq", 0, 0, 30000, 0) + struct.pack(">i", 16) + b"\0" * 16 + b"\0"
    return struct.pack(">i", len(body)) + body


async def open_session(c: MiniCluster, sid: int) -> bytes:
    "Send a ConnectRequest to server `sid`; the framed ConnectResponse's body (b'' if the server closed instead)."
    reader, writer = await asyncio.open_connection("127.0.0.1", c.members[sid].client_port)
    try:
        writer.write(connect_request())
        head = await asyncio.wait_for(reader.read(4), 10)
        if len(head) < 4:
            return b""
        return await asyncio.wait_for(reader.readexactly(struct.unpack(">i", head)[0]), 10)
    finally:
        writer.close()


def test_client_port_before_and_after_the_election():
    """While the peer is LOOKING its client port answers `srvr` with "This ZooKeeper instance is not currently
    serving requests" and closes a connection that asks for a session; once the ensemble has elected and Zab has
    synced, `srvr` says `Mode: leader` / `Mode: follower` and every server grants sessions (a ConnectResponse
    with a session id and the asked 30 s clamped to maxSessionTimeout, 20 ticks of 200 ms).

    Reference: Java NIOServerCnxn.readPayload ("ZooKeeperServer not running"), StatCommand,
    ZooKeeperServer.processConnectRequest; Administrator's Guide, "srvr"
    """
    async def scenario(c):
        await c.start([1])
        await c.wait_state(1, "LOOKING")
        before = await c.four_letter_word(1, "srvr")
        answer = await open_session(c, 1)
        await c.start([2, 3])
        leader = await c.wait_for_leader()
        modes = await c.wait_serving()
        sessions = {sid: await open_session(c, sid) for sid in c.sids}
        return before, answer, leader, modes, sessions
    before, answer, leader, modes, sessions = run(scenario, 3)
    assert before == "This ZooKeeper instance is not currently serving requests\n"
    assert answer == b""
    assert modes == {1: "follower", 2: "follower", 3: "leader"} and leader == 3
    for body in sessions.values():
        protocol, timeout_ms, session_id = struct.unpack(">iiq", body[:16])
        assert protocol == 0 and timeout_ms == 4000 and session_id != 0


# ---------------------------------------------------------------------------------------------------------
# Roles

@pytest.mark.parametrize("runtime", [
    "zkref",          # Zab's roles (the default)
    "holding",        # the election-only roles of chapter 07_peer1 (role_factories=HOLDING_ROLES)
    pytest.param("java", marks=[needs_java, pytest.mark.java, pytest.mark.slow]),
])
def test_leader_without_followers_steps_down(runtime):
    """A leader whose followers all stop steps down after syncLimit ticks with Java's reason, "Not sufficient
    followers synced, only synced with sids: [ [3] ]" (the synced ack set, printed as a Java Set inside
    "[ … ]"), logs "PeerState set to LOOKING" and looks for a leader again. The same scenario runs with Zab's
    roles, with the election-only holding roles, and on Java 3.8.

    Reference: Java Leader.lead (the tick loop), SyncedLearnerTracker.ackSetsToString, QuorumPeer.updateServerState
    """
    async def scenario(c):
        await c.start()
        leader = await c.wait_for_leader(90)
        await c.wait_serving(timeout_s=90)
        await c.stop(1)
        await c.stop(2)
        await c.wait_state(3, "LOOKING", 60)
        return leader, c.logs(3)
    options = {"java": {"java": {1, 2, 3}}, "holding": {"role_factories": HOLDING_ROLES}}.get(runtime, {})
    leader, log = run(scenario, 3, **options)
    assert leader == 3
    reasons = re.findall(r"Shutdown called\. For the reason (.*)", log)
    assert reasons[0].strip() == "Not sufficient followers synced, only synced with sids: [ [3] ]"
    assert "PeerState set to LOOKING" in log


def test_roles_are_pluggable_and_leave_role_returns_to_looking():
    """`QuorumPeer.role_factories` decides what runs while FOLLOWING; `leave_role()` ends the current role, the
    peer goes back to LOOKING, rejoins the same leader, and plays the new role. The trace records each state
    change.

    Reference: Java QuorumPeer.run (makeFollower / followLeader, then updateServerState)
    """
    played = []

    class RecordingRole:
        def __init__(self, peer):
            self.peer, self.done = peer, asyncio.Event()
            played.append(peer.current_vote.id)

        async def run(self):
            await self.done.wait()

        async def shutdown(self, reason=""):
            self.done.set()

    async def scenario(c):
        await c.start()
        leader = await c.wait_for_leader()
        peer = c.peer(1)
        peer.role_factories[ServerState.FOLLOWING] = RecordingRole
        await peer.leave_role("test")
        deadline = asyncio.get_running_loop().time() + 30
        while not isinstance(peer.role, RecordingRole):
            assert asyncio.get_running_loop().time() < deadline, "server 1 never played the new role"
            await asyncio.sleep(0.05)
        states = [e.state for e in c.trace if e.kind == "state" and e.myid == 1]
        return leader, type(peer.role).__name__, states
    leader, role, states = run(scenario, 3)
    assert played == [leader] and role == "RecordingRole"
    assert states == ["FOLLOWING", "LOOKING", "FOLLOWING"]


# ---------------------------------------------------------------------------------------------------------
# The AdminServer in quorum mode

def http_json(port: int, command: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/commands/{command}", timeout=10) as r:
        return json.loads(r.read())


def test_admin_server_in_quorum_mode_answers_for_the_current_role_and_a_failure_is_only_a_warning():
    """QuorumPeer.start starts the AdminServer; when it cannot (here: three servers asked for the same port) the
    server logs "Problem starting AdminServer" and goes on: all three elect and serve. The one that got the port
    answers `srvr` over HTTP for the ZooKeeperServer its role runs (`server_state` leader or follower), and says
    "This ZooKeeper instance is not currently serving requests" once that server is gone (the peer is LOOKING).

    Reference: Java QuorumPeer.start (adminServer.start, AdminServerException only logged),
    QuorumPeer.setZooKeeperServer (adminServer.setZooKeeperServer); Administrator's Guide, "The AdminServer"
    """
    port = free_port()

    async def scenario(c):
        await c.start()
        leader = await c.wait_for_leader()
        await c.wait_serving()
        bound = [sid for sid in c.sids if c.peer(sid).admin_server._runner is not None]
        loop = asyncio.get_running_loop()
        srvr = await loop.run_in_executor(None, http_json, port, "srvr")
        warned = [sid for sid in c.sids if "Problem starting AdminServer" in c.logs(sid)]
        (owner,) = bound
        others = [sid for sid in c.sids if sid != owner]
        for sid in others:                       # alone, the owner's role ends and it stays LOOKING
            await c.stop(sid)
        await c.wait_state(owner, "LOOKING")
        looking = await loop.run_in_executor(None, http_json, port, "srvr")
        return leader, owner, srvr, sorted(warned), others, looking
    leader, owner, srvr, warned, others, looking = run(scenario, 3, config={
        "admin.enableServer": "true", "admin.serverAddress": "127.0.0.1", "admin.serverPort": port})
    assert warned == others
    assert srvr["server_stats"]["server_state"] == ("leader" if owner == leader else "follower")
    assert srvr["error"] is None
    assert looking["error"] == "This ZooKeeper instance is not currently serving requests"


def test_the_peer_names_its_leader_once_zab_syncs_and_forgets_it_when_looking():
    """Leader and learners record the leader's id and quorum host when Zab moves to synchronization (what the
    AdminServer's `leader` command reports as leader_id / leader_ip); back in LOOKING the peer has no leader
    (id -1, no address).

    Reference: Java QuorumPeer.setLeaderAddressAndId (called by Leader.lead, Follower.followLeader,
    Observer.observeLeader before SYNCHRONIZATION; by setPeerState(LOOKING) with null, -1)
    """
    async def scenario(c):
        await c.start()
        leader = await c.wait_for_leader()
        await c.wait_serving()
        named = {sid: (c.peer(sid).leader_id, c.peer(sid).leader_address) for sid in c.sids}
        for sid in c.sids:
            if sid != 1:
                await c.stop(sid)
        await c.wait_state(1, "LOOKING")
        return leader, named, (c.peer(1).leader_id, c.peer(1).leader_address)
    leader, named, looking = run(scenario, 3, observers=1)
    assert named == {sid: (leader, "127.0.0.1") for sid in (1, 2, 3, 4)}
    assert looking == (-1, None)
