"""Prefect flows, deployments and the ``emofuse`` command line.

Nothing leaves the machine: the temporary Prefect server that a flow run starts when no
server is configured inherits ``PREFECT_SERVER_ANALYTICS_ENABLED=false`` (unless set).
That server may wait up to 90 s to come up (Prefect's default, 20 s, fails a run on a
machine whose cores are busy with another job) unless
``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS`` says otherwise.
"""
import os as _os

_os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
_os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
