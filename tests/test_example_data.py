"""The committed sample dataset is exactly what its generator makes from the fixed seed."""

from __future__ import annotations

import csv
import gzip
import importlib.util
import io
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "examples" / "data"


def load_generator():
    spec = importlib.util.spec_from_file_location("usage_generate", DATA / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_dataset_is_reproducible():
    gen = load_generator()
    committed = gzip.decompress((DATA / "usage.csv.gz").read_bytes())
    # compare the CSV, not the gzip bytes: another zlib may compress differently
    assert gzip.decompress(gen.render()) == committed


def test_dataset_shape():
    text = gzip.decompress((DATA / "usage.csv.gz").read_bytes()).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == list(load_generator().HEADER)
    assert len({r["user_id"] for r in rows}) == 100
    assert len(rows) > 30_000
    assert {r["channel"] for r in rows} == {"interactive", "background"}
    assert all(float(r["cost_usd"]) > 0 and int(r["tokens_in"]) > 0 for r in rows[:1000])
    assert (DATA / "usage.csv.gz").stat().st_size < 2_000_000
