"""zoo.cfg parsing: zkref.config must read every config file exactly as Java 3.8's QuorumPeerConfig does.

The tables below pair a config text with the effective values or the exact error message; the `java`
tests run the real Java server (Debian's zookeeper 3.8) on the same files and check that zkref's message
is the one Java logs, and that `config_lines` equals what Java answers to `conf`.
"""
from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from conftest import JAVA_CLASSPATH, four_letter_word, free_port, java_available
from zkref.config import QuorumPeerConfig, ServerConfig, config_lines
from zkref.properties import (ConfigException, escape_property, java_hash_order, java_long_hash, load_properties,
                              parse_java_int, store_properties)
from zkref.quorum_server import LearnerType, QuorumServer, get_host_and_port, java_host_string
from zkref.quorum_verifier import (QuorumHierarchical, QuorumMaj, edit_static_config,
                                   parse_dynamic_config, write_dynamic_config)


# ---------------------------------------------------------------------------------------------- helpers

def write_cfg(tmp_path: Path, text: str, myid: str | None = None, name: str = "zoo.cfg") -> Path:
    "Write `text` (with $DATA replaced by a fresh data dir) as a config file, and `myid` if given."
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    if myid is not None:
        (data / "myid").write_text(myid)
    cfg = tmp_path / name
    cfg.write_text(text.replace("$DATA", str(data)))
    return cfg


def parse(tmp_path: Path, text: str, myid: str | None = None) -> QuorumPeerConfig:
    return QuorumPeerConfig().parse(write_cfg(tmp_path, text, myid))


def error(tmp_path: Path, text: str, myid: str | None = None) -> tuple[str, str | None]:
    "The ConfigException message and the message of its cause (None when Java throws it directly)."
    with pytest.raises(ConfigException) as info:
        parse(tmp_path, text, myid)
    cause = info.value.__cause__
    return str(info.value).replace(str(tmp_path), "$TMP"), (str(cause) if cause is not None else None)


THREE = "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\nserver.3=127.0.0.1:2890:3890\n"


# ------------------------------------------------------------------------------------ Properties rules

@pytest.mark.parametrize("text, expected", [
    ("a=1", {"a": "1"}),
    ("a:1", {"a": "1"}),
    ("a 1", {"a": "1"}),
    ("  a  =  1  ", {"a": "1  "}),                       # value keeps trailing spaces; parseProperties trims
    ("# c\n! c\n\n a=1", {"a": "1"}),
    ("a=1\\\n   2", {"a": "12"}),                         # continuation skips the next line's indent
    ("a=\\\n#x", {"a": "#x"}),                            # a continued line is never a comment
    ("a=1\r\nb=2\rc=3", {"a": "1", "b": "2", "c": "3"}),
    ("a\\=b=c", {"a=b": "c"}),
    ("a=\\u0041\\t", {"a": "A\t"}),
    ("a=1\na=2", {"a": "2"}),                             # the last one wins
    ("k", {"k": ""}),
    ("a=x\\\\", {"a": "x\\"}),                            # an even number of backslashes does not continue
    ("a = = b", {"a": "= b"}),                            # only one separator is skipped
])
def test_properties_load_rules(text, expected):
    """Config files are read with java.util.Properties rules: `=`, `:` or whitespace separators, `#`/`!`
    comments, backslash continuation, escapes, last duplicate wins.

    Reference: Java java.util.Properties.load; QuorumPeerConfig.parse
    """
    assert load_properties(text) == expected


def test_properties_malformed_unicode_escape_is_an_error_processing_the_file(tmp_path):
    """A malformed `\\uXXXX` escape makes Properties.load throw IllegalArgumentException, which parse wraps.

    Reference: Java Properties.loadConvert ("Malformed \\uxxxx encoding."); QuorumPeerConfig.parse
    """
    assert error(tmp_path, "dataDir=$DATA\nx=\\u12") == ("Error processing $TMP/zoo.cfg", "Malformed \\uxxxx encoding.")


keys = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, values, max_size=6))
def test_properties_escaping_round_trips(props):
    """Whatever Properties.store escapes, Properties.load reads back unchanged.

    Reference: Java Properties.saveConvert / loadConvert
    """
    assert load_properties(store_properties(props)) == props


def test_properties_escape_matches_java_store():
    """Keys escape every space, values only the leading one; non-ASCII becomes uppercase \\uXXXX.

    Reference: Java Properties.saveConvert
    """
    assert escape_property("a b", is_key=True) == "a\\ b"
    assert escape_property(" a b") == "\\ a b"
    assert escape_property("é=#") == "\\u00E9\\=\\#"


