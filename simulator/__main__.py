"""`python -m simulator`: the simulator CLI on its own, before it is mounted as `smartgate sim`."""

from simulator.cli import app

app(prog_name="python -m simulator")
