"""The one exception type of ``bench.metrics``."""


class MetricsError(Exception):
    """A metric cannot be computed as asked; the message says why and what to do."""
