"""Work a score-archive run must not pay again: what the catalog already holds is not recomputed.

A feature set's description (``feature_set.json``) is written once per key and never
replaced, so an extract run (the one ``emofuse score-archive`` starts for a trained run's
feature sets, whose descriptions the catalog always holds) must not describe a known feature
set again: describing eGeMAPS builds openSMILE in the driver, whose first instance scans the
files of every installed package (measured: the largest CPU cost of the driver's first run).
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from emofuse.catalog import provenance
from emofuse.catalog.store import Catalog
from emofuse.flows.extract import _register_feature_sets
from emofuse.pipeline.registry import extractor_class


def test_a_described_feature_set_is_not_described_again(tmp_path: Path) -> None:
    calls: list[str] = []

    class CountingLogmel(extractor_class("logmel")):  # the real extractor, counting its describe() calls
        def describe(self):  # type: ignore[no-untyped-def]
            calls.append(self.key)
            return super().describe()

    cat = Catalog(str(tmp_path / "cat")).init()
    ex = CountingLogmel()
    summary = SimpleNamespace(provenance=provenance.collect())
    _register_feature_sets(cat, [ex], summary)  # type: ignore[arg-type]
    info = Path(cat.layout.feature_set_info(ex.key))
    first = info.read_bytes()
    assert calls == [ex.key] and cat.feature_set_info(ex.key).name == "logmel"

    _register_feature_sets(cat, [ex], summary)  # type: ignore[arg-type]
    assert calls == [ex.key], "a feature set the catalog describes was described again"
    assert info.read_bytes() == first

    other = CountingLogmel(ex.config_cls(n_mels=32))  # another key: described and written
    _register_feature_sets(cat, [ex, other], summary)  # type: ignore[arg-type]
    assert calls == [ex.key, other.key] and cat.feature_set_info(other.key).config["n_mels"] == 32


SETTINGS_PROBE = """
import os, prefect.context as c
from emofuse.flows.prefect_env import apply_defaults
before = c.get_settings_context()
apply_defaults()
after = c.get_settings_context()
print(before is after, os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"],
      after.settings.server.ephemeral.startup_timeout_seconds)
"""


def test_prefect_settings_are_read_again_only_when_a_temporary_server_may_start(tmp_path: Path) -> None:
    """With an API configured (a running server), the defaults reach the environment (the processes a run
    starts) without Prefect's settings being read again; without one, the temporary server gets them."""
    import os
    import subprocess
    import sys

    from emofuse.flows.prefect_env import DEFAULTS

    base = {k: v for k, v in os.environ.items()
            if k not in DEFAULTS and k not in ("PREFECT_API_URL", "PREFECT_PROFILE")}
    base["PREFECT_HOME"] = str(tmp_path / "home")

    def probe(**extra: str) -> list[str]:
        out = subprocess.run([sys.executable, "-c", SETTINGS_PROBE], env={**base, **extra}, capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    assert probe(PREFECT_API_URL="http://127.0.0.1:9/api")[:2] == ["True", "90"]
    assert probe() == ["False", "90", "90"]