def test_parse_java_int_matches_integer_parse_int():
    """Numbers are parsed by Integer.parseInt/Long.parseLong: sign and digits only, range-checked.

    Reference: Java Integer.parseInt, NumberFormatException.forInputString
    """
    assert parse_java_int("+10") == 10 and parse_java_int("-2147483648") == -2147483648
    for bad in ["", "+", "0x1", "1_0", " 1", "1 ", "2147483648", "1.0"]:
        with pytest.raises(ValueError) as info:
            parse_java_int(bad)
        assert str(info.value) == f'For input string: "{bad}"'
    with pytest.raises(ValueError, match='under radix 16'):
        parse_java_int("xyz", 64, 16)


# ----------------------------------------------------------------------------------- effective values

@pytest.mark.parametrize("text, expected", [
    ("dataDir=$DATA", dict(tick_time=3000, max_client_cnxns=60, min_session_timeout=6000, max_session_timeout=60000,
                           client_port_address=None, client_port_listen_backlog=-1, init_limit=0, sync_limit=0,
                           election_alg=3, snap_retain_count=3, purge_interval=0, sync_enabled=True,
                           standalone_enabled=True, reconfig_enabled=False, server_id=-1,
                           peer_type=LearnerType.PARTICIPANT, secure_client_port_address=None)),
    ("dataDir=$DATA\ntickTime=2000\nclientPort=2181", dict(client_port_address=("0.0.0.0", 2181),
                                                          min_session_timeout=4000, max_session_timeout=40000)),
    ("dataDir=$DATA\nclientPort=2181\nclientPortAddress=127.0.0.1", dict(client_port_address=("127.0.0.1", 2181))),
    ("dataDir=$DATA\nclientPort=2181\nclientPortAddress=::1", dict(client_port_address=("0:0:0:0:0:0:0:1", 2181))),
    ("dataDir=$DATA\nminSessionTimeout=100\nmaxSessionTimeout=100", dict(min_session_timeout=100, max_session_timeout=100)),
    ("dataDir=$DATA\nautopurge.snapRetainCount=1\nautopurge.purgeInterval=24", dict(snap_retain_count=3, purge_interval=24)),
    ("dataDir=$DATA\ndataLogDir=/logs", dict(data_log_dir="/logs")),
    ("  dataDir  =  $DATA  \n tickTime : 10 ", dict(tick_time=10)),
    ("dataDir=$DATA\nsyncEnabled=FALSE\nreconfigEnabled=True\nstandaloneEnabled=false\n" + THREE + "initLimit=1\nsyncLimit=1",
     dict(sync_enabled=False, reconfig_enabled=True, standalone_enabled=False)),
    ("dataDir=$DATA\nsecureClientPort=2281", dict(secure_client_port_address=("0.0.0.0", 2281))),
    ("dataDir=$DATA\nobserverMasterPort=2191", dict(observer_master_port=2191)),
    ("dataDir=$DATA\nmetricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n"
     "metricsProvider.httpPort=7000", dict(metrics_provider_configuration={"httpPort": "7000"})),
    ("dataDir=$DATA\nquorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\nquorum.auth.serverRequireSasl=true",
     dict(quorum_enable_sasl=True, quorum_server_require_sasl=True, quorum_learner_require_sasl=True)),
    ("dataDir=$DATA\njvm.pause.monitor=true\njvm.pause.warn-threshold.ms=5000", dict(jvm_pause_monitor_to_run=True,
                                                                                   jvm_pause_warn_threshold_ms=5000)),
    ("dataDir=$DATA\nlocalSessionsEnabled=true\nquorum.cnxn.threads.size=30\nconnectToLearnerMasterLimit=7",
     dict(local_sessions_enabled=True, quorum_cnxn_threads_size=30, connect_to_learner_master_limit=7)),
])
def test_effective_values(tmp_path, text, expected):
    """Each key sets its field; unset fields keep Java's defaults; session timeouts default to 2 and 20 ticks;
    a snapRetainCount below 3 is raised to 3.

    Reference: Java QuorumPeerConfig.parseProperties; ZooKeeper Administrator's Guide, "Configuration Parameters"
    """
    config = parse(tmp_path, text, myid="1" if "server." in text else None)
    for name, value in expected.items():
        assert getattr(config, name) == value, name


def test_unknown_keys_become_per_config_system_properties(tmp_path):
    """A key parseProperties does not know becomes the system property `zookeeper.<key>`; zkref keeps them
    per config, so two configs in one process do not see each other's.

    Reference: Java QuorumPeerConfig.parseProperties (System.setProperty("zookeeper." + key, value))
    """
    a = parse(tmp_path, "dataDir=$DATA\n4lw.commands.whitelist=*\nsnapCount=10")
    b = QuorumPeerConfig({"zookeeper.snapCount": "5"})
    assert a.get_system_property("zookeeper.4lw.commands.whitelist") == "*"
    assert a.get_system_property("zookeeper.snapCount") == "10"
    assert b.get_system_property("zookeeper.4lw.commands.whitelist", "srvr") == "srvr"
    assert b.get_system_property("zookeeper.snapCount") == "5"


