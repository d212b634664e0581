"""Where an archive lives when it is not a local path: object storage (``s3://bucket/key``).

:mod:`dbcrate.stores.objects` turns an object URL into a writable stream (a multipart upload
that becomes the object only when the archive is complete, and is aborted on failure) or a
readable one; the tar container reads and writes those streams as it does standard input and
output. The storage work itself is obstore's (``pip install 'dbcrate[s3]'``).
"""
