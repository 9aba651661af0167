"""The synthetic county: a seeded, realistic county with known ground truth.

>>> from features.synth import SynthConfig, generate_county
>>> manifest = generate_county("data/county", SynthConfig(clients=5_000, seed=1))  # doctest: +SKIP
"""
from features.synth.generate import SynthConfig, generate_county

__all__ = ["SynthConfig", "generate_county"]
