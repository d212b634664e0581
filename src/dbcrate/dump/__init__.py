"""Dump: plan what to read, then read every table in one snapshot into one archive."""

from dbcrate.dump.run import DumpResult, default_name, dump, iter_dump, plan

__all__ = ["DumpResult", "default_name", "dump", "iter_dump", "plan"]
