"""Installs the whole workspace under one import root, ``mnas``.

The top-level folders are mapped into sub-packages so that nothing is
installed under a generic name such as ``flags``; every folder below them
that holds an ``__init__.py`` becomes a sub-package of its root.
"""

import os

from setuptools import setup

_ROOTS = {
    "mnas": "mnas",
    "mnas.search_space": "search_space",
    "mnas.controller": "controller",
    "mnas.latency": "latency",
    "mnas.flags": "flags",
}


def _packages() -> list[str]:
    found = []
    for package, folder in _ROOTS.items():
        for path, _, files in os.walk(folder):
            if "__init__.py" not in files:
                continue
            relative = os.path.relpath(path, folder)
            parts = [] if relative == "." else relative.split(os.sep)
            name = ".".join([package, *parts])
            # mnas/ holds the other roots' names only as mapped packages.
            if name not in found:
                found.append(name)
    return found


setup(
    name="mnas",
    version="0.2.0",
    description=(
        "TensorFlow/Keras reimplementation of MnasNet platform-aware "
        "neural architecture search."
    ),
    python_requires=">=3.11",
    packages=_packages(),
    package_dir=_ROOTS,
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "tensorflow-datasets>=4.9",
        "tensorflow-probability>=0.25",
        "tf-keras>=2.21,<2.22",
        "absl-py>=2.1",
        "numpy>=1.26",
        "ai-edge-litert>=2.3",
        "scikit-learn>=1.5",
        "matplotlib>=3.8",
        "tensorboard>=2.20",
        # tensorflow-datasets builds datasets through etils.epath, which needs
        # it; current etils releases no longer pull it in.
        "importlib_resources>=6",
    ],
    extras_require={
        "test": ["pytest>=8", "hypothesis>=6.100", "ruff>=0.6", "import-linter>=2.1"],
        # mnas-search --executor=ray: trials and latency devices on a cluster.
        "ray": ["ray>=2.60,<3"],
    },
    entry_points={
        "console_scripts": [
            "mnas-describe=mnas.bin.describe:run",
            "mnas-latency=mnas.bin.latency:run",
            "mnas-export=mnas.bin.export:run",
            "mnas-search=mnas.bin.search:run",
            "mnas-scale=mnas.bin.scale:run",
            "mnas-eval=mnas.bin.eval:run",
            "mnas-train=mnas.bin.train:run",
            "mnas-dnas=mnas.bin.dnas:run",
        ],
    },
)
