"""Client histories: the canonical data contract, readers, validation, the synthetic county and features."""
