"""zkref's log lines have the layout of ZooKeeper 3.8's, so operators' grep patterns carry over."""
import io
import logging
import re

import pytest

from zkref.log import MYID, configure_logging, get_logger

# logback/log4j pattern of ZooKeeper 3.8: %d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n
LAYOUT = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[myid:\d*\] - (INFO |WARN |ERROR|DEBUG|TRACE) "
                    r"\[.+:[A-Za-z0-9$]+@\d+\] - .*$")


def zkref_lines(level, msg):
    buf = io.StringIO()
    handler = configure_logging("DEBUG", stream=buf)
    token = MYID.set("3")
    try:
        get_logger("QuorumPeerMain").log(level, msg)
    finally:
        MYID.reset(token)
        logging.getLogger().removeHandler(handler)
    return buf.getvalue().splitlines()


@pytest.mark.parametrize("level, java_name", [(logging.INFO, "INFO "), (logging.WARNING, "WARN "),
                                              (logging.ERROR, "ERROR"), (logging.DEBUG, "DEBUG")])
def test_zkref_line_layout_and_level_names(level, java_name):
    """Each line is `date,ms [myid:N] - LEVEL [thread:Class@line] - message`, levels named as logback names them.

    Reference: conf/logback.xml of ZooKeeper 3.8 (CONSOLE pattern); zookeeper-user-conventions B6.
    """
    [line] = zkref_lines(level, "hello")
    assert LAYOUT.match(line), line
    assert f" [myid:3] - {java_name} [main:QuorumPeerMain@" in line


@pytest.mark.java
def test_java_server_lines_match_the_same_pattern(java_zk):
    """The real Java server's lines match the same pattern zkref's do (the pattern is no private invention).

    Reference: a real ZooKeeper 3.8 server's console log.
    """
    server = java_zk()
    lines = [l for l in server.logs().splitlines() if re.match(r"^\d{4}-", l)]
    assert lines
    assert sum(bool(LAYOUT.match(l)) for l in lines) == len(lines), [l for l in lines if not LAYOUT.match(l)][:3]
