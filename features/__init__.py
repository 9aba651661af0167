"""Client histories and everything they are built from, one sub-package per role, in data-flow order.

``contract`` (the canonical tables and their rules) → ``synth`` (the synthetic
county) and ``adapters`` (Synthea, OMOP) produce it → ``histories`` (as-of
features) → ``targets`` (labels). ``config`` holds the packaged YAML.
"""
