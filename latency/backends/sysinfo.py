"""Facts about the host that belong in a latency fingerprint."""

from __future__ import annotations

import functools
import hashlib
import platform
from importlib import metadata
from pathlib import Path

_CPUINFO = Path("/proc/cpuinfo")
# x86 names the model; ARM kernels use "Hardware" or only "CPU part".
_CPU_KEYS = ("model name", "Hardware", "Processor", "cpu model", "CPU part")


@functools.cache
def host_cpu_model() -> str:
    """CPU model string, e.g. 'AMD EPYC 7B13'; falls back to the arch."""
    try:
        text = _CPUINFO.read_text(errors="replace")
    except OSError:
        text = ""
    return parse_cpu_model(text) or platform.processor() or platform.machine()


def parse_cpu_model(cpuinfo_text: str) -> str:
    """Returns the first known CPU-model field of /proc/cpuinfo text, or ''."""
    found: dict[str, str] = {}
    for line in cpuinfo_text.splitlines():
        name, sep, value = line.partition(":")
        name = name.strip()
        if sep and name in _CPU_KEYS and name not in found and value.strip():
            found[name] = value.strip()
    for key in _CPU_KEYS:
        if key in found:
            return found[key]
    return ""


def host_machine() -> str:
    """Machine architecture, e.g. 'x86_64'."""
    return platform.machine() or "unknown"


@functools.cache
def package_version(name: str) -> str:
    """Installed version of a distribution, or 'unknown'."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def litert_version() -> str:
    """Version of the ai-edge-litert runtime timing host models."""
    return f"ai-edge-litert {package_version('ai-edge-litert')}"


def file_digest(path: str | Path, length: int = 16) -> str:
    """Short SHA-256 of a file: versions binaries that print no version."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:length]
