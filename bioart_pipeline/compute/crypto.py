"""Encryption of everything that leaves the studio: AES-256-GCM, streamed in chunks.

The key is 32 random bytes, base64, in the environment variable BIOART_TRANSFER_KEY on both
the Dagster machine and the training cluster. It is never logged, never written to a file,
never passed as a job argument. `python -m bioart_pipeline.compute.crypto` prints a new key.

Format: MAGIC, a random 12-byte base nonce, then chunks of (4-byte length, ciphertext + tag).
Each chunk's nonce is the base nonce with its index folded in, and its associated data carries
the index and a last-chunk flag: reordered, dropped or truncated chunks fail to decrypt.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import struct
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_VARIABLE = "BIOART_TRANSFER_KEY"
MAGIC = b"BIOART-ENC1\n"
CHUNK = 4 * 1024 * 1024


class TransferKeyError(RuntimeError):
    """BIOART_TRANSFER_KEY is missing or malformed."""


class DecryptionError(RuntimeError):
    """The data was not encrypted with this key, or was altered or cut short."""


def new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def transfer_key() -> bytes:
    """The key from the environment; the message never includes its value."""
    value = os.environ.get(KEY_VARIABLE, "")
    if not value:
        raise TransferKeyError(
            f"{KEY_VARIABLE} is not set. Set it to the same key on this machine and on the "
            "training cluster; `python -m bioart_pipeline.compute.crypto` prints a new one.")
    try:
        key = base64.urlsafe_b64decode(value.encode())
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise TransferKeyError(f"{KEY_VARIABLE} must be 32 bytes in base64 (44 characters)")
    return key


def encrypt_stream(source: BinaryIO, target: BinaryIO, key: bytes) -> int:
    """Encrypt `source` into `target`; returns the bytes written."""
    cipher, base = AESGCM(key), secrets.token_bytes(12)
    written = target.write(MAGIC + base) or 0
    index, chunk = 0, source.read(CHUNK)
    while True:
        following = source.read(CHUNK)
        last = not following
        sealed = cipher.encrypt(_nonce(base, index), chunk, _aad(index, last))
        written += (target.write(struct.pack(">I", len(sealed)) + sealed) or 0)
        if last:
            return written
        index, chunk = index + 1, following


def decrypt_stream(source: BinaryIO, target: BinaryIO, key: bytes) -> int:
    """Decrypt `source` into `target`; returns the plaintext bytes written."""
    header = source.read(len(MAGIC) + 12)
    if len(header) != len(MAGIC) + 12 or not header.startswith(MAGIC):
        raise DecryptionError("not a bioart encrypted file")
    cipher, base = AESGCM(key), header[len(MAGIC):]
    written, index, sealed = 0, 0, _read_chunk(source)
    while sealed is not None:
        following = _read_chunk(source)
        try:
            plain = cipher.decrypt(_nonce(base, index), sealed, _aad(index, following is None))
        except InvalidTag as exc:
            raise DecryptionError(f"chunk {index} failed authentication: wrong "
                                  f"{KEY_VARIABLE}, or the data was altered or cut short") from exc
        written += target.write(plain) or 0
        index, sealed = index + 1, following
    if index == 0:
        raise DecryptionError("encrypted file holds no data: it was cut short")
    return written


def _read_chunk(source: BinaryIO) -> bytes | None:
    length = source.read(4)
    if not length:
        return None
    if len(length) != 4:
        raise DecryptionError("encrypted file ends inside a chunk header")
    size = struct.unpack(">I", length)[0]
    sealed = source.read(size)
    if len(sealed) != size:
        raise DecryptionError("encrypted file ends inside a chunk")
    return sealed


def _nonce(base: bytes, index: int) -> bytes:
    return base[:4] + struct.pack(">Q", struct.unpack(">Q", base[4:])[0] ^ index)


def _aad(index: int, last: bool) -> bytes:
    return MAGIC + struct.pack(">Q?", index, last)


if __name__ == "__main__":
    print(new_key())
