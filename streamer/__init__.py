"""streamer: crypto derivatives tracker (version only)."""

__version__ = "0.1.0"
