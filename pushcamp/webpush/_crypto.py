"""Message encryption for Web Push: RFC 8291 keys over RFC 8188 ``aes128gcm``.

Every primitive comes from ``cryptography``; this module only arranges them as the RFCs
say. A message is always a single record: the push service limit (4096 bytes on the
wire) is smaller than the record size we declare, so more records would only add bytes.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from pushcamp.webpush._errors import DecryptionFailed, PayloadTooLarge
from pushcamp.webpush._subscription import P256, Subscription

#: Bytes a push service must accept in one message body (RFC 8030 section 7.2).
MAX_MESSAGE_SIZE = 4096
_HEADER_SIZE = 16 + 4 + 1 + 65  # salt, record size, key id length, sender's public key
_TAG_SIZE = 16
#: The largest plaintext that fits: 4096 - 86 (header) - 16 (tag) - 1 (delimiter).
MAX_PAYLOAD_SIZE = MAX_MESSAGE_SIZE - _HEADER_SIZE - _TAG_SIZE - 1
#: The record size we declare; RFC 8291 examples and every browser use 4096.
RECORD_SIZE = 4096

_KEY_INFO = b"WebPush: info\x00"
_CEK_INFO = b"Content-Encoding: aes128gcm\x00"
_NONCE_INFO = b"Content-Encoding: nonce\x00"


def _hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def _public_bytes(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def _content_keys(
    shared: bytes, auth: bytes, ua_public: bytes, as_public: bytes, salt: bytes
) -> tuple[bytes, bytes]:
    """RFC 8291 section 3.4 then RFC 8188 section 2.2: (content key, nonce)."""
    ikm = _hkdf(auth, shared, _KEY_INFO + ua_public + as_public, 32)
    return _hkdf(salt, ikm, _CEK_INFO, 16), _hkdf(salt, ikm, _NONCE_INFO, 12)


def encrypt(payload: bytes, subscription: Subscription) -> bytes:
    """Encrypt ``payload`` for ``subscription``: the request body to POST, ``aes128gcm``.

    A fresh ephemeral key pair and salt are made for every call, as RFC 8291 requires;
    reusing them would let anyone who sees two messages link and weaken them.
    """
    return encrypt_with(
        payload,
        subscription,
        ephemeral_key=ec.generate_private_key(P256),
        salt=os.urandom(16),
    )


def encrypt_with(
    payload: bytes,
    subscription: Subscription,
    *,
    ephemeral_key: ec.EllipticCurvePrivateKey,
    salt: bytes,
) -> bytes:
    """:func:`encrypt` with the ephemeral key and salt given: a test seam, so a known
    answer (RFC 8291 Appendix A) can be reproduced. Never reuse either in production."""
    if len(payload) > MAX_PAYLOAD_SIZE:
        raise PayloadTooLarge(len(payload), MAX_PAYLOAD_SIZE)
    if len(salt) != 16:
        raise ValueError("salt must be 16 bytes")
    as_public = _public_bytes(ephemeral_key)
    shared = ephemeral_key.exchange(ec.ECDH(), subscription._public_key)
    key, nonce = _content_keys(
        shared, subscription._auth_secret, subscription._public_bytes, as_public, salt
    )
    # 0x02 marks the last (only) record; no padding beyond it.
    sealed = AESGCM(key).encrypt(nonce, payload + b"\x02", None)
    return salt + struct.pack("!IB", RECORD_SIZE, len(as_public)) + as_public + sealed


def decrypt(body: bytes, private_key: ec.EllipticCurvePrivateKey, auth: bytes) -> bytes:
    """Decrypt an ``aes128gcm`` Web Push message as the browser does (any record count).

    The receiving side, for the push-service simulator and for tests. Raises
    :class:`DecryptionFailed` for anything that is not a valid message for these keys.
    """
    if len(body) < 21:
        raise DecryptionFailed("message shorter than the aes128gcm header")
    salt = body[:16]
    record_size, id_len = struct.unpack("!IB", body[16:21])
    as_public = body[21 : 21 + id_len]
    records = body[21 + id_len :]
    if record_size < 18 or id_len != 65 or not records:
        raise DecryptionFailed("malformed aes128gcm header")
    try:
        sender = ec.EllipticCurvePublicKey.from_encoded_point(P256, as_public)
    except ValueError as exc:
        raise DecryptionFailed("key id is not a P-256 point") from exc
    shared = private_key.exchange(ec.ECDH(), sender)
    key, nonce = _content_keys(shared, auth, _public_bytes(private_key), as_public, salt)
    aead = AESGCM(key)
    plain = bytearray()
    chunks = [records[i : i + record_size] for i in range(0, len(records), record_size)]
    for seq, chunk in enumerate(chunks):
        iv = (int.from_bytes(nonce, "big") ^ seq).to_bytes(12, "big")
        try:
            record = aead.decrypt(iv, chunk, None)
        except InvalidTag as exc:
            raise DecryptionFailed("authentication tag does not match") from exc
        content = record.rstrip(b"\x00")
        last = seq == len(chunks) - 1
        if not content or content[-1] != (2 if last else 1):
            raise DecryptionFailed("bad record delimiter")
        plain += content[:-1]
    return bytes(plain)
