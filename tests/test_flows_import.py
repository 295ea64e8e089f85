"""Importing the flows changes no global state; calling a flow applies emofuse's Prefect defaults."""
from __future__ import annotations

import os
import subprocess
import sys

from emofuse.flows.prefect_env import DEFAULTS


def test_importing_the_flows_sets_no_environment_variable():
    env = {k: v for k, v in os.environ.items() if k not in DEFAULTS}
    code = ("import os, emofuse.flows, emofuse.flows.extract, emofuse.flows.score, emofuse.flows.cli; "
            f"print(sorted(k for k in {sorted(DEFAULTS)!r} if k in os.environ))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_flows_apply_the_defaults_when_called():
    from emofuse.flows.extract import extract, extract_on_dask
    from emofuse.flows.prefect_env import EmofuseFlow
    from emofuse.flows.score import score
    from emofuse.flows.train import train

    assert all(isinstance(f, EmofuseFlow) for f in (extract, extract_on_dask, score, train))
