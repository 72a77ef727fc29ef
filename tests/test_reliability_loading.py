"""Safe loading (issue 8): checkpoints load from safetensors or TF weights, never by unpickling;
no remote code; a feature cache cannot execute code when it is read."""

from __future__ import annotations

import ast
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import bert_repro
from bert_repro.cache import WordFeatureStore, cached_word_features
from bert_repro.errors import DataError, ModelError
from bert_repro.models import load_bert, model_config

PACKAGE = Path(bert_repro.__file__).parent


class _Boom:
    """Unpickling this creates ``marker``: proof that a file was unpickled."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _evil_pickle(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps({"weight": _Boom(marker)}))


def test_a_pickled_checkpoint_alone_is_refused_and_never_unpickled(tiny_bert_dir, tmp_path):
    folder = tmp_path / "pt-only"
    folder.mkdir()
    shutil.copy(tiny_bert_dir / "config.json", folder)
    marker = tmp_path / "executed"
    _evil_pickle(folder / "pytorch_model.bin", marker)
    for fn in (load_bert, model_config):
        with pytest.raises(ModelError, match="pytorch_model.bin is pickled and is never loaded"):
            fn(folder)
    assert not marker.exists()


def test_a_pickle_beside_tf_weights_is_ignored(tiny_bert_dir, tmp_path):
    folder = tmp_path / "both"
    shutil.copytree(tiny_bert_dir, folder)
    marker = tmp_path / "executed"
    _evil_pickle(folder / "pytorch_model.bin", marker)
    model, tok = load_bert(folder)
    assert model.config.num_hidden_layers == 2 and tok.is_fast
    assert not marker.exists()


def test_missing_model_folder_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        model_config(tmp_path / "nope")
    with pytest.raises(ModelError, match="no config.json"):
        model_config(tmp_path)


def _calls(name_parts: tuple[str, ...]):
    """(file, call node) for every call whose dotted name ends with ``name_parts``."""
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                parts = []
                f = node.func
                while isinstance(f, ast.Attribute):
                    parts.append(f.attr)
                    f = f.value
                if isinstance(f, ast.Name):
                    parts.append(f.id)
                if tuple(reversed(parts))[-len(name_parts) :] == name_parts:
                    yield path, node


def _keyword(node: ast.Call, name: str):
    for kw in node.keywords:
        if kw.arg == name:
            return ast.literal_eval(kw.value) if isinstance(kw.value, ast.Constant) else kw.value
    return None


def test_no_remote_code_no_pickle_anywhere_in_the_package():
    """Scans every module (finetune/ included) for the calls that could run foreign code."""
    for path, node in _calls(("from_pretrained",)):
        for kw in ("trust_remote_code", "from_pt"):
            assert _keyword(node, kw) in (None, False), f"{path}:{node.lineno} passes {kw}"
    for path, node in _calls(("load",)):
        text = ast.unparse(node.func)
        assert text not in ("pickle.load", "torch.load", "joblib.load"), f"{path}:{node.lineno}"
        if text in ("np.load", "numpy.load"):
            assert _keyword(node, "allow_pickle") is not True, f"{path}:{node.lineno}"
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not names & {"pickle", "dill", "cloudpickle", "joblib", "torch"}, path
        calls = {
            n.func.id
            for n in ast.walk(tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
        }
        assert not calls & {"eval", "exec"}, path


def test_load_bert_passes_the_safe_options():
    """The kwargs load_bert hands to from_pretrained (a dict) name neither remote code nor
    torch weights (the scan above sees only literal keywords)."""
    code = [
        line
        for line in (PACKAGE / "models.py").read_text(encoding="utf-8").splitlines()
        if not line.strip().startswith("#")
    ]
    assert not [line for line in code if "trust_remote_code" in line or "from_pt" in line]


def test_every_np_load_says_allow_pickle_false():
    found = 0
    for path, node in _calls(("np", "load")):
        found += 1
        assert _keyword(node, "allow_pickle") is False, f"{path}:{node.lineno}"
    assert found >= 4


@pytest.fixture()
def cache_entry(tiny_bert, tmp_path):
    model, tok = tiny_bert
    sentences = [["the", "dog"], ["a", "good", "day"]]
    store = cached_word_features(model, tok, sentences, tmp_path, progress=False)
    return model, tok, sentences, store.path


@pytest.mark.parametrize("victim", ["lengths.npy", "layer_001.npy"])
def test_a_cache_npy_holding_an_object_array_is_refused_and_rebuilt(cache_entry, tmp_path, victim):
    model, tok, sentences, entry = cache_entry
    marker = tmp_path / "executed"
    np.save(entry / victim, np.array([_Boom(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="damaged"):
        WordFeatureStore(entry)
    with pytest.warns(UserWarning, match=f"{entry} is damaged.*rebuilding it"):
        store = cached_word_features(model, tok, sentences, entry.parent, progress=False)
    assert store.lengths.tolist() == [2, 3]
    assert not marker.exists()


def test_a_damaged_cache_entry_is_a_data_error(cache_entry):
    model, tok, sentences, entry = cache_entry
    (entry / "meta.json").write_text("{not json")
    with pytest.raises(DataError, match="damaged"):
        WordFeatureStore(entry)


def test_a_partial_entry_with_an_object_done_file_is_refused(tiny_bert, tmp_path, monkeypatch):
    import bert_repro.features as features

    model, tok = tiny_bert
    sentences = [["the", "dog"], ["a", "good", "day"], ["no"]]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(features, "iter_word_batches", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cached_word_features(model, tok, sentences, tmp_path, progress=False)
    monkeypatch.undo()
    (partial,) = tmp_path.glob(".partial-*")
    marker = tmp_path / "executed"
    np.save(partial / "done.npy", np.array([_Boom(marker)], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="done.npy is damaged"):
        cached_word_features(model, tok, sentences, tmp_path, progress=False)
    assert not marker.exists()


# --------------------------------------------------------------------------- damaged weights


@pytest.fixture(scope="module")
def safetensors_dir(tmp_path_factory) -> Path:
    from conftest import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("tiny-safetensors"), safetensors=True)


def _cut_copy(folder: Path, name: str, dest: Path, keep: float) -> Path:
    """A copy of a model folder whose weights file stops after ``keep`` of its bytes, as an
    interrupted copy leaves it."""
    shutil.copytree(folder, dest)
    data = (dest / name).read_bytes()
    (dest / name).write_bytes(data[: int(len(data) * keep)])
    return dest


@pytest.mark.parametrize("keep", [0.5, 0.0])
@pytest.mark.parametrize(
    ("folder", "name"), [("safetensors_dir", "model.safetensors"), ("tiny_bert_dir", "tf_model.h5")]
)
def test_a_truncated_weights_file_is_named_with_the_fix(request, tmp_path, folder, name, keep):
    cut = _cut_copy(request.getfixturevalue(folder), name, tmp_path / "cut", keep)
    expected = (
        rf"^{re.escape(name)} in {re.escape(str(cut))} cannot be read \(\w+: .+\): the file is "
        r"truncated or corrupt, e\.g\. an interrupted copy; copy or download it again$"
    )
    for fn in (load_bert, model_config):
        with pytest.raises(ModelError, match=expected):
            fn(cut)


def test_the_whole_safetensors_file_still_loads(safetensors_dir):
    model, _ = load_bert(safetensors_dir)
    assert not (safetensors_dir / "tf_model.h5").exists()
    assert model.config.num_hidden_layers == 2


def test_compare_with_a_truncated_model_exits_2_with_one_line(
    tiny_bert_dir, safetensors_dir, tmp_path, capsys
):
    from bert_repro.cli import main

    cut = _cut_copy(safetensors_dir, "model.safetensors", tmp_path / "cut", 0.5)
    texts = tmp_path / "texts.txt"
    texts.write_text("the dog said no\n")
    argv = ["compare", "--base", str(tiny_bert_dir), "--finetuned", f"cut={cut}"]
    argv += ["--texts", f"txt:{texts}", "--out", str(tmp_path / "run"), "--no-png", "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"bert-repro compare: error: model.safetensors in {cut} cannot be")
    assert "truncated or corrupt" in err[0]
