"""Targets (declared cohorts and outcomes over a horizon) and the labels and training sets built from them."""
