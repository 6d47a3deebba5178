"""Files and terminal output: atomic writes, work directories, progress, tables."""

from mnas.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "CONFIG_FILE": ".work_dir",
        "Progress": ".progress",
        "claim_work_dir": ".work_dir",
        "config_differences": ".work_dir",
        "format_duration": ".progress",
        "format_table": ".tables",
        "write_bytes_atomic": ".atomic",
        "write_json_atomic": ".atomic",
    },
)
