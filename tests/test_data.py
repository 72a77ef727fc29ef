"""Where data comes from: the one shared-data-folder resolver and the one tfds loader."""

from __future__ import annotations

import pytest

import bert_repro.data
from bert_repro.data import DATA_ENV, load_tfds, shared_data_dir, tfds_records
from bert_repro.errors import DataError


def make_data(folder, *contents):
    for name in contents or ("ud-english-ewt",):
        (folder / name).mkdir(parents=True)
    return folder


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """No $BERT_REPRO_DATA, a working folder without ../shared/data, and a repository
    without one beside it."""
    monkeypatch.delenv(DATA_ENV, raising=False)
    work = tmp_path / "home" / "project"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.setattr(bert_repro.data, "_REPOSITORY", tmp_path / "site" / "repo")
    return tmp_path


def test_an_explicit_folder_wins(tmp_path, monkeypatch):
    mine = make_data(tmp_path / "mine", "ag-news")
    monkeypatch.setenv(DATA_ENV, str(make_data(tmp_path / "env")))
    assert shared_data_dir(mine) == mine.resolve()
    assert shared_data_dir(str(mine)) == mine.resolve()


def test_an_explicit_folder_that_is_wrong_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(make_data(tmp_path / "env")))  # never used instead
    with pytest.raises(DataError, match=r"no shared data folder at .*missing: it does not exist"):
        shared_data_dir(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="holds none of ud-english-ewt/, ag-news/") as info:
        shared_data_dir(empty)
    assert "--data-dir" in str(info.value) and DATA_ENV in str(info.value)


def test_the_environment_variable(tmp_path, monkeypatch):
    env = make_data(tmp_path / "env", "wordnet")
    monkeypatch.setenv(DATA_ENV, str(env))
    assert shared_data_dir() == env.resolve()
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "typo"))
    with pytest.raises(DataError, match=f"typo \\(from {DATA_ENV}\\): it does not exist"):
        shared_data_dir()


def test_shared_data_beside_the_working_folder(nowhere):
    data = make_data(nowhere / "home" / "shared" / "data")
    assert shared_data_dir() == data.resolve()


def test_shared_data_beside_the_repository(nowhere):
    data = make_data(nowhere / "site" / "shared" / "data")  # nothing beside the working folder
    assert shared_data_dir() == data.resolve()


def test_no_shared_data_lists_where_it_looked(nowhere):
    (nowhere / "home" / "shared" / "data").mkdir(parents=True)  # there, but empty
    with pytest.raises(DataError) as info:
        shared_data_dir()
    message = str(info.value)
    assert f"{DATA_ENV} is not set" in message
    assert str(nowhere / "home" / "shared" / "data") + " (holds none of" in message
    assert str(nowhere / "site" / "shared" / "data") + " (does not exist)" in message
    assert "--data-dir" in message


def test_the_real_shared_data_is_found(shared_data):
    assert (shared_data / "ud-english-ewt").is_dir() and (shared_data / "ag-news").is_dir()


def test_a_missing_tfds_dataset_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="not available here") as info:
        load_tfds("no_such_dataset_here", "train", data_dir=tmp_path, hint="CLI: --x DIR")
    message = str(info.value)
    assert "'no_such_dataset_here' split 'train'" in message and "(CLI: --x DIR)" in message
    assert message.startswith(str(tmp_path))  # the data_dir it looked in
    assert isinstance(info.value.__cause__, Exception)


def test_tfds_records_with_mock_data(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=5, data_dir=str(tmp_path)):
        records = list(tfds_records("ag_news_subset", "test", limit=3))
    assert len(records) == 3 and isinstance(records[0]["title"], bytes)
