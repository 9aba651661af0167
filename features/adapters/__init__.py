"""Adapters from real data formats into the canonical tables (docs/adapters.md).

- :func:`ingest_synthea`: a Synthea CSV export;
- :func:`ingest_omop`: an OMOP CDM 5.4 data set (CSV or Parquet tables).

Each returns an :class:`IngestResult` (tables, rejected rows with reasons, the
mapping report) whose :meth:`~IngestResult.write` writes the folder atomically.
"""
from features.adapters.common import AdapterError, IngestResult
from features.adapters.omop import ingest_omop
from features.adapters.synthea import ingest_synthea

__all__ = ["AdapterError", "IngestResult", "ingest_omop", "ingest_synthea"]
