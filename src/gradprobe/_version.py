"""The version of this gradprobe."""

__all__ = ["__version__"]

__version__ = "0.1.0"
