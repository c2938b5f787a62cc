"""The leader's sync decision (DIFF / TRUNC / SNAP), case for case as Java's LearnerHandlerTest."""
from __future__ import annotations

import asyncio
import dataclasses
import threading

import pytest

from zkref.jute import CreateTxn, TxnHeader
from zkref.persistence import FileTxnSnapLog, StorageOptions
from zkref.quorum.leader import sync_follower, sync_follower_async
from zkref.quorum.zab import COMMIT, DIFF, PROPOSAL, TRUNC, make_zxid as z, packet
from zkref.zkdatabase import ZKDatabase


@dataclasses.dataclass
class P:
    packet: object


class MockDB:
    """Java's LearnerHandlerTest.MockZKDatabase: min/max follow the committed log (0 when empty), the txn log
    is returned whole when the peer is not older than its first entry, and the size limit is 1."""
    def __init__(self, last, committed=(), txn_log=(), snapshot_size_factor=0.33):
        self.last = last
        self.committed = [P(packet(PROPOSAL, x)) for x in committed]
        self.txn_log = [P(packet(PROPOSAL, x)) for x in txn_log]
        self.factor = snapshot_size_factor

    def is_txn_log_sync_enabled(self): return self.factor >= 0
    def get_committed_log(self): return self.committed
    def get_data_tree_last_processed_zxid(self): return self.last
    def calculate_txn_log_size_limit(self): return 1
    @property
    def max_committed_log(self): return self.committed[-1].packet.zxid if self.committed else 0
    @property
    def min_committed_log(self): return self.committed[0].packet.zxid if self.committed else 0

    def get_proposals_from_txn_log(self, peer_zxid, limit):
        if self.txn_log and peer_zxid >= self.txn_log[0].packet.zxid:
            return iter(self.txn_log)
        return iter(())


def check(plan, op, op_zxid, forward, proposals=None, size=None):
    """Java's assertOpType + queuedPacketMatches + the queue size."""
    assert not plan.need_snap
    assert (plan.packets[0].type, plan.packets[0].zxid) == (op, op_zxid)
    assert plan.forward_zxid == forward
    if proposals is not None:
        assert [p.zxid for p in plan.packets if p.type == PROPOSAL] == proposals
        # each proposal is followed by its COMMIT
        for a, b in zip(plan.packets[1::2], plan.packets[2::2]):
            assert a.type == PROPOSAL and b.type == COMMIT and a.zxid == b.zxid
    if size is not None:
        assert len(plan.packets) == size


def test_empty_committed_log():
    """Empty committed log: a newer peer gets TRUNC to lastProcessedZxid; an equal peer an empty DIFF; a
    peer at 0 with txn-log sync disabled gets SNAP. Reference: Java LearnerHandlerTest.testEmptyCommittedLog"""
    check(sync_follower(3, MockDB(1)), TRUNC, 1, 1)
    check(sync_follower(1, MockDB(1)), DIFF, 1, 1, size=1)
    plan = sync_follower(0, MockDB(1, snapshot_size_factor=-1))
    assert plan.need_snap and plan.packets == [] and plan.forward_zxid == 1


def test_committed_log():
    """Within the committed log: an unknown zxid is TRUNCed to the previous proposal, a known one gets DIFF;
    before the log with txn-log sync off → SNAP. Reference: Java LearnerHandlerTest.testCommittedLog"""
    db = MockDB(6, committed=[2, 3, 5])
    check(sync_follower(4, db), TRUNC, 3, 5, [5], 3)
    check(sync_follower(2, db), DIFF, 5, 5, [3, 5], 5)
    db.factor = -1
    plan = sync_follower(1, db)
    assert plan.need_snap and plan.packets == []


def test_txn_log():
    """Older than the committed log: read the txn log, then the committed log (TRUNC or DIFF at the start).
    Reference: Java LearnerHandlerTest.testTxnLog"""
    db = MockDB(9, committed=[6, 7, 8], txn_log=[2, 3, 5, 6, 7, 8, 9])
    check(sync_follower(4, db), TRUNC, 3, 8, [5, 6, 7, 8], 9)
    check(sync_follower(3, db), DIFF, 8, 8, [5, 6, 7, 8], 9)


