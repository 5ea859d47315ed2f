"""Alert rules (pure, on event time), the rule engine, and the sinks alerts are written to.

``rules`` holds the rules and ``RuleEngine``; ``sinks`` the async sink loops.
This package imports only ``streamer.aggregate`` and ``streamer.model``.
"""
