"""Prefect flows, deployments and the ``emofuse`` command line.

Importing this package changes no global state: the Prefect settings emofuse relies on
(no analytics from a temporary server, a patient start-up timeout) are applied when a
flow is called or ``emofuse serve`` starts (see :mod:`emofuse.flows.prefect_env`).
"""