def test_txn_log_iterator_empty_means_snap():
    """An empty txn-log iterator (too big, or too old) falls back to SNAP.
    Reference: Java LearnerHandlerTest.testTxnLogProposalIteratorClosure"""
    db = MockDB(7, txn_log=[2, 3])
    db.get_proposals_from_txn_log = lambda zxid, limit: iter(())
    assert sync_follower(4, db).need_snap


def test_txn_log_only():
    """Empty committed log but a txn log: TRUNC / DIFF up to lastProcessedZxid; a peer older than the log →
    SNAP. Reference: Java LearnerHandlerTest.testTxnLogOnly"""
    db = MockDB(7, txn_log=[2, 3, 5, 6, 7, 8])
    check(sync_follower(4, db), TRUNC, 3, 7, [5, 6, 7], 7)
    check(sync_follower(2, db), DIFF, 7, 7, [3, 5, 6, 7], 9)
    plan = sync_follower(1, db)
    assert plan.need_snap and plan.packets == []


def test_txn_log_with_negative_zxid():
    """Epoch 0xf zxids compare as Java longs. Reference: Java LearnerHandlerTest.testTxnLogWithNegativeZxid"""
    db = MockDB(z(0xf, 9), committed=[z(0xf, c) for c in (6, 7, 8)], txn_log=[z(0xf, c) for c in (2, 3, 5, 6, 7, 8, 9)])
    check(sync_follower(z(0xf, 4), db), TRUNC, z(0xf, 3), z(0xf, 8), [z(0xf, c) for c in (5, 6, 7, 8)], 9)
    check(sync_follower(z(0xf, 3), db), DIFF, z(0xf, 8), z(0xf, 8), [z(0xf, c) for c in (5, 6, 7, 8)], 9)


def test_new_epoch_zxid():
    """A peer whose zxid starts an epoch (counter 0) gets DIFF, never TRUNC; one older than all history gets
    SNAP. Reference: Java LearnerHandlerTest.testNewEpochZxid"""
    db = MockDB(z(2, 0), committed=[z(1, 1), z(1, 2)], txn_log=[z(0, 1), z(1, 1), z(1, 2)])
    plan = sync_follower(z(0, 0), db)
    assert plan.need_snap and plan.packets == []
    check(sync_follower(z(1, 0), db), DIFF, z(1, 2), z(1, 2), [z(1, 1), z(1, 2)], 5)
    check(sync_follower(z(2, 0), db), DIFF, z(2, 0), z(2, 0), size=1)


def test_duplicated_txn():
    """Duplicate proposals in the log are sent once. Reference: Java LearnerHandlerTest.testDuplicatedTxn"""
    db = MockDB(z(2, 0), committed=[z(1, 1), z(1, 2), z(1, 1), z(1, 2)],
                txn_log=[z(0, 1), z(1, 1), z(1, 2), z(1, 1), z(1, 2)])
    check(sync_follower(z(1, 0), db), DIFF, z(1, 2), z(1, 2), [z(1, 1), z(1, 2)], 5)


def test_cross_epoch_trunc_becomes_snap():
    """TRUNC may not cross an epoch boundary: the leader sends SNAP instead.
    Reference: Java LearnerHandlerTest.testCrossEpochTrunc"""
    db = MockDB(z(6, 0), txn_log=[z(1, 1), z(2, 1), z(2, 2), z(4, 1)])
    plan = sync_follower(z(3, 1), db)
    assert plan.need_snap and plan.packets == []


def test_txn_log_gap_becomes_snap():
    """A gap between the end of the txn log and the committed log (slow disk) → SNAP.
    Reference: Java LearnerHandlerTest.testTxnLogGap"""
    db = MockDB(8, committed=[7, 8], txn_log=[2, 3, 4])
    assert sync_follower(3, db).need_snap


def test_force_snap():
    """forceSnapSync always sends SNAP. Reference: Java LearnerHandler.syncFollower (forceSnapSync)"""
    assert sync_follower(1, MockDB(1), force_snap=True).need_snap


def _real_db(tmp_path, zxids, commit_log_count=None):
    files = FileTxnSnapLog(tmp_path, tmp_path)
    db = ZKDatabase(files)
    db.take_snapshot()
    for i, x in enumerate(zxids):
        db.append(TxnHeader(client_id=1, cxid=i, zxid=x, time=0, type=1),
                  CreateTxn(path=f"/n{i}", data=b"", acl=[], ephemeral=False, parent_cversion=i + 1))
    db.commit()
    db.close()
    db = ZKDatabase(FileTxnSnapLog(tmp_path, tmp_path))
    db.load_data_base()
    return db


