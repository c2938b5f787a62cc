"""RC2 (RFC 2268), which chapter 09b41 writes itself to read PKCS#12 stores whose certificate bags are encrypted with
40-bit RC2 (the default of OpenSSL 1.x and JDK 8): `cryptography` has RC2 with 128-bit keys only."""
from __future__ import annotations

import os
import random
import shutil
import subprocess

import pytest

from zkref.quorum.x509_util import _rc2_cbc_decrypt

# RFC 2268 section 5: (effective key bits, key, plaintext, ciphertext)
RFC_2268_VECTORS = [
    (63, "0000000000000000", "0000000000000000", "ebb773f993278eff"),
    (64, "ffffffffffffffff", "ffffffffffffffff", "278b27e42e2f0d49"),
    (64, "3000000000000000", "1000000000000001", "30649edf9be7d2c2"),
    (64, "88", "0000000000000000", "61a8a244adacccf0"),
    (64, "88bca90e90875a", "0000000000000000", "6ccf4308974c267f"),
    (64, "88bca90e90875a7f0f79c384627bafb2", "0000000000000000", "1a807d272bbe5db1"),
    (128, "88bca90e90875a7f0f79c384627bafb2", "0000000000000000", "2269552ab0f85ca6"),
    (129, "88bca90e90875a7f0f79c384627bafb216f80a6f85920584c42fceb0be255daf1e", "0000000000000000",
     "5b78d3a43dfff1f1"),
]


@pytest.mark.parametrize("bits, key, plain, cipher", RFC_2268_VECTORS)
def test_rc2_decrypts_the_rfc_2268_test_vectors(bits, key, plain, cipher):
    """RFC 2268 section 5's eight test vectors (one block each; with a zero IV, CBC is the bare block cipher)."""
    assert _rc2_cbc_decrypt(bytes.fromhex(key), bits, bytes(8), bytes.fromhex(cipher)).hex() == plain


def test_rc2_128_agrees_with_cryptography():
    """With a 16-byte key and 128 effective bits, what PKCS#12's pbeWithSHAAnd128BitRC2-CBC uses, the decryption
    equals `cryptography`'s RC2 (OpenSSL's) in CBC mode, on random keys, IVs and lengths."""
    from cryptography.hazmat.decrepit.ciphers.algorithms import RC2
    from cryptography.hazmat.primitives.ciphers import Cipher, modes
    rng = random.Random(2268)
    for _ in range(30):
        key, iv, data = rng.randbytes(16), rng.randbytes(8), rng.randbytes(8 * rng.randint(1, 40))
        encryptor = Cipher(RC2(key), modes.CBC(iv)).encryptor()
        assert _rc2_cbc_decrypt(key, 128, iv, encryptor.update(data) + encryptor.finalize()) == data


def test_rc2_40_agrees_with_openssl():
    """With a 5-byte key and 40 effective bits (pbeWithSHAAnd40BitRC2-CBC), the decryption equals OpenSSL's
    `enc -rc2-40-cbc` (its legacy provider), on random keys, IVs and lengths."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    rng = random.Random(40)
    for _ in range(10):
        key, iv, data = rng.randbytes(5), rng.randbytes(8), rng.randbytes(8 * rng.randint(1, 40))
        run = subprocess.run(["openssl", "enc", "-rc2-40-cbc", "-provider", "legacy", "-provider", "default",
                              "-K", key.hex(), "-iv", iv.hex(), "-nopad"], input=data, capture_output=True)
        if run.returncode != 0:
            pytest.skip(f"openssl has no legacy provider: {run.stderr.decode()[:200]}")
        assert _rc2_cbc_decrypt(key, 40, iv, run.stdout) == data


def test_rc2_refuses_a_partial_block_or_a_bad_key():
    """Data that is not whole 8-byte blocks, and keys outside RFC 2268's limits (1-128 bytes, 1-1024 effective
    bits), are a ValueError, which the store reader reports as a damaged store."""
    for key, bits, iv, data in ((bytes(5), 40, bytes(8), bytes(7)), (bytes(5), 40, bytes(7), bytes(8)),
                                (b"", 40, bytes(8), bytes(8)), (bytes(129), 40, bytes(8), bytes(8)),
                                (bytes(5), 0, bytes(8), bytes(8)), (bytes(5), 1025, bytes(8), bytes(8))):
        with pytest.raises(ValueError):
            _rc2_cbc_decrypt(key, bits, iv, data)
    assert len(_rc2_cbc_decrypt(os.urandom(5), 40, bytes(8), b"")) == 0
