"""Host facts used in fingerprints."""

from __future__ import annotations

from mnas.latency.backends.sysinfo import (
    file_digest,
    host_cpu_model,
    litert_version,
    package_version,
    parse_cpu_model,
)


def test_parse_cpu_model_x86_and_arm():
    x86 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n"
    assert parse_cpu_model(x86) == "AMD EPYC 7B13"
    arm = "processor\t: 0\nCPU part\t: 0xd05\n\nHardware\t: Qualcomm MSM8996pro\n"
    assert parse_cpu_model(arm) == "Qualcomm MSM8996pro"
    assert parse_cpu_model("processor : 0\n") == ""


def test_host_values_are_present():
    assert host_cpu_model()
    assert package_version("ai-edge-litert") != "unknown"
    assert litert_version().startswith("ai-edge-litert ")
    assert package_version("no-such-package-mnas") == "unknown"


def test_file_digest(tmp_path):
    path = tmp_path / "bin"
    path.write_bytes(b"abc")
    assert file_digest(path) == "ba7816bf8f01cfea"
