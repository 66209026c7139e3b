"""Experiment recipes (TOML files in this folder), reachable by name."""
