"""Rolling windows keyed by event time and the live per-kind state built on them.

``window`` holds the data structures (``SumWindow``, ``RollingMean``,
``SampleHistory``); ``state`` the bus handlers (``LiveState`` and its parts).
This package imports only ``streamer.model``.
"""
