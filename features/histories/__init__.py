"""Client histories: the declared feature spec, its SQL compiler and engines, the feature schema and dictionary.

:func:`features.histories.build.build_features` builds one row per client as
of an index date; :mod:`~features.histories.pandas_reference` is the plain
pandas implementation of the same spec that the tests and the feature
benchmark check the SQL against.
"""