def test_real_zkdatabase_window(tmp_path):
    """With a real ZKDatabase restored from txn logs: equal → empty DIFF, inside the window → DIFF with the
    rest, ahead in the same epoch → TRUNC to maxCommittedLog, a fresh learner → SNAP (the txn log
    is bigger than snapshotSizeFactor × the snapshot). Reference: Java LearnerHandler.syncFollower, ZKDatabase.getProposalsFromTxnLog"""
    db = _real_db(tmp_path, [z(1, c) for c in range(1, 6)])
    assert (db.min_committed_log, db.max_committed_log) == (z(1, 1), z(1, 5))
    check(sync_follower(z(1, 5), db), DIFF, z(1, 5), z(1, 5), size=1)
    check(sync_follower(z(1, 2), db), DIFF, z(1, 5), z(1, 5), [z(1, 3), z(1, 4), z(1, 5)], 7)
    check(sync_follower(z(1, 9), db), TRUNC, z(1, 5), z(1, 5), size=1)
    plan = sync_follower(0, db)
    assert plan.need_snap and plan.forward_zxid == z(1, 5)


def _db_behind_window(tmp_path):
    """A real ZKDatabase: a big snapshot at 0x1000000c8 (200 nodes of 1 KiB), then 700 small creates in the
    txn log, so after a restart the committed log holds the last 501 and the log files are well under
    snapshotSizeFactor × the snapshot."""
    files = FileTxnSnapLog(tmp_path, tmp_path, StorageOptions(prealloc_size=4096))
    db = ZKDatabase(files)
    for i in range(1, 901):
        hdr = TxnHeader(client_id=1, cxid=i, zxid=z(1, i), time=0, type=1)
        txn = CreateTxn(path=f"/n{i}", data=b"x" * (1024 if i <= 200 else 0), acl=[], ephemeral=False, parent_cversion=i)
        if i <= 200:
            db.process_txn(hdr, txn)
            if i == 200:
                db.take_snapshot()
        else:
            db.append(hdr, txn)
    db.commit()
    db.close()
    db = ZKDatabase(FileTxnSnapLog(tmp_path, tmp_path, StorageOptions(prealloc_size=4096)))
    db.load_data_base()
    return db


def test_txn_log_read_off_the_event_loop(tmp_path):
    """A learner before the committed-log window is synced by DIFF from the txn log files; the leader reads
    those files in a worker thread (not on its event loop), and the plan is the one the synchronous decision
    makes: DIFF to the last zxid, every proposal after the learner's zxid with its COMMIT. Reference: Java
    LearnerHandler.syncFollower (case 5, txnlog + committedLog, read on the LearnerHandler thread)"""
    db = _db_behind_window(tmp_path)
    assert db.min_committed_log > z(1, 250)
    readers = []
    read = db.get_proposals_from_txn_log
    db.get_proposals_from_txn_log = lambda zxid, limit: readers.append(threading.current_thread()) or read(zxid, limit)

    async def decide():
        plan = await sync_follower_async(z(1, 250), db, sid=2)
        return plan, threading.current_thread()

    plan, loop_thread = asyncio.run(decide())
    check(plan, DIFF, z(1, 900), z(1, 900), [z(1, c) for c in range(251, 901)], 1 + 2 * 650)
    assert readers and all(t is not loop_thread for t in readers)
    assert sync_follower(z(1, 250), db, sid=2) == plan
    db.close()


def test_txn_log_not_read_inside_the_window(tmp_path):
    """A learner inside the window, equal to the leader, or ahead of it is decided from memory alone: the log
    files are not opened. Reference: Java LearnerHandler.syncFollower (cases 2-4 come before the txnlog case)"""
    db = _db_behind_window(tmp_path)
    db.get_proposals_from_txn_log = lambda zxid, limit: pytest.fail("the txn log was read")
    for peer, op, zxid in ((z(1, 900), DIFF, z(1, 900)), (z(1, 899), DIFF, z(1, 900)), (z(1, 905), TRUNC, z(1, 900))):
        check(asyncio.run(sync_follower_async(peer, db)), op, zxid, z(1, 900))
    db.close()
