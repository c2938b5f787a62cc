"""`python -m zkref` removes `EnumType.__getattr__` from its process on Python 3.11, as Python 3.12 did
(chapter 01b, "Enum lookups"): every enum member must be found exactly as before. Python 3.12's What's New
(enum): EnumType.__getattr__ removed, as it is no longer needed for enum attribute access."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Every enum class that zkref's modules, and the modules the server uses, define or import: for each, every
# member's name and what a class lookup of that name gives, and what a missing name gives.
SURVEY = r"""
import enum, importlib, json, pkgutil, sys
drop = sys.argv[1] == "drop"
import zkref
for m in pkgutil.walk_packages(zkref.__path__, "zkref."):
    if m.name != "zkref.__main__":
        importlib.import_module(m.name)
import asyncio, http, logging, signal, socket, ssl, uuid, aiohttp, kazoo.protocol.states, uvloop  # noqa: F401
if drop:
    from zkref.__main__ import drop_enum_getattr
    assert drop_enum_getattr() == (sys.version_info < (3, 12))
classes, seen = [], set()
for mod in list(sys.modules.values()):
    for value in list(vars(mod).values()) if mod is not None else []:
        if isinstance(value, enum.EnumType) and value not in seen:
            seen.add(value)
            classes.append(value)
out = {}
for cls in classes:
    key = f"{cls.__module__}.{cls.__qualname__}"
    found = {name: getattr(cls, name) is member for name, member in cls.__members__.items()}
    try:
        getattr(cls, "no_such_member_here")
        missing = "found"
    except AttributeError:
        missing = "AttributeError"
    out[key] = [found, missing]
print(json.dumps(out, sort_keys=True))
"""


def survey(mode: str) -> dict:
    r = subprocess.run([sys.executable, "-c", SURVEY, mode], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_every_enum_member_is_found_the_same_without_enumtype_getattr():
    """With EnumType.__getattr__ removed (drop_enum_getattr), a class lookup of every member of every enum
    class zkref and the server's other modules define gives that very member, and a name that is no member is
    still an AttributeError: the same survey as in an untouched process."""
    kept, dropped = survey("keep"), survey("drop")
    assert dropped == kept
    assert len(kept) > 20, sorted(kept)                    # OpCode, Code, Perms, State, ... and the stdlib's
    assert all(all(found.values()) and missing == "AttributeError" for found, missing in kept.values()), kept
    assert "zkref.proto.OpCode" in kept and "zkref.proto.Code" in kept


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.12 has no EnumType.__getattr__ to remove")
def test_drop_enum_getattr_removes_it_once_and_only_in_its_own_process():
    """drop_enum_getattr removes the hook on 3.11 and says so; a second call has nothing left to remove. The
    process that imports zkref without running `python -m zkref` keeps it."""
    code = ("import enum; from zkref.__main__ import drop_enum_getattr; "
            "assert '__getattr__' in vars(enum.EnumType); "
            "print(drop_enum_getattr(), drop_enum_getattr(), '__getattr__' in vars(enum.EnumType))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "False", "False"]
