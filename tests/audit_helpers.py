"""Shared by test_audit and test_observability_server: audit lines picked out of a ZooKeeper log."""
from __future__ import annotations

import re


def audit_lines(log_text: str) -> list[tuple[str, str]]:
    "(level, message) of every Slf4jAuditLogger line in a ZooKeeper log (Java's or zkref's layout)."
    out = []
    for line in log_text.splitlines():
        m = re.match(r".* - (\w+)\s*\[[^\]]*:Slf4jAuditLogger@\d+\] - (.*)$", line)
        if m:
            out.append((m.group(1), m.group(2)))
    return out
