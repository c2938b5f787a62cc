"""The entry point: `python -m zkref` and its subcommands, run as real subprocesses.

These check zkref against QuorumPeerMain's contract: the order of initializeAndRun's steps, Java's exit
codes and messages, and zkServer.sh's `status` output.
"""
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import free_port
from zkref.main import ExitCode, default_config_text, exit_code_for
from zkref.config import ConfigException


def zkref(*args, cwd=None, env=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "zkref", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=timeout)


def test_exit_codes_match_java():
    """ExitCode values are ZooKeeper's: scripts and init systems depend on them.

    Reference: Java org.apache.zookeeper.server.ExitCode (3.8).
    """
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 4, 10, 12, 13, 14]
    assert exit_code_for(ConfigException("x")) == (ExitCode.INVALID_INVOCATION, "Invalid config, exiting abnormally")


def test_check_valid_config_prints_mode_and_effective_values(tmp_path):
    """A valid standalone config is accepted: Mode standalone and the effective clientPort/dataDir.

    Reference: Java QuorumPeerConfig.parse, isDistributed; ZooKeeperServer.dumpConf (the `conf` keys).
    """
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(f"tickTime=2000\ndataDir={tmp_path}/data\nclientPort=2181\n")
    r = zkref("check", cfg)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Mode: standalone" in r.stdout
    assert "clientPort=2181" in r.stdout
    assert f"dataDir={tmp_path}/data" in r.stdout


@pytest.mark.parametrize("text, message", [
    ("clientPort=2181\n", "dataDir is not set"),
    ("dataDir=/tmp/x\nclientPort=2181\ntickTime=0\n", "tickTime is not set"),
    ("dataDir=/tmp/x\nclientPortAddress=127.0.0.1\n", "clientPortAddress is set but clientPort is not set"),
    ("dataDir=/tmp/x\nclientPort=2181\nminSessionTimeout=9000\nmaxSessionTimeout=8000\n",
     "minSessionTimeout must not be larger than maxSessionTimeout"),
])
def test_check_invalid_config_exits_2_with_javas_message(tmp_path, text, message):
    """A bad config is refused with Java's message and exit code 2 (INVALID_INVOCATION).

    Reference: Java QuorumPeerConfig.parseProperties; QuorumPeerMain.main catch ConfigException.
    """
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(text)
    r = zkref("check", cfg)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Invalid config, exiting abnormally" in r.stdout
    assert message in r.stdout


def test_start_with_bad_config_exits_2(tmp_path):
    """Starting the server with a bad config prints "Invalid config, exiting abnormally" and exits 2.

    Reference: Java QuorumPeerMain.main (catch ConfigException → ExitCode.INVALID_INVOCATION).
    """
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text("clientPort=2181\n")
    r = zkref(cfg)
    assert r.returncode == 2
    assert "Invalid config, exiting abnormally" in r.stderr
    assert "dataDir is not set" in r.stderr


def test_missing_config_file_exits_2(tmp_path):
    """A config path that does not exist is a ConfigException ("Error processing …"), exit code 2.

    Reference: Java QuorumPeerConfig.parse (failForNonExistingPath).
    """
    r = zkref(tmp_path / "nope.cfg")
    assert r.returncode == 2
    assert "Invalid config, exiting abnormally" in r.stderr


def test_status_when_nothing_listens(tmp_path):
    """`status` with no server on the port prints zkServer.sh's sentence and exits 1.

    Reference: bin/zkServer.sh status.
    """
    port = free_port()
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(f"dataDir={tmp_path}\nclientPort={port}\nclientPortAddress=127.0.0.1\n")
    r = zkref("status", cfg)
    assert r.returncode == 1
    assert f"Client port found: {port}. Client address: 127.0.0.1. Client SSL: false." in r.stdout
    assert "Error contacting service. It is probably not running." in r.stdout


@pytest.mark.java
def test_status_reports_the_mode_of_a_real_java_server(java_zk):
    """`status` asks `srvr` and prints its Mode line, like zkServer.sh status — here against Java's server.

    Reference: bin/zkServer.sh status (FourLetterWordMain … srvr | grep Mode).
    """
    server = java_zk()
    r = zkref("status", server.cfg_path)
    assert r.returncode == 0, r.stdout
    assert r.stdout.strip().splitlines()[-1] == "Mode: standalone"


def test_version_and_bad_invocation():
    """`version` names the ZooKeeper release followed; a wrong invocation is exit code 2.

    Reference: bin/zkServer.sh version; Java ExitCode.INVALID_INVOCATION.
    """
    r = zkref("version")
    assert r.returncode == 0 and "Apache ZooKeeper 3.8" in r.stdout
    assert zkref("check").returncode == 2
    assert zkref("a.cfg", "b.cfg").returncode == 2


def test_embedded_default_is_zoo_sample_with_a_findable_data_dir(tmp_path):
    """With no argument zkref uses zoo_sample.cfg's values (tickTime 2000, clientPort 2181) and a data dir under ZKREF_HOME.

    Reference: conf/zoo_sample.cfg of the ZooKeeper distribution.
    """
    text = default_config_text(tmp_path)
    assert "tickTime=2000\n" in text and "clientPort=2181\n" in text
    assert f"dataDir={tmp_path / 'data'}\n" in text


def test_status_with_a_missing_config_says_so_and_exits_1(tmp_path):
    """`status` with a config file that does not exist prints a clear reason and zkServer.sh's "Unable to find
    either secure or unsecure client port in any configs. Terminating." with exit 1 — no traceback.

    Reference: bin/zkServer.sh status (the grep of a missing $ZOOCFG finds no clientPort).
    """
    r = zkref("status", tmp_path / "missing.cfg")
    assert r.returncode == 1
    assert "Cannot read config" in r.stdout
    assert "Unable to find either secure or unsecure client port in any configs. Terminating." in r.stdout
    assert "Traceback" not in r.stderr
