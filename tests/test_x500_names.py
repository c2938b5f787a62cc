"""A TLS client's x509 id is its certificate's subject as Java's `X500Principal.getName()` writes it (RFC 2253):
ACLs such as `x509:CN=app,O=Acme\\, Inc.` must match on both servers character for character.

Differential: the same DER names go to zkref's `rfc2253_name` and to Java 17's `X500Principal` (a single-file
Java program, tests/java/X500Names.java); the strings must be equal. The names mix every DirectoryString type
(UTF8, Printable, T61, IA5, General, BMP), types without a string form (UniversalString, BIT STRING, OCTET STRING,
INTEGER), keyword and dotted attribute types, multi-valued RDNs, and the characters Java escapes (the specials,
NUL, blanks at either end).
Reference: Java X509AuthenticationProvider.handleAuthentication (getSubjectX500Principal().getName()),
sun.security.x509.AVA.toRFC2253String, RDN.toRFC2253String, X500Name.getRFC2253Name
"""
from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from zkref.server.auth import rfc2253_name, x500_name

JAVA_PROGRAM = Path(__file__).resolve().parent / "java" / "X500Names.java"


def tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + content


def oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    out = b""
    for arc in [arcs[0] * 40 + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        while arc > 0x7F:
            arc >>= 7
            chunk.append(0x80 | (arc & 0x7F))
        out += bytes(reversed(chunk))
    return tlv(6, out)


def name(*rdns: list[tuple[str, int, bytes]]) -> bytes:
    "A Name: each RDN a list of (attribute type, value tag, value content)."
    return tlv(0x30, b"".join(tlv(0x31, b"".join(tlv(0x30, oid(t) + tlv(tag, v)) for t, tag, v in rdn)) for rdn in rdns))


UTF8, PRINTABLE, T61, IA5, GENERAL, BMP, UNIVERSAL, BIT_STRING, OCTET_STRING, INTEGER = 12, 19, 20, 22, 27, 30, 28, 3, 4, 2
TYPES = ["2.5.4.3", "2.5.4.6", "2.5.4.7", "2.5.4.8", "2.5.4.10", "2.5.4.11", "2.5.4.9", "0.9.2342.19200300.100.1.25",
         "0.9.2342.19200300.100.1.1", "1.2.840.113549.1.9.1", "2.5.4.5", "2.5.4.45", "1.3.6.1.4.1.99999.7", "2.999.3"]
CHARS = list("abcXYZ019 '()+,-./:=?") + list(',=+<>#;"\\') + [" ", " ", "\r", "\0", "é", "ÿ", "中", "\t", "_", "😀"]


def encode(tag: int, text: str) -> bytes | None:
    "The value's content in its tag's encoding, or None if the text cannot be written in it."
    try:
        if tag in (PRINTABLE, T61, IA5, GENERAL):
            return text.encode("latin-1")
        if tag == BMP:
            return None if any(ord(c) > 0xFFFF for c in text) else text.encode("utf-16-be")
        if tag == UNIVERSAL:
            return text.encode("utf-32-be")
        if tag == BIT_STRING:
            return b"\x00" + text.encode()
        if tag == INTEGER:
            return (len(text) + 1).to_bytes(2, "big")
        return text.encode()                     # UTF8String, OCTET STRING
    except UnicodeEncodeError:
        return None


def random_names(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    while len(out) < count:
        rdns = []
        for _ in range(rng.randint(1, 4)):
            rdn = []
            for _ in range(rng.choice([1, 1, 1, 2, 3])):
                tag = rng.choice([UTF8, UTF8, PRINTABLE, T61, IA5, GENERAL, BMP, UNIVERSAL, BIT_STRING, OCTET_STRING, INTEGER])
                text = "".join(rng.choice(CHARS) for _ in range(rng.randint(0, 8)))
                content = encode(tag, text)
                if content is not None:
                    rdn.append((rng.choice(TYPES), tag, content))
            if rdn:
                rdns.append(rdn)
        if rdns:
            out.append(name(*rdns))
    return out


HAND_PICKED = [
    name([("2.5.4.6", PRINTABLE, b"US")], [("2.5.4.10", UTF8, "Acme, Inc.".encode())], [("2.5.4.3", UTF8, b"app #1")]),
    name([("2.5.4.3", UTF8, b"  two leading, two trailing  ")]),
    name([("2.5.4.3", UTF8, b"#first")], [("2.5.4.3", UTF8, b"\r\rcr\r")], [("2.5.4.3", UTF8, b"   ")]),
    name([("2.5.4.3", UTF8, b"nul\0inside"), ("2.5.4.11", IA5, b"multi+valued")]),
    name([("2.5.4.3", UNIVERSAL, "universal".encode("utf-32-be"))]),        # a keyword, but no string form
    name([("2.5.4.45", BIT_STRING, b"\x00\x01\x02")]),                      # x500UniqueIdentifier
    name([("1.2.840.113549.1.9.1", IA5, b"ops@example.com")]),              # emailAddress: no RFC 2253 keyword
    name([("2.5.4.3", BMP, "bmp ü 中".encode("utf-16-be"))], [("2.5.4.10", T61, "t61 é".encode("latin-1"))]),
    name([("2.5.4.3", UTF8, "emoji 😀 ok".encode())]),
    name([("2.999.1234567", UTF8, b"large arc")], [("0.9.2342.19200300.100.1.25", IA5, b"example")]),
    name(),                                                                  # the empty name
]


def java_names(names: list[bytes]) -> list[str]:
    out = subprocess.run(["java", str(JAVA_PROGRAM)], input="\n".join(n.hex() for n in names) + "\n",
                         capture_output=True, text=True, timeout=120, check=True).stdout.splitlines()
    return [line if line.startswith("!") else bytes.fromhex(line).decode() for line in out]


@pytest.mark.java
@pytest.mark.skipif(shutil.which("javac") is None, reason="needs a JDK (java runs the source file with its compiler)")
def test_names_are_written_as_javas_x500_principal_writes_them():
    names = HAND_PICKED + random_names(seed=20261129, count=400)
    java = java_names(names)
    assert len(java) == len(names)
    refused = [n.hex() for n, j in zip(names, java) if j.startswith("!")]
    assert refused == []                          # every generated name is one Java reads
    differ = [(n.hex(), j, rfc2253_name(n)) for n, j in zip(names, java) if rfc2253_name(n) != j]
    assert differ == []


def test_hand_picked_names_as_java_17_printed_them():
    """The same names without a JDK: Java 17.0.15's output, recorded. Java 17 decodes every DirectoryString as UTF-8,
    so a BMPString's zero bytes come out as `\\00` and a T61String's Latin-1 `é` as U+FFFD."""
    assert [rfc2253_name(n) for n in HAND_PICKED] == [
        "CN=app \\#1,O=Acme\\, Inc.,C=US",
        "CN=\\ \\ two leading\\, two trailing\\ \\ ",
        "CN=\\ \\ \\ ,CN=\\\r\\\rcr\\\r,CN=\\#first",
        "CN=nul\\00inside+OU=multi\\+valued",
        "CN=#1c24000000750000006e0000006900000076000000650000007200000073000000610000006c",
        "2.5.4.45=#0303000102",
        "1.2.840.113549.1.9.1=#160f6f7073406578616d706c652e636f6d",
        "O=t61 \ufffd,CN=\\00b\\00m\\00p\\00 \\00\ufffd\\00 N-",
        "CN=emoji \U0001f600 ok",
        "DC=example,2.999.1234567=#0c096c6172676520617263",
        "",
    ]


def test_a_certificates_subject():
    "x500_name reads the subject out of a whole DER certificate (what the TLS handshake gives)."
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding
    import datetime
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name.from_rfc4514_string("CN=client\\, one,O=acme")
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    assert x500_name(cert.public_bytes(Encoding.DER)) == "CN=client\\, one,O=acme"


def test_a_certificate_the_reader_cannot_parse_fails_authentication(caplog):
    """If the handshake ever hands over a certificate whose subject this reader cannot parse, the x509 provider
    answers AUTHFAILED and logs why, as Java's handleAuthentication does for a certificate it cannot check
    ("Failed to trust certificate for session 0x…"); it does not raise into the connection.
    Reference: Java X509AuthenticationProvider.handleAuthentication"""
    import logging
    from types import SimpleNamespace
    from zkref.proto import Code
    from zkref.server.auth import X509AuthenticationProvider
    provider = X509AuthenticationProvider({"zookeeper.ssl.trustStore.location": "/ca.pem",
                                           "zookeeper.ssl.keyStore.location": "/key.pem"}.get)
    ids = []
    cnxn = SimpleNamespace(client_certificate=b"\x30\x03\x02\x01\x01", session_id=0x1234, add_auth_info=ids.append)
    with caplog.at_level(logging.ERROR):
        assert provider.handle_authentication(cnxn, None) == Code.AUTHFAILED
    assert ids == []
    assert "Failed to trust certificate for session 0x1234" in caplog.text
