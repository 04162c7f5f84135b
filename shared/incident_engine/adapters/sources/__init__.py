"""One parser per alert source: pure functions from a payload to ``Alert``s or a ``Rejected``."""