def test_secure_port_registers_x509_provider(tmp_path):
    """A secure client port registers the x509 authentication provider unless another scheme is named.

    Reference: Java QuorumPeerConfig.configureSSLAuth
    """
    config = parse(tmp_path, "dataDir=$DATA\nsecureClientPort=2281")
    assert config.get_system_property("zookeeper.authProvider.x509") == "org.apache.zookeeper.server.auth.X509AuthenticationProvider"
    other = QuorumPeerConfig({"zookeeper.ssl.authProvider": "custom"})
    with pytest.raises(ConfigException, match="No auth provider configured for the SSL authentication scheme 'custom'."):
        other.parse(write_cfg(tmp_path, "dataDir=$DATA\nsecureClientPort=2281"))


# --------------------------------------------------------------------------------------- error messages

ERRORS = [
    # (config text, myid, message, cause message or None when Java throws the ConfigException directly)
    ("clientPort=2181", None, "Error processing $TMP/zoo.cfg", "dataDir is not set"),
    ("dataDir=$DATA\nclientPort=abc", None, "Error processing $TMP/zoo.cfg", 'For input string: "abc"'),
    ("dataDir=$DATA\nsyncEnabled=yes", None, "Invalid option yes for syncEnabled. Choose 'true' or 'false.'", None),
    ("dataDir=$DATA\nelectionAlg=1", None, "Invalid electionAlg value. Only 3 is supported.", None),
    ("dataDir=$DATA\nclientPortAddress=127.0.0.1", None, "Error processing $TMP/zoo.cfg",
     "clientPortAddress is set but clientPort is not set"),
    ("dataDir=$DATA\nsecureClientPortAddress=127.0.0.1", None, "Error processing $TMP/zoo.cfg",
     "secureClientPortAddress is set but secureClientPort is not set"),
    ("dataDir=$DATA\nminSessionTimeout=5000\nmaxSessionTimeout=4000", None, "Error processing $TMP/zoo.cfg",
     "minSessionTimeout must not be larger than maxSessionTimeout"),
    ("dataDir=$DATA\ntickTime=0", None, "Error processing $TMP/zoo.cfg", "tickTime is not set"),
    ("dataDir=$DATA\npeerType=boss", None, "Unrecognised peertype: boss", None),
    ("dataDir=$DATA\nquorum.auth.serverRequireSasl=true", None, "Error processing $TMP/zoo.cfg",
     "quorum.auth.enableSasl is disabled, so cannot enable quorum.auth.serverRequireSasl"),
    ("dataDir=$DATA\nquorum.auth.learnerRequireSasl=true", None, "Error processing $TMP/zoo.cfg",
     "quorum.auth.enableSasl is disabled, so cannot enable quorum.auth.learnerRequireSasl"),
    ("dataDir=$DATA\nquorum.auth.enableSasl=true\nquorum.auth.serverRequireSasl=true", None,
     "Error processing $TMP/zoo.cfg", "quorum.auth.learnerRequireSasl is disabled, so cannot enable quorum.auth.serverRequireSasl"),
    ("dataDir=$DATA\nmetricsProvider.className=no.such.Cls", None, "Error processing $TMP/zoo.cfg",
     "metrics provider class was not found"),
    ("dataDir=$DATA\ndynamicConfigFile=/tmp/x\nserver.1=127.0.0.1:2888:3888", None,
     "parameter: server.1 must be in a separate dynamic config file", None),
    ("dataDir=$DATA\n" + THREE + "syncLimit=2", "1", "Error processing $TMP/zoo.cfg", "initLimit is not set"),
    ("dataDir=$DATA\n" + THREE + "initLimit=2", "1", "Error processing $TMP/zoo.cfg", "syncLimit is not set"),
    ("dataDir=$DATA\n" + THREE + "initLimit=2\nsyncLimit=2", None, "Error processing $TMP/zoo.cfg", "myid file is missing"),
    ("dataDir=$DATA\n" + THREE + "initLimit=2\nsyncLimit=2", "1 \n", "Error processing $TMP/zoo.cfg", "serverid 1  is not a number"),
    ("dataDir=$DATA\n" + THREE + "initLimit=2\nsyncLimit=2", "", "Error processing $TMP/zoo.cfg", "serverid null is not a number"),
    ("dataDir=$DATA\nserver.1=127.0.0.1:2888:3888:observer", None, "Error processing $TMP/zoo.cfg",
     "Observers w/o participants is an invalid configuration"),
    ("dataDir=$DATA\nserver.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889:observer", None,
     "Error processing $TMP/zoo.cfg", "Observers w/o quorum is an invalid configuration"),
    ("dataDir=$DATA\nstandaloneEnabled=false", None, "Error processing $TMP/zoo.cfg",
     "standaloneEnabled = false then number of participants should be >0"),
    ("dataDir=$DATA\nserver.1=127.0.0.1:2888", None, "127.0.0.1:2888 does not have the form server_config or "
     "server_config;client_config where server_config is the pipe separated list of host:port:port or "
     "host:port:port:type and client_config is port or host:port", None),
    ("dataDir=$DATA\nserver.1=127.0.0.1:x:3888", None, "Address unresolved: 127.0.0.1:x", None),
    ("dataDir=$DATA\nserver.1=127.0.0.1:2888:3888;abc", None, "Address unresolved: null:abc", None),
    ("dataDir=$DATA\nserver.1=127.0.0.1:2888:3888 ", None, "Address unresolved: 127.0.0.1:3888 ", None),
    ("dataDir=$DATA\nserver.1=127.0.0.1:2888:2888", None,
     "Client and election port must be different! Please update the configuration file on server.1", None),
    ("dataDir=$DATA\nserver.1=127.0.0.1:2888:3888:boss", None, "Unrecognised peertype: boss", None),
    ("dataDir=$DATA\nserver.1=[::1:2888:3888", None, "[::1:2888:3888 starts with '[' but has no matching ']:'", None),
    ("dataDir=$DATA\nserver.1=[::1]:", None, "[::1]: doesn't have a port after colon", None),
    ("dataDir=$DATA\nserver.1=127.0.0.1:70000:3888", None, "Error processing $TMP/zoo.cfg", "port out of range:70000"),
    ("dataDir=$DATA\nserver.x=127.0.0.1:2888:3888", None, "Error processing $TMP/zoo.cfg", 'For input string: "x"'),
    ("dataDir=$DATA\nmultiAddress.enabled=true\nserver.1=127.0.0.1:2888:3888|127.0.0.2:2889:3889", None,
     "Multiple address feature is disabled, but multiple addresses were specified for sid 1", None),
    ("dataDir=$DATA\n" + THREE + "group.1=1:2\ngroup.2=2:3", None, "Server 2is in multiple groups", None),
    ("dataDir=$DATA\n" + THREE + "group.1=1:2", None, "Server 3is not in a group", None),
    ("dataDir=$DATA\nclientPort=2181\ninitLimit=5\nsyncLimit=2\nserver.1=127.0.0.1:2888:3888;2182\n"
     "server.2=127.0.0.1:2889:3889\nserver.3=127.0.0.1:2890:3890", "1",
     "client address for this server (id = 1) in static config file is 0.0.0.0/0.0.0.0:2181 is different from "
     "client address found in dynamic file: /0.0.0.0:2182", None),
]


