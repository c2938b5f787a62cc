"""Old import paths after chapter splits: the modules in `MOVED` give the names they handed to later chapters
through `zkref.reexports.lazy_reexports` (a PEP 562 module `__getattr__`, chapter 01c)."""
import importlib
import subprocess
import sys

import pytest

from zkref.reexports import lazy_reexports

#: old module -> {new home: the names that moved there}; every one must stay importable from the old module.
MOVED = {
    "zkref.config": {"zkref.server_config": ["ServerConfig", "config_lines"],
                     "zkref.config_keys": ["parse_boolean"]},
    "zkref.datatree": {"zkref.datatree_txns": ["ProcessTxnResult", "sequential_suffix", "to_graphviz"],
                       "zkref.datatree_snapshots": ["ZxidDigest", "DIGEST_LOG_LIMIT", "DIGEST_LOG_INTERVAL"]},
    "zkref.proto": {"zkref.proto_znodes": ["validate_path", "CreateMode", "CONTAINER_EPHEMERAL_OWNER", "TTL_MAX",
                                           "ttl_ephemeral_owner", "ephemeral_kind", "ttl_of", "ANYONE_ID_UNSAFE",
                                           "AUTH_IDS", "OPEN_ACL_UNSAFE", "CREATOR_ALL_ACL", "READ_ACL_UNSAFE",
                                           "generate_digest"],
                    "zkref.proto_multi": ["MultiError", "MultiOperationRecord", "OpResult", "MultiResponse"]},
    "zkref.quorum.zab": {"zkref.quorum.zab_trace": ["ZabEvent", "record", "zab_diagram", "trace_violations",
                                                    "_check_leader_event"],
                         "zkref.quorum.zab_group_commit": ["maybe_snapshot", "group_commit"],
                         "zkref.quorum.zab_snap": ["STAT_PERSISTED_SIZE", "read_snapshot_body", "snapshot_body"]},
    "zkref.zkdatabase": {"zkref.zkdatabase_commit": ["SyncThread"],
                         "zkref.zkdatabase_snapshots": ["encode_snapshot_chunks", "encode_snapshot_async"]},
    "zkref.server.processors": {
        "zkref.server.prep_request_processor": ["PrepRequestProcessor", "PLOG"],
        "zkref.server.sync_request_processor": ["SyncRequestProcessor", "SLOG"],
        "zkref.server.final_request_processor": ["FinalRequestProcessor", "FLOG", "audit_request"]},
    "zkref.audit": {"zkref.audit_helper": ["java_string_hash", "java_id_hash", "java_auth_info_order", "session_id_hex",
                                           "perm_string", "acl_to_string", "AUDIT_USER_SCHEMES", "users_for_audit",
                                           "create_mode_for_audit"]},
}


@pytest.mark.parametrize("old", sorted(MOVED))
def test_every_moved_name_is_the_object_in_its_new_home(old):
    """Each name a split chapter moved out stays importable from its old module (`from old import name` and
    `old.name`) and is the very object defined in its new home. Reference: PEP 562"""
    module = importlib.import_module(old)
    for home, names in MOVED[old].items():
        new = importlib.import_module(home)
        for name in names:
            imported = getattr(__import__(old, fromlist=[name]), name)
            assert imported is getattr(new, name), f"{old}.{name} is not {home}.{name}"
            assert getattr(module, name) is getattr(new, name)


@pytest.mark.parametrize("old", sorted(MOVED))
def test_moved_names_import_first_in_a_fresh_interpreter(old):
    """`from old import name` as a program's first zkref import works for every moved name: the lazy lookup
    breaks the import cycle between a split chapter and its new parts. Reference: PEP 562"""
    imports = "; ".join(f"from {old} import {', '.join(names)}; import {home}; "
                        f"assert all(globals()[n] is getattr(sys.modules[{home!r}], n) for n in {names!r})"
                        for home, names in MOVED[old].items())
    run = subprocess.run([sys.executable, "-c", f"import sys; {imports}; print('ok')"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout == "ok\n", run.stderr


@pytest.mark.parametrize("old", sorted(MOVED))
def test_unknown_names_get_pythons_usual_errors(old):
    """A name a module never had raises Python's usual `AttributeError` (`module 'zkref.x' has no attribute
    'y'`), and `from zkref.x import y` Python's usual `ImportError`. Reference: PEP 562"""
    module = importlib.import_module(old)
    with pytest.raises(AttributeError) as e:
        module.no_such_name
    assert str(e.value) == f"module {old!r} has no attribute 'no_such_name'"
    assert e.value.name == "no_such_name" and e.value.obj is module
    with pytest.raises(ImportError, match=f"cannot import name 'no_such_name' from '{old}'"):
        exec(f"from {old} import no_such_name", {})


def test_star_import_still_gives_the_moved_names():
    """`from zkref.x import *` gives the moved names the module lists in `__all__`, as before the split.
    Reference: PEP 562"""
    for old, homes in MOVED.items():
        namespace = {}
        exec(f"from {old} import *", namespace)
        listed = set(importlib.import_module(old).__all__)
        for home, names in homes.items():
            for name in set(names) & listed:
                assert namespace[name] is getattr(importlib.import_module(home), name), (old, name)


def test_a_name_sent_to_two_homes_is_refused():
    """A re-export table that gives one name two new homes is a mistake caught when the module is imported.
    Reference: PEP 562"""
    with pytest.raises(ValueError, match="'x' cannot have moved to both a.b and a.c"):
        lazy_reexports("a", {"a.b": ("x",), "a.c": ("x", "y")})
