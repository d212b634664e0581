"""Encryption at rest: sealed archives (docs/FORMAT.md, "Sealed archives").

:mod:`~dbcrate.crypto.keys` wraps the archive key for age recipients and unwraps it with
identities or a passphrase (the pyrage binding of age); :mod:`~dbcrate.crypto.segments`
encrypts one member in authenticated segments (ChaCha20-Poly1305 of ``cryptography``, age's
STREAM construction); :mod:`~dbcrate.crypto.sealed` puts them together for the tar container:
hidden member names, the plaintext index that ``verify`` checks without a key, the reader.
"""