@pytest.mark.parametrize("text, myid, message, cause", ERRORS)
def test_error_messages(tmp_path, text, myid, message, cause):
    """Every bad config fails with Java's message: ConfigExceptions as thrown, IllegalArgumentExceptions
    (and NumberFormatExceptions) wrapped as "Error processing <path>" with the original as the cause.

    Reference: Java QuorumPeerConfig.parse, parseProperties, parseDynamicConfig, setupMyId, setupClientPort,
    checkValidity; QuorumPeer.QuorumServer; QuorumHierarchical.parse; ConfigUtils.getHostAndPort
    """
    assert error(tmp_path, text, myid) == (message, cause)


@pytest.mark.parametrize("line", [";;", "|", ";2181"])
def test_server_line_without_addresses_is_refused(line):
    """A server line with no address at all is refused with the format message (Java crashes on `;;` and
    silently keeps an address-less server for `|`).

    Reference: Java QuorumServer.initializeWithAddressString; zkref divergence (clear error)
    """
    with pytest.raises(ConfigException, match="does not have the form server_config"):
        QuorumServer.parse(1, line)


def test_config_file_bytes_are_read_as_latin1(tmp_path):
    """Properties.load(InputStream) reads ISO-8859-1, so a UTF-8 `é` arrives as two characters, as in Java.

    Reference: Java java.util.Properties.load(InputStream); QuorumPeerConfig.parse
    """
    cfg = tmp_path / "zoo.cfg"
    cfg.write_bytes(f"dataDir={tmp_path}\nsome.key=café\n".encode("utf-8"))
    config = QuorumPeerConfig().parse(cfg)
    assert config.get_system_property("zookeeper.some.key") == "cafÃ©"
    assert config.initial_config.endswith("café\n")


