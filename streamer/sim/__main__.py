"""``python -m streamer.sim``: the simulator alone (same as ``streamer sim``)."""

from streamer.sim.server import main

if __name__ == "__main__":
    raise SystemExit(main())
