"""Fingerprints of input files and folders: what decides whether earlier work is reused."""

from __future__ import annotations

import hashlib
import os

import pytest

import bert_repro.io as bio
from bert_repro.io import file_fingerprint, folder_fingerprint


def test_file_fingerprint_is_the_sha256_of_the_bytes_read_in_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(bio, "HASH_CHUNK", 7)  # many chunks, a partial last one
    data = bytes(range(256)) * 3
    f = tmp_path / "a.conllu"
    f.write_bytes(data)
    assert file_fingerprint(f) == hashlib.sha256(data).hexdigest()
    copy = tmp_path / "b.conllu"
    copy.write_bytes(data)
    assert file_fingerprint(copy) == file_fingerprint(f)  # content, not the path
    st = f.stat()
    f.write_bytes(data[:-1] + b"x")  # same size, same time: still another fingerprint
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert file_fingerprint(f) != file_fingerprint(copy)
    (tmp_path / "empty").write_bytes(b"")
    assert file_fingerprint(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()
    with pytest.raises(FileNotFoundError):
        file_fingerprint(tmp_path / "missing")


def test_folder_fingerprint_follows_names_sizes_and_times(tmp_path):
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (model / "sub" / "tf_model.h5").write_bytes(b"\0" * 100)
    os.utime(model / "sub" / "tf_model.h5", ns=(1, 1_000_000_000))
    first = folder_fingerprint(model)
    assert folder_fingerprint(model) == first
    (model / ".hidden.swp").write_text("editor file")  # dot-files are left out
    assert folder_fingerprint(model) == first
    os.utime(model / "sub" / "tf_model.h5", ns=(1, 2_000_000_000))  # re-saved weights
    assert folder_fingerprint(model) != first
    os.utime(model / "sub" / "tf_model.h5", ns=(1, 1_000_000_000))
    assert folder_fingerprint(model) == first
    (model / "vocab.txt").write_text("[PAD]\n")  # a file more
    assert folder_fingerprint(model) != first
    with pytest.raises(FileNotFoundError):
        folder_fingerprint(tmp_path / "missing")
    with pytest.raises(NotADirectoryError):
        folder_fingerprint(model / "config.json")


def test_figures_of_a_folder_share_one_offline_copy_of_plotly_js(tmp_path):
    import plotly
    import plotly.graph_objects as go

    from bert_repro.io import save_figure

    for name in ("a", "b"):
        save_figure(go.Figure(go.Scatter(x=[0, 1], y=[1, 0])), tmp_path / name, png=False)
    scripts = sorted(p.name for p in tmp_path.glob("*.js"))
    assert scripts == [f"plotly-{plotly.__version__}.min.js"]
    assert "plotly.js v" in (tmp_path / scripts[0]).read_text()[:1000]
    for name in ("a", "b"):
        html = (tmp_path / f"{name}.html").read_text()
        assert f'src="{scripts[0]}"' in html  # loaded from beside the figure: works offline
        assert len(html) < 50_000  # not the 4.8 MB library again
