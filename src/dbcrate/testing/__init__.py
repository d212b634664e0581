"""Test helpers that ship with dbcrate, for dbcrate's own tests and for third-party plugins.

:mod:`dbcrate.testing.formats` is the compliance suite of data formats.
"""
