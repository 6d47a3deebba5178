"""One real multi-node Ray cluster on this machine, shared by the Ray tests
(starting one takes tens of seconds).

Head: no CPU (the driver's node: no trial runs there). ``trainer``: 1 CPU and
a ``trainer`` resource. ``phones``: 1 CPU and two fake phones, SER1 and SER2,
declared one resource per serial; its processes find the fake ``adb`` of
``mnas.testing.fake_adb`` first on their PATH.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Any

import pytest

OBJECT_STORE = 80 * 2**20  # bytes per node (Ray's minimum is 75 MiB)


@contextlib.contextmanager
def _environment(values: dict[str, str]):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclasses.dataclass
class RayCluster:
    cluster: Any
    trainer: Any  # ray._private.node.Node
    phones: Any
    farm: dict[str, Any]

    def node_id(self, node) -> str:
        return node.node_id

    def add_trainer(self) -> None:
        """A fresh ``trainer`` node (after a test removed it)."""
        self.trainer = self.cluster.add_node(
            num_cpus=1, resources={"trainer": 1}, object_store_memory=OBJECT_STORE
        )
        self.cluster.wait_for_nodes()


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    from mnas.testing.fake_adb import phone_farm

    farm = phone_farm(tmp_path_factory.mktemp("phones"), ["SER1", "SER2"], 0.2)
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "object_store_memory": OBJECT_STORE},
    )
    trainer = cluster.add_node(
        num_cpus=1, resources={"trainer": 1}, object_store_memory=OBJECT_STORE
    )
    path = farm["bin_dir"] + os.pathsep + os.environ.get("PATH", "")
    with _environment({**farm["env"], "PATH": path}):
        phones = cluster.add_node(
            num_cpus=1,
            resources={"phone:SER1": 1, "phone:SER2": 1},
            object_store_memory=OBJECT_STORE,
        )
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="WARNING")
    try:
        yield RayCluster(cluster, trainer, phones, farm)
    finally:
        ray.shutdown()
        cluster.shutdown()
