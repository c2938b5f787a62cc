"""jute_to_string prints a null vector as Java's ToStringOutputArchive does."""
from zkref.jute import SetACLTxn
from zkref.quorum.zab import QuorumPacket, packet_record_string
from zkref.storage_toolkits import jute_to_string


def test_null_vector_prints_empty_braces():
    """The generated serialize calls startVector/endVector even for a null list, so Record.toString() of a
    record with a null vector prints `v{}` (outputs below printed by the 3.8 jar: QuorumPacket(5,5,null,null)
    and SetACLTxn("/a",null,1)). Reference: org.apache.jute.ToStringOutputArchive.startVector"""
    assert jute_to_string(SetACLTxn(path="/a", acl=None, version=1)) == "'/a,v{},1\n"
    assert jute_to_string(QuorumPacket(type=5, zxid=5, data=None, authinfo=None)) == "5,5,,v{}\n"
    assert packet_record_string(QuorumPacket(type=5, zxid=5, data=None, authinfo=None)) == "5,5,,v{}\n"
