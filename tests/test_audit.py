"""The audit log: Java's line format, the enable switch, start/stop lines, and the lines the real Java 3.8
server writes for the same client operations."""
from __future__ import annotations

import logging

import pytest

from audit_helpers import audit_lines
from zkref.audit import (AUDIT_LOGGER_NAME, AuditEvent, AuditLogger, FieldName, Result, ZKAuditProvider,
                         acl_to_string, create_mode_for_audit, get_zk_user, java_auth_info_order,
                         session_id_hex, users_for_audit)
from zkref.jute import ACL, Id
from zkref.proto import OpCode, Perms, generate_digest


class Collect(AuditLogger):
    "An audit logger that keeps (level name, line) pairs, as Slf4jAuditLogger would log them."
    def __init__(self):
        self.lines = []
    def log_audit_event(self, event):
        self.lines.append(("ERROR" if event.result is Result.FAILURE else "INFO", str(event)))


def test_audit_line_format():
    """An audit line is the non-null fields as name=value joined by tabs, in the order session, user, ip,
    operation, znode, znode_type, acl, followed by result=success|failure|invoked.
    Reference: Java AuditEvent.toString, ZKAuditProvider.createLogEvent."""
    e = AuditEvent(Result.INVOKED)
    assert str(e) == "result=invoked"
    audit = ZKAuditProvider(True, Collect())
    audit.log("127.0.0.1", "setAcl", "/a", "world:anyone:r", None, "0x1", "127.0.0.1", Result.SUCCESS)
    audit.log(None, "delete", "/b", None, None, "0x2", "::1", Result.FAILURE)
    assert audit.audit_logger.lines == [
        ("INFO", "session=0x1\tuser=127.0.0.1\tip=127.0.0.1\toperation=setAcl\tznode=/a\tacl=world:anyone:r\tresult=success"),
        ("ERROR", "session=0x2\tip=::1\toperation=delete\tznode=/b\tresult=failure")]
    ev = AuditEvent(Result.SUCCESS)
    ev.add_entry(FieldName.ZNODE, "/x")
    assert ev.get_value(FieldName.ZNODE) == "/x" and ev.get_value(FieldName.ACL) is None


def test_disabled_by_default_and_switch(caplog):
    """Audit is off unless audit.enable (zookeeper.audit.enable) is true; the provider logs
    "ZooKeeper audit is disabled." / "ZooKeeper audit is enabled."; a disabled provider writes nothing.
    Reference: Java ZKAuditProvider static initializer; zookeeperAuditLogs.md."""
    with caplog.at_level(logging.INFO):
        off = ZKAuditProvider.from_properties({})
        on = ZKAuditProvider.from_properties({"audit.enable": "TRUE"})
        also_off = ZKAuditProvider.from_properties({"audit.enable": "yes"})
        sysprop = ZKAuditProvider.from_properties({"zookeeper.audit.enable": "true", "audit.enable": "false"})
    assert (off.is_audit_enabled(), on.is_audit_enabled(), also_off.is_audit_enabled(), sysprop.is_audit_enabled()) == \
        (False, True, False, True)
    msgs = [r.getMessage() for r in caplog.records if r.name == "ZKAuditProvider"]
    assert msgs == ["ZooKeeper audit is disabled.", "ZooKeeper audit is enabled.",
                    "ZooKeeper audit is disabled.", "ZooKeeper audit is enabled."]
    caplog.clear()
    with caplog.at_level(logging.INFO):
        off.log("u", "create", "/a", None, "persistent", "0x1", "127.0.0.1", Result.SUCCESS)
        off.add_zk_start_stop_audit_log()
        off.add_audit_log(OpCode.create, "/a", 1, "127.0.0.1", [], create_flags=0)
    assert not [r for r in caplog.records if r.name == AUDIT_LOGGER_NAME]
    with pytest.raises(RuntimeError, match="^Couldn't instantiate com.acme.Audit$"):
        ZKAuditProvider.from_properties({"audit.enable": "true", "audit.impl.class": "com.acme.Audit"})


