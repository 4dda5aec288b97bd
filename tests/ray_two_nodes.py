"""Put on one node, get on the other: the ray backend on a two-node cluster on this machine.

``ray.cluster_utils.Cluster`` starts a head node (resource ``node_a``) and a
second node (resource ``node_b``), each with its own raylet and object store;
tasks are pinned to a node by those resources. A process holds one Ray
connection, so ``tests/test_memory_ray.py`` runs this script in a subprocess
(the test session's Ray is up in the pytest process). Exits 0 and prints one
line per check when everything holds; an assertion error otherwise.

    .venv/bin/python tests/ray_two_nodes.py
"""

from __future__ import annotations

from typing import Any

import numpy as np
import ray
from ray.cluster_utils import Cluster

NAMESPACE = "two-nodes"
ARRAY_ITEMS = 2_000_000  # 16 MB: well over the inline size, moved between object stores
NODE_MIB = 300


@ray.remote
def put_on_node(key: str, kind: str) -> str:
    """Put a value made here (not an argument: it must not exist on the other node first)."""
    from catalogstore.cluster_memory import get_cluster_memory

    value = np.ones(ARRAY_ITEMS) if kind == "array" else {"cities": ["Moab", "Los Angeles"]}
    get_cluster_memory(namespace=NAMESPACE).put(key, value)  # backend detected: ray
    return ray.get_runtime_context().get_node_id()


@ray.remote
def get_on_node(key: str) -> tuple[Any, str]:
    from catalogstore.cluster_memory import get_cluster_memory

    value = get_cluster_memory(namespace=NAMESPACE).get(key)
    if isinstance(value, np.ndarray):
        value = (float(value.sum()), bool(value.flags.writeable))
    return value, ray.get_runtime_context().get_node_id()


def across(kind: str, put_node: str, get_node: str) -> None:
    key = f"{kind}-{put_node}-to-{get_node}"
    put_id = ray.get(put_on_node.options(resources={put_node: 1}).remote(key, kind))
    value, get_id = ray.get(get_on_node.options(resources={get_node: 1}).remote(key))
    assert put_id != get_id, "the two tasks ran on the same node"
    expected = (float(ARRAY_ITEMS), False) if kind == "array" else \
        {"cities": ["Moab", "Los Angeles"]}
    assert value == expected, (key, value)
    print(f"ok: {kind} put on {put_node} ({put_id[:8]}), got on {get_node} ({get_id[:8]})",
          flush=True)


def main() -> None:
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "resources": {"node_a": 1}, "object_store_memory": NODE_MIB << 20,
        "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1, resources={"node_b": 1},
                         object_store_memory=NODE_MIB << 20)
        ray.init(address=cluster.address, log_to_driver=False)
        cluster.wait_for_nodes()
        assert len([node for node in ray.nodes() if node["Alive"]]) == 2
        head_id = next(node["NodeID"] for node in ray.nodes() if "node_a" in node["Resources"])
        across("array", "node_a", "node_b")  # head node (the memory actor's) to the other
        across("array", "node_b", "node_a")  # the other node to the head node
        across("dict", "node_b", "node_a")
        from catalogstore.cluster_memory import get_cluster_memory

        memory = get_cluster_memory(namespace=NAMESPACE)  # and the driver sees them all
        assert memory.keys() == ["array-node_a-to-node_b", "array-node_b-to-node_a",
                                 "dict-node_b-to-node_a"], memory.keys()
        print("ok: the driver sees", memory.sizes(), flush=True)
        from catalogstore.cluster_memory._ray import memory_actor

        assert ray.get(memory_actor().node_id.remote()) == head_id
        print(f"ok: the memory actor lives on the head node ({head_id[:8]})", flush=True)
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main()
