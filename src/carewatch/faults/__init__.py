"""The fault suite (`carewatch faults`, `ops/faults`): one deterministic feed processed cleanly and under
faults, each run on services of its own, and every figure and alert compared between the two."""