def test_start_stop_lines_on_own_logger(caplog):
    """With audit enabled the server logs serverStart/success when it has started and serverStop/invoked at
    shutdown (once), as the server's user, on the Slf4jAuditLogger logger; a failed start is serverStart/failure.
    Reference: Java ZKAuditProvider.addZKStartStopAuditLog, addServerStartFailureAuditLog, Slf4jAuditLogger."""
    with caplog.at_level(logging.INFO):
        audit = ZKAuditProvider(True, user="zk")
        audit.add_zk_start_stop_audit_log()
        audit.add_zk_stop_audit_log()
        audit.add_zk_stop_audit_log()
        audit.add_server_start_failure_audit_log()
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == AUDIT_LOGGER_NAME]
    assert lines == [("INFO", "user=zk\toperation=serverStart\tresult=success"),
                     ("INFO", "user=zk\toperation=serverStop\tresult=invoked"),
                     ("ERROR", "user=zk\toperation=serverStart\tresult=failure")]


def test_field_values():
    """Session ids print as 0x + lower-case hex; ACLs as scheme:id:perms (perms in c,d,r,w,a order) with no
    separator between entries; create modes in lower case; users are the registered schemes' names
    (digest: the part before ':'), without world.
    Reference: Java ServerCnxn.getSessionIdHex, ZKUtil.aclToString/getPermString, CreateMode, AuthUtil.getUsers."""
    assert session_id_hex(0x10000160A520000) == "0x10000160a520000" and session_id_hex(-1) == "0xffffffffffffffff"
    acl = [ACL(perms=Perms.ALL, id=Id(scheme="world", id="anyone")),
           ACL(perms=Perms.READ | Perms.ADMIN, id=Id(scheme="ip", id="10.0.0.1"))]
    assert acl_to_string(acl) == "world:anyone:cdrwaip:10.0.0.1:ra"
    assert [create_mode_for_audit(f) for f in range(7)] == [
        "persistent", "ephemeral", "persistent_sequential", "ephemeral_sequential", "container",
        "persistent_with_ttl", "persistent_sequential_with_ttl"]
    assert users_for_audit([Id(scheme="world", id="anyone")]) is None and users_for_audit(None) is None
    assert users_for_audit([Id(scheme="digest", id="alice:abc=")]) == "alice"


def test_user_order_follows_javas_auth_set():
    """A connection's ids are iterated in ConcurrentHashMap order (hash buckets), so digest user bob with
    password secret on 127.0.0.1 prints as user=bob,127.0.0.1 whatever the order the ids were added in.
    Reference: Java ServerCnxn.authInfo (a ConcurrentHashMap-backed set); AuthUtil.getUsers."""
    ip, bob = Id(scheme="ip", id="127.0.0.1"), Id(scheme="digest", id=generate_digest("bob:secret"))
    assert users_for_audit([ip, bob]) == users_for_audit([bob, ip]) == "bob,127.0.0.1"
    assert java_auth_info_order([ip, bob, ip]) == [bob, ip]


def test_write_helper_follows_audit_helper():
    """add_audit_log maps opcodes as AuditHelper does: creates (with znode_type), deletes, setData, setAcl (with
    acl), reconfig; reads and createTTL are not audited; a failed txn is a failure; a successful multi logs
    each create/delete/setData member and a failed one a single multiOperation failure.
    Reference: Java AuditHelper.addAuditLog / logMultiOperation."""
    audit = ZKAuditProvider(True, Collect(), user="zk")
    ids = [Id(scheme="ip", id="127.0.0.1")]
    common = dict(session_id=0xA, ip="127.0.0.1", auth_info=ids)
    audit.add_audit_log(OpCode.create2, "/s-0000000001", create_flags=2, **common)
    audit.add_audit_log(OpCode.getData, "/s", **common)
    audit.add_audit_log(OpCode.createTTL, "/t", create_flags=5, **common)
    audit.add_audit_log(OpCode.setData, "/s", err=-101, **common)
    audit.add_audit_log(OpCode.multi, None, multi_results=[(OpCode.create, "/m", 0), (OpCode.createTTL, "/ttl", 0),
                                                            (OpCode.check, "/m", 0)],
                        create_modes={"/m": "persistent", "/ttl": "persistent_with_ttl"}, **common)
    audit.add_audit_log(OpCode.multi, None, multi_results=[(OpCode.error, None, -101), (OpCode.error, None, -2)], **common)
    audit.add_audit_log(OpCode.multi, None, failed_txn=True, **common)
    audit.add_audit_log(OpCode.reconfig, "/zookeeper/config", **common)
    pre = "session=0xa\tuser=127.0.0.1\tip=127.0.0.1\t"
    assert audit.audit_logger.lines == [
        ("INFO", pre + "operation=create\tznode=/s-0000000001\tznode_type=persistent_sequential\tresult=success"),
        ("ERROR", pre + "operation=setData\tznode=/s\tresult=failure"),
        ("INFO", pre + "operation=create\tznode=/m\tznode_type=persistent\tresult=success"),
        ("INFO", pre + "operation=create\tznode=/ttl\tznode_type=persistent_with_ttl\tresult=success"),
        ("ERROR", pre + "operation=multiOperation\tresult=failure"),
        ("ERROR", pre + "operation=multiOperation\tresult=failure"),
        ("INFO", pre + "operation=reconfig\tznode=/zookeeper/config\tresult=success")]


