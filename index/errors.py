"""Errors a user can fix; the message always says how."""


class CorpusbotError(Exception):
    """A problem with the user's input, corpus or database; ``str()`` is the message to show."""


class IndexMissing(CorpusbotError):
    """The database holds no index yet."""


class SchemaMismatch(CorpusbotError):
    """The database was written by a different corpusbot schema version."""
