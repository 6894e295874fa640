"""A multi-node Ray cluster on one machine: a head and worker nodes, each node its own raylet.

    with LocalCluster({"node_a": 2, "node_b": 2}) as lc:    # worker node name -> CPUs
        lc.connect()                 # this process's driver joins it
        lc.kill("node_a")            # SIGKILL that node's raylet and its workers: a lost machine
        lc.add("node_c", 2)          # a replacement, as the autoscaler would bring one

Built on `ray.cluster_utils.Cluster` (Ray's own multi-node test harness). Like cluster.yaml's
head, this head has no CPUs: it runs the GCS, the dashboard (the state API reads it) and the
drivers' zero-CPU actors (Ray Train's controller, Serve's controller), so every task, actor
and Train worker lands on a worker node. Each worker node carries a custom resource named
after it ({"node_a": 1}) that pins work to it, and {"worker": 1}, the label cluster.yaml's
worker node types carry too. Every port the head opens is a free one, the GCS notices a lost node
in about five seconds, and Ray's current-cluster file (which a bare `ray.init()` follows) is
put back as it was, so other Ray sessions on the machine are left alone.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

WORKER_RESOURCE = "worker"
# the GCS marks a node dead after this many missed 1 s health checks (Ray's default: 5 x 3 s)
HEALTH_CHECK = {"health_check_period_ms": 1000, "health_check_failure_threshold": 5}


def free_port(avoid: range = range(10002, 20000)) -> int:
    """A free TCP port outside Ray's worker port range (MACHINE.md)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in avoid:
            return port


class LocalCluster:
    """A head with no CPUs plus named worker nodes, started on entry and stopped on exit."""

    def __init__(self, workers: dict[str, int], object_store_mb: int = 150, dashboard: bool = True) -> None:
        self.spec, self.object_store_mb, self.dashboard = dict(workers), object_store_mb, dashboard
        self.nodes: dict[str, Any] = {}  # the live worker nodes by name
        self.names: dict[str, str] = {}  # node id -> name, killed nodes included
        self.cluster: Any = None

    def __enter__(self) -> LocalCluster:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        from ray._common.utils import get_ray_address_file
        from ray.cluster_utils import Cluster

        address_file = Path(get_ray_address_file(None))
        before = address_file.read_text() if address_file.is_file() else None
        head = {
            "num_cpus": 0,
            "object_store_memory": self.object_store_mb << 20,
            "gcs_server_port": free_port(),
            "include_dashboard": self.dashboard,
            "dashboard_port": free_port(),
            "dashboard_agent_listen_port": free_port(),
            "_system_config": HEALTH_CHECK,
        }
        self.cluster = Cluster(initialize_head=True, head_node_args=head, shutdown_at_exit=True)
        if before is None:  # Cluster wrote its address there: other sessions' bare ray.init() must not follow it
            address_file.unlink(missing_ok=True)
        else:
            address_file.write_text(before)
        for name, cpus in self.spec.items():
            self.add(name, cpus)
        return self

    def __exit__(self, *exc: object) -> None:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        self.cluster.shutdown()

    @property
    def address(self) -> str:
        """The GCS address host:port (what a driver's ray.init and RAY_ADDRESS take)."""
        return self.cluster.address

    @property
    def dashboard_url(self) -> str:
        """http://host:port of the dashboard (`ray job submit`, ray.util.state)."""
        return f"http://{self.cluster.webui_url}"

    def connect(self, **kwargs: Any) -> None:
        """ray.init this process as a driver of the cluster (`kwargs` go to ray.init)."""
        import ray

        ray.init(address=self.address, **kwargs)

    def add(self, name: str, cpus: int) -> str:
        """Start worker node `name` with `cpus` CPUs; returns its node id."""
        if name in self.nodes:
            raise ValueError(f"node {name!r} is already running")
        node = self.cluster.add_node(
            num_cpus=cpus,
            resources={name: 1, WORKER_RESOURCE: 1},
            object_store_memory=self.object_store_mb << 20,
        )
        self.nodes[name], self.names[node.node_id] = node, name
        logger.info("worker node %s up (%d CPUs, id %s)", name, cpus, node.node_id[:8])
        return node.node_id

    def node_id(self, name: str) -> str:
        return self.nodes[name].node_id

    def name_of(self, node_id: str) -> str | None:
        """The worker node name of a node id, killed or not (None for the head)."""
        return self.names.get(node_id)

    def kill(self, name: str) -> None:
        """SIGKILL worker node `name`'s raylet, object store and workers, with no warning to them."""
        node = self.nodes.pop(name)
        self.cluster.remove_node(node, allow_graceful=False)
        logger.info("worker node %s killed", name)
