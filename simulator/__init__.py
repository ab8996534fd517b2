"""Discrete-event simulator of the gate: scenarios, engine, statistics, plots and the `smartgate sim` CLI."""