def test_missing_config_file(tmp_path):
    """A config path that does not exist is "Error processing <path>" caused by "<path> file is missing".

    Reference: Java QuorumPeerConfig.parse, VerifyingFileFactory.failForNonExistingPath
    """
    missing = tmp_path / "nope.cfg"
    with pytest.raises(ConfigException) as info:
        QuorumPeerConfig().parse(missing)
    assert str(info.value) == f"Error processing {missing}"
    assert str(info.value.__cause__) == f"{missing} file is missing"


def java_config_error(cfg: Path) -> str:
    "Run Java's QuorumPeerMain on `cfg` and return everything it printed (it exits with code 2 on bad config)."
    log4j = cfg.parent / "log4j.properties"
    log4j.write_text("log4j.rootLogger=INFO, C\nlog4j.appender.C=org.apache.log4j.ConsoleAppender\n"
                     "log4j.appender.C.layout=org.apache.log4j.PatternLayout\n"
                     "log4j.appender.C.layout.ConversionPattern=%-5p [%C{1}] - %m%n\n")
    proc = subprocess.run(["java", "-Xmx128m", f"-Dlog4j.configuration=file:{log4j}", "-Dzookeeper.jmx.log4j.disable=true",
                           "-cp", JAVA_CLASSPATH, "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(cfg)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout[-2000:]
    return proc.stdout + proc.stderr


JAVA_CHECKED = [1, 2, 5, 11, 16, 17, 18, 20, 21, 25, 29, 31, 34, 35]


@pytest.mark.java
@pytest.mark.slow
@pytest.mark.skipif(not java_available(), reason="Java ZooKeeper (Debian package zookeeper) is not installed")
def test_error_messages_are_the_ones_java_logs(tmp_path):
    """The real Java server, run on the same bad files, logs the same messages (exception, then "Caused by").

    Reference: Java QuorumPeerMain.main ("Invalid config, exiting abnormally", exit code 2)
    """
    for i in JAVA_CHECKED:
        text, myid, message, cause = ERRORS[i]
        case = tmp_path / f"case{i}"
        case.mkdir()
        cfg = write_cfg(case, text, myid)
        java = java_config_error(cfg)
        ours = message.replace("$TMP", str(case))
        assert f"ConfigException: {ours}" in java, (i, java[-1500:])
        if cause is not None:
            assert f"Exception: {cause}" in java.split("Caused by:", 1)[1], (i, java[-1500:])


# ------------------------------------------------------------------------------------ server lines

def test_server_line_grammar():
    """`host:quorumPort:electionPort[:type][;[clientHost:]clientPort]`; a bare client port means 0.0.0.0;
    IPv6 hosts in brackets come back in Java's long form; the type is always written.

    Reference: Java QuorumPeer.QuorumServer (initializeWithAddressString, toString)
    """
    qs = QuorumServer.parse(1, "zk1:2888:3888")
    assert (qs.addr, qs.election_addr, qs.client_addr, qs.type) == ([("zk1", 2888)], [("zk1", 3888)], None, LearnerType.PARTICIPANT)
    assert str(qs) == "zk1:2888:3888:participant"
    assert str(QuorumServer.parse(2, "zk2:2888:3888:OBSERVER;2181")) == "zk2:2888:3888:observer;0.0.0.0:2181"
    assert str(QuorumServer.parse(3, "[::1]:2888:3888;[::1]:2181")) == "[0:0:0:0:0:0:0:1]:2888:3888:participant;[0:0:0:0:0:0:0:1]:2181"
    assert get_host_and_port("[fe80::1]:1:2") == ["fe80::1", "1", "2"]
    multi = QuorumServer.parse(4, "b:1:2|a:3:4:observer", multi_address_enabled=True)
    assert str(multi) == "a:3:4|b:1:2:observer" and multi.type == LearnerType.OBSERVER


HOSTS = ["127.1", "10.0.0.1", "010.1.1.1", "1.2.3", "4294967295", "::1", "::ffff:10.0.0.1", "::1.2.3.4",
         "2001:DB8::A", "0.0.0.0", "::", "", "LocalHost", "zk1.invalid", "256.1.1.1"]


@pytest.mark.java
@pytest.mark.skipif(not java_available(), reason="needs java")
def test_host_strings_match_java(tmp_path):
    """Hosts print as `InetSocketAddress.getHostString()` does: IP literals in Java's canonical form (IPv4 short
    forms expanded, IPv6 in full and lowercase, mapped IPv4 as IPv4), names as written, "" as localhost.

    Reference: Java InetSocketAddress(String, int), InetAddress.getByName, Inet6Address.getHostAddress
    """
    src = tmp_path / "HostString.java"
    src.write_text("public class HostString { public static void main(String[] hosts) {\n"
                   "  for (String h : hosts) System.out.println(new java.net.InetSocketAddress(h, 1).getHostString()); } }\n")
    proc = subprocess.run(["java", str(src), *HOSTS], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [java_host_string(h) for h in HOSTS] == proc.stdout.split("\n")[:-1]


def test_server_line_mixed_roles_message_names_participant_first():
    """Mixed types across `|` addresses are refused; Java's message names the field's default type first.

    Reference: Java QuorumServer.initializeWithAddressString ("Multiple addresses should have similar roles")
    """
    with pytest.raises(ConfigException, match="^Multiple addresses should have similar roles: PARTICIPANT vs PARTICIPANT$"):
        QuorumServer.parse(1, "a:1:2:observer|b:3:4:participant", multi_address_enabled=True)


hosts = st.one_of(
    st.from_regex(r"\A[a-z][a-z0-9-]{0,10}(\.[a-z][a-z0-9-]{0,8}){0,2}\Z"),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda ip: java_host_string(str(ip))),
)
ports = st.integers(0, 65535)


@st.composite
def quorum_servers(draw):
    n = draw(st.integers(1, 3))
    addr, election = [], []
    for _ in range(n):
        host = draw(hosts)
        q = draw(ports)
        e = draw(ports.filter(lambda p: p != q))
        addr.append((host, q))
        election.append((host, e))
    hosts_unique = len({h for h, _ in addr}) == n
    if not hosts_unique:
        addr, election = addr[:1], election[:1]
    client = draw(st.none() | st.tuples(hosts, ports))
    return QuorumServer(draw(st.integers(0, 2**63 - 1)), addr, election, client, draw(st.sampled_from(LearnerType)))


@settings(max_examples=300, deadline=None)
@given(quorum_servers())
def test_server_line_round_trips(qs):
    """A server's canonical string (as stored in /zookeeper/config) parses back to an equal server.

    Reference: Java QuorumServer.toString and QuorumServer(long, String); QuorumServer.equals
    """
    again = QuorumServer.parse(qs.id, str(qs), multi_address_enabled=True)
    assert again == qs
    assert str(again) == str(qs)


# -------------------------------------------------------------------------------------- quorum verifiers

def test_majority_quorums_count_voters_only():
    """A majority verifier accepts a set of more than half the participants; observers never count.

    Reference: Java QuorumMaj.containsQuorum
    """
    qv = QuorumMaj.from_properties({f"server.{i}": f"h{i}:1:2" for i in range(1, 6)} | {"server.6": "h6:1:2:observer"})
    assert len(qv.voting_members) == 5 and set(qv.observing_members) == {6}
    assert qv.contains_quorum({1, 2, 3}) and not qv.contains_quorum({1, 2}) and qv.weight(1) == 1


def test_hierarchical_quorums():
    """A hierarchical verifier needs a weighted majority in more than half of the groups; groups of weight 0
    do not count; the string form lists servers, groups, weights, then the version.

    Reference: Java QuorumHierarchical.containsQuorum, computeGroupWeight, toString
    """
    props = {f"server.{i}": f"h{i}:1:2" for i in range(1, 10)}
    props |= {"group.1": "1:2:3", "group.2": "4:5:6", "group.3": "7:8:9", "weight.7": "0", "weight.8": "0",
              "weight.9": "0", "version": "a"}
    qv = QuorumHierarchical.from_properties(props)
    assert qv.num_groups == 2 and qv.group_weight == {1: 3, 2: 3, 3: 0}
    assert qv.contains_quorum({1, 2, 4, 5})
    assert not qv.contains_quorum({1, 2, 7, 8, 9})
    assert not qv.contains_quorum(set())
    text = str(qv)
    assert text.startswith("server.1=h1:1:2:participant\n") and "group.1=1:2:3\n" in text
    assert "weight.7=0\n" in text and text.endswith("version=a")


def test_hashmap_order_matches_java_for_large_ids():
    """Membership strings follow java.util.HashMap order: by hash bucket, which is not numeric order for
    ids at or above the table size.

    Reference: Java QuorumMaj.toString (HashMap iteration), HashMap.hash
    """
    assert java_hash_order([3, 1, 2], java_long_hash) == [1, 2, 3]
    assert java_hash_order([17, 1, 16, 0], java_long_hash) == [16, 0, 17, 1]


def test_ensemble_size_warnings(tmp_path, caplog):
    """Two voters tolerate no failure and four are non-optimal: Java warns; one voter is ignored (standalone).

    Reference: Java QuorumPeerConfig.parseDynamicConfig
    """
    caplog.set_level(logging.INFO)
    two = {"server.1": "a:1:2", "server.2": "b:1:2"}
    parse_dynamic_config(two)
    assert "No server failure will be tolerated. You need at least 3 servers." in caplog.text
    caplog.clear()
    parse_dynamic_config(two | {"server.3": "c:1:2", "server.4": "d:1:2"})
    assert "Non-optimal configuration, consider an odd number of servers." in caplog.text
    caplog.clear()
    config = parse(tmp_path, "dataDir=$DATA\nserver.1=127.0.0.1:2888:3888")
    assert "Invalid configuration, only one server specified (ignoring)" in caplog.text
    assert not config.is_distributed()


@pytest.mark.parametrize("text, distributed", [
    ("dataDir=$DATA", False),
    ("dataDir=$DATA\nserver.1=127.0.0.1:2888:3888", False),
    ("dataDir=$DATA\nstandaloneEnabled=false\ninitLimit=1\nsyncLimit=1\nserver.1=127.0.0.1:2888:3888", True),
    ("dataDir=$DATA\ninitLimit=1\nsyncLimit=1\n" + THREE, True),
])
def test_is_distributed(tmp_path, text, distributed):
    """Quorum mode needs more than one voter, or standaloneEnabled=false.

    Reference: Java QuorumPeerConfig.isDistributed
    """
    assert parse(tmp_path, text, myid="1").is_distributed() is distributed


def test_server_line_client_address_wins_and_peer_type_follows_the_list(tmp_path):
    """The server's own line decides its client address and whether it observes; `peerType` only warns.

    Reference: Java QuorumPeerConfig.setupClientPort, setupPeerType
    """
    config = parse(tmp_path, "dataDir=$DATA\npeerType=participant\ninitLimit=1\nsyncLimit=1\n" + THREE +
                   "server.4=127.0.0.1:2891:3891:observer;127.0.0.1:2184", myid="4")
    assert config.client_port_address == ("127.0.0.1", 2184) and config.peer_type == LearnerType.OBSERVER
    other = parse(tmp_path, "dataDir=$DATA\nclientPort=2181\ninitLimit=1\nsyncLimit=1\n" + THREE, myid="2")
    member = other.quorum_verifier.all_members[2]
    assert member.client_addr == ("0.0.0.0", 2181) and member.is_client_addr_from_static
    assert str(member) == "127.0.0.1:2889:3889:participant"


# ------------------------------------------------------------------------------------ dynamic config

def test_dynamic_config_file_and_next(tmp_path):
    """With dynamicConfigFile the membership comes from that file, its version from the file name's hex
    suffix; `<cfg>.dynamic.next` becomes the last seen verifier.

    Reference: Java QuorumPeerConfig.parse, getVersionFromFilename; ZooKeeper Dynamic Reconfiguration guide
    """
    dyn = tmp_path / "zoo.cfg.dynamic.100000000"
    dyn.write_text(THREE.replace("3888", "3888;2181"))
    (tmp_path / "zoo.cfg.dynamic.next").write_text(THREE + "version=200000000\n")
    config = parse(tmp_path, f"dataDir=$DATA\ninitLimit=5\nsyncLimit=2\ndynamicConfigFile={dyn}", myid="1")
    assert config.quorum_verifier.version == 0x100000000
    assert config.last_seen_quorum_verifier.version == 0x200000000
    assert config.client_port_address == ("0.0.0.0", 2181)


@pytest.mark.parametrize("dynamic_text, message", [
    (THREE + "version=1\n", "dynamic file shouldn't have version inside"),
    (THREE + "tickTime=1\n", "Unrecognised parameter: tickTime"),
])
def test_dynamic_config_file_errors(tmp_path, dynamic_text, message):
    """A dynamic file may hold only server, group and weight keys, and no version.

    Reference: Java QuorumPeerConfig.parse, parseDynamicConfig
    """
    dyn = tmp_path / "zoo.cfg.dynamic"
    dyn.write_text(dynamic_text)
    with pytest.raises(ConfigException, match=f"^{message}$"):
        parse(tmp_path, f"dataDir=$DATA\ninitLimit=5\nsyncLimit=2\ndynamicConfigFile={dyn}", myid="1")


def test_reconfig_backs_up_a_static_file_holding_servers(tmp_path):
    """With reconfigEnabled, a distributed zoo.cfg that still holds server lines is backed up to zoo.cfg.bak.

    Reference: Java QuorumPeerConfig.backupOldConfig
    """
    text = "dataDir=$DATA\nreconfigEnabled=true\ninitLimit=5\nsyncLimit=2\n" + THREE
    parse(tmp_path, text, myid="1")
    assert (tmp_path / "zoo.cfg.bak").read_text() == (tmp_path / "zoo.cfg").read_text()


def test_reconfig_files_round_trip(tmp_path):
    """A committed membership is written as a sorted dynamic file without `version`; zoo.cfg loses its server
    lines and points at that file; parsing the pair again gives the same membership and version.

    Reference: Java QuorumPeerConfig.writeDynamicConfig, editStaticConfig; QuorumPeer.setQuorumVerifier
    """
    config = parse(tmp_path, "dataDir=$DATA\nclientPort=2181\ninitLimit=5\nsyncLimit=2\n" + THREE, myid="2")
    dyn = tmp_path / "zoo.cfg.dynamic.100000000"
    write_dynamic_config(dyn, config.quorum_verifier)
    # server 2's client address came from the static clientPort, so it is not written
    assert dyn.read_text() == ("server.1=127.0.0.1:2888:3888:participant\nserver.2=127.0.0.1:2889:3889:participant\n"
                               "server.3=127.0.0.1:2890:3890:participant")
    edit_static_config(tmp_path / "zoo.cfg", dyn)
    static = (tmp_path / "zoo.cfg").read_text()
    assert "server." not in static and "clientPort=2181\n" in static and static.endswith(f"dynamicConfigFile={dyn}\n")
    again = QuorumPeerConfig().parse(tmp_path / "zoo.cfg")
    assert again.quorum_verifier.all_members == config.quorum_verifier.all_members
    assert again.quorum_verifier.version == 0x100000000 and again.client_port_address == ("0.0.0.0", 2181)
    assert set(again.servers) == {1, 2, 3}


def test_empty_data_dir_is_a_clear_error(tmp_path):
    """`dataDir=` with no value crashes Java (StringIndexOutOfBoundsException); zkref names the problem.

    Reference: Java VerifyingFileFactory.doWarnForRelativePath; zkref divergence (clear error instead of a crash)
    """
    assert error(tmp_path, "dataDir=") == ("Error processing $TMP/zoo.cfg", "dataDir is empty")


# ------------------------------------------------------------------------------------ ServerConfig

def test_server_config_argument_form():
    """`port dataDir [tickTime [maxClientCnxns]]`; any other count is refused with Java's message.

    Reference: Java ServerConfig.parse(String[])
    """
    sc = ServerConfig().parse(["2181", "/data", "2000", "10"])
    assert (sc.client_port_address, sc.data_dir, sc.data_log_dir, sc.tick_time, sc.max_client_cnxns) == (
        ("0.0.0.0", 2181), "/data", "/data", 2000, 10)
    with pytest.raises(ValueError, match=r"^Invalid number of arguments:\[2181\]$"):
        ServerConfig().parse(["2181"])


def test_server_config_reads_from_quorum_peer_config(tmp_path):
    """The file form is parsed by QuorumPeerConfig and the standalone fields copied over.

    Reference: Java ServerConfig.parse(String), readFrom
    """
    sc = ServerConfig().parse(write_cfg(tmp_path, "dataDir=$DATA\nclientPort=2181\ntickTime=100\nmaxClientCnxns=7"))
    assert (sc.client_port_address, sc.tick_time, sc.max_client_cnxns, sc.min_session_timeout) == (("0.0.0.0", 2181), 100, 7, 200)


# ------------------------------------------------------------------------------------ conf output

def java_conf(java_zk, config: dict, myid: int | None = None) -> list[str]:
    server = java_zk(dict(config, **{"4lw.commands.whitelist": "*"}), myid=myid)
    lines = four_letter_word(server.client_port, "conf").splitlines()
    return [line for line in lines if not line.startswith(("dataDirSize=", "dataLogSize="))], server


@pytest.mark.java
def test_config_lines_match_java_conf_standalone(java_zk):
    """`config_lines` prints what a standalone Java server answers to `conf`, minus the runtime sizes.

    Reference: Java ZooKeeperServer.dumpConf; Administrator's Guide "The Four Letter Words" (conf)
    """
    lines, server = java_conf(java_zk, {"tickTime": 2000, "maxClientCnxns": 33})
    ours = config_lines(QuorumPeerConfig().parse(server.cfg_path))
    assert ours == lines


@pytest.mark.java
def test_config_lines_match_java_conf_quorum(java_zk):
    """In quorum mode `conf` adds the limits, election and quorum ports, the peer type ordinal and the
    membership; `config_lines` prints the same from the config alone.

    Reference: Java QuorumZooKeeperServer.dumpConf, QuorumMaj.toString
    """
    q, e = free_port(), free_port()
    config = {"standaloneEnabled": "false", "initLimit": 5, "syncLimit": 2, "server.1": f"127.0.0.1:{q}:{e}",
              "server.2": f"[::1]:{free_port()}:{free_port()}:observer;2999", "clientPort": free_port()}
    lines, server = java_conf(java_zk, config, myid=1)
    ours = config_lines(QuorumPeerConfig().parse(server.cfg_path))
    assert ours == lines
