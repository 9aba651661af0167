"""The data contract: canonical tables, schemas, codes, unit costs, reading, validation and loading.

Module by role: :mod:`~features.contract.tables` (table and service-line
names), :mod:`~features.contract.schemas` (pandera models),
:mod:`~features.contract.codes`, :mod:`~features.contract.costs`,
:mod:`~features.contract.io` (reading and atomic writing),
:mod:`~features.contract.validation` and :mod:`~features.contract.load`.
"""
