"""Real latency for platform-aware search: export, backends, cache, pool and
the lookup-table predictor.

Public entry points, imported lazily so that ``import mnas.latency`` costs
nothing (the export pulls in TensorFlow, the host backend LiteRT).
"""

from mnas.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "BACKENDS": ".config",
        "DEFAULT_CACHE_PATH": ".config",
        "DEFAULT_LUT_PATH": ".config",
        "DEFAULT_MAX_MEASURE_S": ".config",
        "DEFAULT_PRECISION": ".config",
        "SEARCH_MEASUREMENT": ".config",
        "reference_model": ".config",
        "ExportedFile": ".export",
        "LatencyBackend": ".backend",
        "LatencyConfig": ".config",
        "LatencyError": ".errors",
        "LookupTableError": ".lut.table",
        "LutJob": ".lut.jobs",
        "MeasureJob": ".measure.job",
        "QUANTIZATIONS": ".export",
        "backend_from_config": ".config",
        "backends_from_config": ".config",
        "check_backends": ".config",
        "describe_calibration": ".lut.predictor",
        "export_name": ".export",
        "export_tflite": ".export",
        "export_quantizations": ".export",
        "export_to_file": ".export",
        "file_stem": ".export",
        "load_predictor": ".config",
        "make_backend": ".backend",
        "open_lookup_table": ".config",
        "parse_cpu_list": ".backends.affinity",
        "pool_from_config": ".config",
        "run_lut_job": ".lut.jobs",
        "run_measure_job": ".measure.job",
        "size_table": ".export",
        "tflite_file_name": ".export",
    },
)
