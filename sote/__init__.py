"""Application layer of sote: the ``sote`` command and settings."""
__version__ = "0.1.0"
