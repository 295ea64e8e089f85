"""Prefect flows, deployments and the ``emofuse`` command line.

Nothing leaves the machine: the temporary Prefect server that a flow run starts when no
server is configured inherits ``PREFECT_SERVER_ANALYTICS_ENABLED=false`` (unless set).
"""
import os as _os

_os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
