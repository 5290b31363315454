"""Exports read for people: the report (:mod:`.report`, rendered by :mod:`.html` and
:mod:`.console`), the queries it shares with Athena (:mod:`.queries`), and the reader that opens
every complete export under a location (:mod:`.reader`). Only export files are read, never the
metadata database.
"""
