"""Directories of files stored beside the data ("storages"): the index, dumping, restoring
(confined to the destination) and the check of rows that name files."""
