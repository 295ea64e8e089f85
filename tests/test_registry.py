"""The extractor registry: a worker builds one extractor without importing the others' stacks."""
from __future__ import annotations

import subprocess
import sys


def test_one_extractor_imports_only_its_own_module() -> None:
    probe = ("import sys; from emofuse.pipeline.registry import get_extractor; get_extractor('egemaps'); "
             "print(sorted(m for m in ('emofuse.pipeline.faces', 'emofuse.pipeline.text', 'emofuse.pipeline.logmel',"
             " 'transformers', 'dlib', 'torchaudio') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_available_lists_every_builtin() -> None:
    from emofuse.pipeline.registry import available

    assert {"egemaps", "faces", "text", "logmel"} <= set(available())
