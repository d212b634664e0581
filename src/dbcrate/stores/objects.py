"""Archives in object storage: ``s3://bucket/key`` (Amazon S3 and S3-compatible servers) and
``az://container/blob`` (Azure Blob Storage) for the tar kind.

Writing: :func:`object_writer` is a multipart upload through obstore, in parts of
:data:`PART_BYTES` (so memory stays bounded whatever the archive's size). S3 makes the object
exist only when the upload is completed, which happens when the archive is complete (an
existing object of that name is replaced then, as a local archive file is); a failure or an
interrupt aborts the upload, so the key keeps what it held. (A process that is killed cannot
abort: its incomplete upload is no object, and the bucket's ``AbortIncompleteMultipartUpload``
lifecycle rule removes it.)

Reading: :func:`object_reader` is a stream of the object, which the tar reader spools to a
private temp file as it does standard input (ranged reads are not used yet).

Credentials and endpoint come from the standard environment variables that obstore reads:
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL`` and ``AWS_ALLOW_HTTP=true`` for a
plain-http endpoint; for Azure, ``AZURE_STORAGE_ACCOUNT_NAME`` with
``AZURE_STORAGE_ACCOUNT_KEY`` (or ``AZURE_STORAGE_SAS_KEY``, a service principal ...),
``AZURE_ENDPOINT`` and ``AZURE_ALLOW_HTTP``. An Azure upload is a block list committed when
the archive is complete (uncommitted blocks are no blob, and Azure discards them). None of
them is ever written to an archive, a message or a log.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterator
from typing import IO, Any

from dbcrate.errors import NotAnArchive, OutputError, UsageError

#: object URL schemes: those dbcrate reads and writes (``az://container/blob``: Azure Blob
#: Storage); the others are refused by name
SCHEMES = ("s3", "az")
_LATER = ("gs", "abfs", "gcs")
_URL = re.compile(r"^(?P<scheme>[a-z][a-z0-9]*)://(?P<bucket>[^/]*)(?:/(?P<key>.*))?$", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: the size of one uploaded part (S3's minimum is 5 MiB): what a dump holds in memory for it
PART_BYTES = 8 * 1024 * 1024


#: what to check when the store refuses (every store error says it)
STORE_HINT = ("check the bucket, the credentials (AWS_* or AZURE_STORAGE_* variables) and the "
              "endpoint (AWS_ENDPOINT_URL, AZURE_ENDPOINT)")


def is_object_url(target: object) -> bool:
    """Whether ``target`` names an object in a store (``s3://...``, also the schemes not
    supported yet, so that they are refused by name instead of taken for file names)."""
    if not isinstance(target, str):
        return False
    match = _URL.match(target)
    return bool(match) and match["scheme"] in (*SCHEMES, *_LATER)  # type: ignore[index]


def split_url(url: str) -> tuple[str, str]:
    """``(root, key)`` of ``s3://bucket/key`` or ``az://container/blob``: the root is the
    URL of the bucket (``s3://bucket``), which names its store.

    :raises UsageError: another scheme, no bucket, or no key (a prefix ending with ``/``).
    """
    match = _URL.match(url)
    if match is None or match["scheme"] not in (*SCHEMES, *_LATER):
        raise UsageError(f"{url} is not an object URL", hint="e.g. s3://bucket/backups/shop.crate")
    if match["scheme"] not in SCHEMES:
        raise UsageError(f"{match['scheme']}:// is not supported yet: {url}",
                         hint="s3:// (Amazon S3 and S3-compatible servers) and az:// (Azure "
                         "Blob Storage) are")
    bucket, key = match["bucket"], match["key"] or ""
    if not bucket or not key or key.endswith("/"):
        raise UsageError(f"{url} names no object",
                         hint="give the archive's whole key, e.g. s3://bucket/backups/shop.crate")
    if any(part in ("", ".", "..") for part in key.split("/")) or _CONTROL.search(url):
        raise UsageError(f"{url}: a key with an empty, '.' or '..' part or a control character "
                         "is not taken", hint="e.g. s3://bucket/backups/shop.crate")
    return f"{match['scheme']}://{bucket}", key


@functools.cache
def _store(root: str) -> Any:
    """The store of ``root`` (``s3://bucket``, ``az://container``), made once per process
    (its connections and credentials are reused by every request; obstore's stores may be
    shared between threads). Each reads its provider's standard variables: ``AWS_*`` for
    S3, ``AZURE_STORAGE_ACCOUNT_NAME``/``AZURE_STORAGE_ACCOUNT_KEY`` (or a SAS token,
    ``AZURE_ENDPOINT``, ...) for Azure."""
    try:
        from obstore.store import AzureStore, S3Store
    except ImportError:
        raise UsageError("archives in object storage need obstore",
                         hint="pip install 'dbcrate[s3]'") from None
    scheme, bucket = root.split("://", 1)
    return AzureStore(bucket) if scheme == "az" else S3Store(bucket)


def _from_store(exc: BaseException) -> bool:
    """Whether ``exc`` is the object store's (a refused request), not the caller's."""
    from obstore.exceptions import BaseError

    return isinstance(exc, BaseError)


def _missing_or_forbidden(exc: BaseException) -> bool:
    """Whether a HEAD failed because there is no such object (or bucket), or because the
    credentials may not read it (S3 answers 403 for a missing key without ListBucket)."""
    return isinstance(exc, FileNotFoundError | PermissionError) or type(exc).__name__ in (
        "NotFoundError", "PermissionDeniedError")


def _reason(exc: BaseException) -> str:
    """The first line of a store's error (its request, never the credentials)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@contextlib.contextmanager
def object_writer(url: str) -> Iterator[IO[bytes]]:
    """A stream that becomes the object ``url`` when the ``with`` block ends normally (an
    object of that name is replaced then, as a local archive file is); on an exception the
    upload is aborted and the key holds what it held before.

    :raises OutputError: the store refuses the upload (bucket, credentials, endpoint).
    """
    bucket, key = split_url(url)
    store = _store(bucket)
    import obstore

    try:  # one request before the dump starts: an endpoint or credentials that fail, fail now
        obstore.head(store, key)
    except Exception as exc:
        # no object there (or no right to see it: a write-only role) is what a dump expects
        if not _missing_or_forbidden(exc):
            raise OutputError(f"cannot write {url}: {_reason(exc)}",
                              hint=STORE_HINT) from None
    completing = False
    try:
        with obstore.open_writer(store, key, buffer_size=PART_BYTES) as upload:
            yield _ObjectSink(url, upload)  # type: ignore[misc]
            completing = True
    except Exception as exc:
        if not completing and not _from_store(exc):
            raise  # the dump's own error: the upload is aborted
        raise OutputError(f"cannot write {url}: {_reason(exc)}",
                          hint=STORE_HINT + "; the key holds what it held before") \
            from None


class _ObjectSink:
    """The upload as the tar writer writes a stream: sequential writes, named by the URL.
    ``flush`` does nothing: the parts go as the buffer fills, the last one when the upload is
    completed (a flush could send a part smaller than S3 allows before the last)."""

    def __init__(self, url: str, upload: Any) -> None:
        self.name = url
        self._upload = upload

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        return int(self._upload.write(data))

    def flush(self) -> None:
        pass


class _ObjectStream:
    """An object's bytes as a readable binary stream named by its URL (for messages)."""

    def __init__(self, url: str, reader: Any) -> None:
        self.name = url
        self._reader = reader

    def read(self, size: int = -1) -> bytes:
        try:
            return bytes(self._reader.read(size) if size >= 0 else self._reader.read())
        except OSError:
            raise
        except Exception as exc:  # the store's error mid-read: the reader's OSError path
            raise OSError(_reason(exc)) from None

    def close(self) -> None:
        self._reader.close()


def object_reader(url: str) -> _ObjectStream:
    """A stream of the object ``url``; close it after use.

    :raises NotAnArchive: there is no such object, or the store refuses to give it.
    """
    bucket, key = split_url(url)
    store = _store(bucket)
    import obstore
    from obstore.exceptions import NotFoundError

    try:
        return _ObjectStream(url, obstore.open_reader(store, key))
    except (NotFoundError, FileNotFoundError):  # (obstore raises the latter for a HEAD's 404)
        raise NotAnArchive(f"{url} does not exist") from None
    except Exception as exc:
        raise NotAnArchive(f"cannot read {url}: {_reason(exc)}",
                           hint=STORE_HINT) from None


def split_prefix(url: str) -> tuple[str, str]:
    """``(root, prefix)`` of ``s3://bucket/prefix/`` (``root``: ``s3://bucket``; the prefix
    may be empty: the whole bucket's top level; a trailing ``/`` is implied).

    :raises UsageError: not an s3 URL, or no bucket.
    """
    match = _URL.match(url)
    if match is None or match["scheme"] not in SCHEMES or not match["bucket"]:
        raise UsageError(f"{url} names no bucket", hint="e.g. s3://bucket/backups/")
    prefix = (match["key"] or "").strip("/")
    return f"{match['scheme']}://{match['bucket']}", prefix + "/" if prefix else ""


def list_objects(url: str) -> list[tuple[str, Any, int]]:
    """``(name, last_modified, size)`` of the objects directly under the prefix ``url`` (not
    in its sub-prefixes), named relative to it.

    :raises NotAnArchive: the store refuses the listing.
    """
    import obstore

    bucket, prefix = split_prefix(url)
    try:
        listing = obstore.list_with_delimiter(_store(bucket), prefix=prefix.rstrip("/") or None)
    except Exception as exc:
        raise NotAnArchive(f"cannot list {url}: {_reason(exc)}",
                           hint=STORE_HINT) from None
    return [(str(o["path"])[len(prefix):], o["last_modified"], int(o["size"]))
            for o in listing["objects"] if str(o["path"]).startswith(prefix)]


def list_tree(url: str) -> dict[str, int]:
    """Every object under the prefix ``url``, at any depth: ``{name relative to it: size}``.

    :raises NotAnArchive: the store refuses the listing.
    """
    import obstore

    bucket, prefix = split_prefix(url)
    try:
        found = obstore.list(_store(bucket), prefix=prefix.rstrip("/") or None).collect()
    except Exception as exc:
        raise NotAnArchive(f"cannot list {url}: {_reason(exc)}", hint=STORE_HINT) from None
    return {str(o["path"])[len(prefix):]: int(o["size"]) for o in found
            if str(o["path"]).startswith(prefix)}


def read_start(url: str, size: int) -> bytes:
    """The first ``size`` bytes of the object ``url`` (fewer if it is shorter), by a ranged
    request; ``b""`` when it cannot be read."""
    import obstore

    bucket, key = split_url(url)
    try:
        return bytes(obstore.get_range(_store(bucket), key, start=0, length=size))
    except Exception:
        return b""  # (an empty object has no range): no archive


def delete_object(url: str) -> None:
    """Remove the object ``url``.

    :raises OutputError: the store refuses.
    """
    import obstore

    bucket, key = split_url(url)
    try:
        obstore.delete(_store(bucket), key)
    except Exception as exc:
        raise OutputError(f"cannot remove {url}: {_reason(exc)}",
                          hint="the archives listed before it are removed; check the "
                          "credentials' permissions and run prune again") from None


def object_size(url: str) -> int:
    """The size of the object ``url`` in bytes.

    :raises NotAnArchive: no such object, or the store refuses.
    """
    import obstore

    bucket, key = split_url(url)
    store = _store(bucket)
    try:
        return int(obstore.head(store, key)["size"])
    except FileNotFoundError:
        raise NotAnArchive(f"{url} does not exist") from None
    except Exception as exc:
        if type(exc).__name__ == "NotFoundError":
            raise NotAnArchive(f"{url} does not exist") from None
        raise NotAnArchive(f"cannot read {url}: {_reason(exc)}",
                           hint=STORE_HINT) from None


def object_range(url: str, start: int, length: int) -> bytes:
    """``length`` bytes of the object ``url`` from ``start`` (fewer at its end), by one
    ranged request.

    :raises NotAnArchive: the store refuses.
    """
    import obstore

    if length == 0:
        return b""  # (a store refuses an empty range)
    bucket, key = split_url(url)
    try:
        return bytes(obstore.get_range(_store(bucket), key, start=start, length=length))
    except FileNotFoundError:
        raise NotAnArchive(f"{url} does not exist") from None
    except Exception as exc:
        if type(exc).__name__ == "NotFoundError":
            raise NotAnArchive(f"{url} does not exist") from None
        raise NotAnArchive(f"cannot read {url}: {_reason(exc)}", hint=STORE_HINT) from None


def unused_key(url: str) -> str:
    """``url``, or ``<stem>-2<suffix>``, ``-3``, ... under the same prefix: the first name no
    object has (an automatic name never replaces an archive; two dumps racing for one name in
    the same second are not excluded, as S3 has no create-only multipart completion here).

    :raises OutputError: the store refuses the lookups, or 100 names are taken.
    """
    import obstore

    bucket, key = split_url(url)
    store = _store(bucket)
    folder, _, last = key.rpartition("/")
    base, dot, ext = last.rpartition(".")
    stem, suffix = (base, dot + ext) if base else (last, "")
    stem = f"{folder}/{stem}" if folder else stem
    for n in range(1, 101):
        candidate = key if n == 1 else f"{stem}-{n}{suffix}"
        try:
            obstore.head(store, candidate)
        except Exception as exc:
            if _missing_or_forbidden(exc):  # (403 without ListBucket: taken as free)
                return f"{bucket}/{candidate}"
            raise OutputError(f"cannot write {bucket}/{key}: {_reason(exc)}",
                              hint=STORE_HINT) from None
    raise OutputError(f"{bucket}/{key} and 99 names after it are taken",
                      hint="give the archive's key")
