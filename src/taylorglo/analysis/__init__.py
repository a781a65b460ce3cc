"""Turning an experiment directory into evidence: the report, statistics, robustness sweeps."""
