"""Dump: plan what to read, then read every table in one snapshot into one archive.

``plan.py`` the plan as frozen data (tables, options resolved, tasks); ``source.py`` the
connections in one snapshot; ``encode.py`` one task's rows into chunk files (reading one batch
ahead: :mod:`dbcrate.readahead`); ``run.py`` the runner (writer, tasks, storages, manifest);
``naming.py`` default archive names.
"""

from dbcrate.dump.run import DumpResult, default_name, dump, iter_dump, plan

__all__ = ["DumpResult", "default_name", "dump", "iter_dump", "plan"]
