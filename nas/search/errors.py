"""The one error a search raises for the user: the CLI prints its message and exits 1."""


class SearchError(RuntimeError):
    """A search that cannot go on; the message says why and what to do."""
