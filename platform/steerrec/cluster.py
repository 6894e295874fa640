"""How every entry point reaches Ray: the cluster named by RAY_ADDRESS, or a Ray of its own.

    from steerrec.cluster import init_ray
    init_ray()                      # in a job, before the first Ray call

A bare `ray.init()` (and the implicit one inside Ray Train, Tune and Data) follows
Ray's current-cluster file (<temp dir>/ray/ray_current_cluster, written by
`ray start`). When that head is gone (a killed `make demo`, a stopped cluster), the
driver waits for good in `Node._init_gcs_client` and ignores SIGTERM. So:

- RAY_ADDRESS set (`ray job submit` sets it to the GCS address; on a cluster you may):
  connect to it, after a socket probe of its GCS port with a short timeout, so that a
  dead address fails in seconds with an error naming it. `auto` is resolved the way
  Ray resolves it, then probed the same way.
- RAY_ADDRESS unset: start a local Ray for this process (`address="local"`), which
  never reads the current-cluster file; it stops when the process ends.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from steerrec.cli import unwind_on_sigterm
from steerrec.errors import UserError

logger = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 3.0
# ray.init arguments that size a Ray this process starts; a cluster has its own
LOCAL_ONLY = ("num_cpus", "num_gpus", "resources", "object_store_memory", "include_dashboard", "dashboard_port")


class ClusterError(UserError):
    """RAY_ADDRESS names a cluster that does not answer (or an address a driver cannot use)."""


def init_ray(**kwargs: Any) -> str:
    """Connect to RAY_ADDRESS or start a local Ray; returns the GCS address in use.

    `kwargs` go to `ray.init`; those that size a local Ray (num_cpus, include_dashboard,
    ...) apply only when this process starts it. A no-op when Ray is already initialized
    (a test's cluster, a second call).
    """
    import ray

    if ray.is_initialized():
        return ray.get_runtime_context().gcs_address
    address = os.environ.get("RAY_ADDRESS", "").strip()
    if not address:
        logger.info("RAY_ADDRESS is not set: starting a local Ray for this process")
        context = ray.init(address="local", **kwargs)
        unwind_on_sigterm()
        return context.address_info["gcs_address"]
    gcs = resolve_address(address)
    probe(gcs, f"RAY_ADDRESS={address}")
    cluster_kwargs = {k: v for k, v in kwargs.items() if k not in LOCAL_ONLY}
    logger.info("connecting to the Ray cluster at %s (RAY_ADDRESS=%s)", gcs, address)
    ray.init(address=gcs if not address.startswith("ray://") else address, **cluster_kwargs)
    unwind_on_sigterm()
    return gcs


def resolve_address(address: str) -> str:
    """host:port of the GCS (or Ray Client server) that `address` names; `auto` as Ray reads it."""
    if address.startswith(("http://", "https://")):
        raise ClusterError(
            f"RAY_ADDRESS={address}: a dashboard URL; a driver needs the GCS address host:port "
            "(e.g. 127.0.0.1:6379). `ray job submit` reads RAY_API_SERVER_ADDRESS for the URL"
        )
    if address == "auto":
        from ray._private.services import canonicalize_bootstrap_address

        try:
            found = canonicalize_bootstrap_address("auto")
        except ConnectionError as exc:
            raise ClusterError(f"RAY_ADDRESS=auto: no running Ray cluster found on this machine ({exc})") from exc
        if not found:
            raise ClusterError("RAY_ADDRESS=auto: no running Ray cluster found on this machine")
        return found
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ClusterError(f"RAY_ADDRESS={address}: expected host:port (the GCS address), 'auto' or ray://host:port")
    return f"{host}:{port}"


def probe(host_port: str, name: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Raise ClusterError naming `name` unless a TCP connection to host:port opens within `timeout`."""
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ClusterError(
            f"{name}: no Ray cluster answers at {host_port} ({exc.strerror or exc}); "
            "start it, point RAY_ADDRESS at a live head, or unset RAY_ADDRESS to run on a local Ray"
        ) from exc
