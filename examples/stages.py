"""The seed's Cluster Memory stages, as a workflow's stage functions.

``create_cities_list`` and ``use_cities_list`` are the seed document's code with
only the import prefix changed; ``share_array`` and ``use_array`` hand a 100 MiB
NumPy array from one stage to the next. Each ``run_*.py`` beside this file runs
them on one executor, every stage in a different worker process.
"""

from __future__ import annotations

import os

from catalogstore.cluster_memory import get_cluster_memory

ARRAY_MIB = 100


def create_cities_list():
    # Get the current ClusterMemory
    cluster_memory = get_cluster_memory()
    # Add the cities_list to the memory
    cluster_memory.put("cities_list", ["St. Louis", "Moab", "Los Angeles"])
    return os.getpid()


def use_cities_list():
    # Get the current ClusterMemory
    cluster_memory = get_cluster_memory()
    # Add the cities_list to the memory
    cities_list = cluster_memory.get("cities_list")
    return cities_list, os.getpid()


def share_array():
    """Put a 100 MiB array; returns its checksum and this worker's pid."""
    import numpy as np

    array = np.arange(ARRAY_MIB * (1 << 20) // 8, dtype=np.float64)
    get_cluster_memory().put("big_array", array)
    return float(array.sum()), os.getpid()


def use_array():
    """Get the array put by the previous stage; returns its checksum and this worker's pid."""
    array = get_cluster_memory().get("big_array")
    return float(array.sum()), os.getpid()


STAGES = [create_cities_list, use_cities_list, share_array, use_array]
