"""Packaged configuration of the models layer (read with features.config.loader)."""
