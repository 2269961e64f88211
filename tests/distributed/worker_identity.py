"""``[core] hostname_callable`` of the distributed tests: each process reports the host name it is given.

Every Airflow process of the test cluster runs on this one machine; ``MLPROD_TEST_HOSTNAME`` gives each
its own name (``worker-a``, ``worker-b``, ...), as separate machines would have. Task instances record
it, so the REST API tells which worker ran each try.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    """The host name of this process: ``MLPROD_TEST_HOSTNAME``, else the machine's."""
    return os.environ.get("MLPROD_TEST_HOSTNAME") or socket.getfqdn()