@pytest.mark.java
def test_lines_match_the_java_server(java_zk):
    """For the same client operations (digest-authenticated create, ephemeral sequential create, setACL,
    setData, a failed delete, a failed and a successful multi, session close, server stop) zkref's audit API
    produces exactly the lines the real Java 3.8 server writes with audit.enable=true.
    Reference: Java AuditHelper, ZKAuditProvider, DataTree.deleteNodes (run against Debian's zookeeper 3.8.0)."""
    from kazoo.client import KazooClient
    from kazoo.exceptions import NoNodeError
    from kazoo.security import make_acl

    server = java_zk({"audit.enable": "true"})
    zk = KazooClient(hosts=f"127.0.0.1:{server.client_port}", auth_data=[("digest", "bob:secret")], timeout=10)
    zk.start(timeout=15)
    try:
        session = zk.client_id[0]
        zk.create("/app", b"x")
        seq = zk.create("/seq-", b"", sequence=True, ephemeral=True)
        acl = [make_acl("world", "anyone", all=True), make_acl("ip", "10.0.0.1", read=True)]
        zk.set_acls("/app", acl)
        zk.set("/app", b"y")
        with pytest.raises(NoNodeError):
            zk.delete("/nope")
        t = zk.transaction(); t.create("/m1"); t.delete("/nope2"); t.commit()
        t = zk.transaction(); t.create("/m2"); t.set_data("/app", b"z"); t.commit()
    finally:
        zk.stop()
        zk.close()
    server.stop()
    java = audit_lines(server.logs())

    ours = Collect()
    audit = ZKAuditProvider(True, ours, user=get_zk_user())
    ids = [Id(scheme="ip", id="127.0.0.1"), Id(scheme="digest", id=generate_digest("bob:secret"))]
    c = dict(session_id=session, ip="127.0.0.1", auth_info=ids)
    jacl = [ACL(perms=Perms.ALL, id=Id(scheme="world", id="anyone")), ACL(perms=Perms.READ, id=Id(scheme="ip", id="10.0.0.1"))]
    audit.add_zk_start_stop_audit_log()
    audit.add_audit_log(OpCode.create, "/app", create_flags=0, **c)
    audit.add_audit_log(OpCode.create, seq, create_flags=3, **c)
    audit.add_audit_log(OpCode.setACL, "/app", acl=jacl, **c)
    audit.add_audit_log(OpCode.setData, "/app", **c)
    audit.add_audit_log(OpCode.delete, "/nope", failed_txn=True, **c)
    audit.add_audit_log(OpCode.multi, None, failed_txn=True, **c)
    audit.add_audit_log(OpCode.multi, None, multi_results=[(OpCode.create, "/m2", 0), (OpCode.setData, "/app", 0)],
                        create_modes={"/m2": "persistent"}, **c)
    audit.log_ephemeral_deletion(session, seq)
    audit.add_zk_stop_audit_log()
    assert ours.lines == java
