"""On-disk cache of word-level features: computed once per (model, tokenizer, corpus), reused.

Layout of one entry, ``<cache_dir>/<key>/``::

    meta.json            what made it (model and tokenizer fingerprints, corpus hash,
                         alignment, dtype, layers, shapes) and the package versions
    lengths.npy          (n_sentences,) int64 words per sentence
    layer_000.npy ...    (total_words, hidden) one file per hidden state (0 = embeddings),
                         sentence i at rows offsets[i]:offsets[i+1]

Writing streams batch by batch into the layer files with positioned writes, so memory stays
at one batch whatever the corpus size. The entry is built in ``.partial-<key>/`` under an
exclusive lock and renamed into place when complete: a reader never sees a half-written entry,
two processes filling the same entry do not collide (the second waits, then reads), and a run
killed half-way resumes from the last checkpointed batch. Files are plain ``.npy`` read with
``allow_pickle=False``: loading a cache cannot execute code.

Each finished file's SHA-256 is recorded in ``meta.json`` (``checksums``) and checked when
the entry is opened, once per process for each file (see :func:`verify_entry`): a layer file
overwritten with plausible numbers, truncated, or swapped with another layer's is found.
:func:`cached_word_features` then warns, moves the entry aside and rebuilds it; opening
:class:`WordFeatureStore` directly raises :class:`~bert_repro.errors.DataError`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import features
from .distribute import from_chief, is_chief, is_multi_worker, output_dir_for
from .errors import ConfigError, DataError
from .io import atomic_write_json, file_fingerprint, package_versions, read_json
from .models import model_fingerprint, tokenizer_fingerprint
from .pipeline import EncodedCorpus, encode_corpus
from .settings import ExtractionSettings

ALIGNMENT = "mean-of-wordpieces,no-specials,unk-for-empty/v1"
#: Part of every key: entries of an earlier format (v1 had no checksums) are never read.
CACHE_FORMAT = "sha256-checksums/v2"
CHECKPOINT_SECONDS = 20.0
#: A file changed less than this long before it was hashed is not remembered as verified:
#: file times tick coarsely (a few ms; seconds on some file systems), so a second write in the
#: same tick would keep size and ``mtime_ns`` and go unnoticed.
RACY_NS = 2_000_000_000
# (path, inode, size, mtime_ns, ctime_ns, expected checksum) of files verified in this process
_VERIFIED: set[tuple] = set()


def corpus_fingerprint(sentences: Sequence[Sequence[str]]) -> str:
    """SHA-256 of the words of every sentence (order and boundaries included)."""
    h = hashlib.sha256()
    for s in sentences:
        h.update(json.dumps(list(s), ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def feature_key(model, tokenizer, sentences, *, layers: Sequence[int], dtype: str) -> dict:
    """Everything that changes the cached numbers, and the key derived from it."""
    parts = {
        "model": model_fingerprint(model),
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "corpus": corpus_fingerprint(sentences),
        "n_sentences": len(sentences),
        "alignment": ALIGNMENT,
        "format": CACHE_FORMAT,
        "dtype": dtype,
        "layers": list(layers),
    }
    parts["key"] = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]
    return parts


class WordFeatureStore:
    """Read access to a finished cache entry (memory-mapped, nothing loaded eagerly).

    Args:
        path: the entry's folder.
        verify: check every file against the checksums in ``meta.json`` first (each file once
            per process, :func:`verify_entry`); only the writer that has just hashed them skips it.
        sentences: serve only the entry's first ``sentences`` sentences (its first rows: a
            corpus that begins another, :func:`cached_word_features` ``longer``); None: all.

    Raises:
        DataError: the entry is damaged (a checksum, header or size does not match, a file is
            missing or unreadable) or was made by an earlier version without checksums; the
            message names the folder and says to delete it (:func:`cached_word_features`
            rebuilds such an entry by itself).

    Attributes:
        path: the entry's folder.
        layers: the hidden-state indices stored (0 = embedding output).
        num_layers: how many hidden states are stored (``num_hidden_layers + 1`` by default).
        hidden_size: vector width.
        lengths: ``(n_sentences,)`` words per sentence.
        offsets: ``(n_sentences + 1,)`` row where each sentence starts.
        complete: False only for a multi-worker worker's own entry that lacks the rows the
            chief's cache already had (zeros there; :func:`cached_word_features`).
    """

    complete: bool = True

    def __init__(
        self, path: str | os.PathLike, *, verify: bool = True, sentences: int | None = None
    ):
        self.path = Path(path)
        try:
            self.meta = read_json(self.path / "meta.json")
        except (OSError, ValueError) as err:
            raise DataError(
                f"cache entry {self.path} is damaged ({type(err).__name__}: {err}); delete it"
            ) from None
        if verify:
            verify_entry(self.path, self.meta)
        try:
            self.key = self.meta["key"]
            self.layers = tuple(int(k) for k in self.meta["layers"])
            self.hidden_size = int(self.meta["hidden_size"])
            self.dtype = np.dtype(self.meta["dtype"])
            self.lengths = np.load(self.path / "lengths.npy", allow_pickle=False)
        except (OSError, ValueError, KeyError, TypeError) as err:  # incl. refused object arrays
            raise DataError(
                f"cache entry {self.path} is damaged ({type(err).__name__}: {err}); delete it"
            ) from None
        if self.dtype not in (np.float32, np.float16) or not (
            self.lengths.ndim == 1 and np.issubdtype(self.lengths.dtype, np.integer)
        ):
            raise DataError(f"cache entry {self.path} is damaged (meta.json, lengths.npy)")
        self.num_layers = len(self.layers)
        total = int(np.sum(self.lengths))
        for k in self.layers:
            f = self._file(k)
            if _npy_header(f) != (self.dtype, (total, self.hidden_size)):
                raise DataError(f"cache entry {self.path} is damaged ({f.name}); delete it")
            expected = total * self.hidden_size * self.dtype.itemsize
            if f.stat().st_size < expected:
                raise DataError(f"cache entry {self.path} is damaged ({f.name}); delete it")
        if sentences is not None:
            if not 0 < sentences <= len(self.lengths):
                raise ConfigError(
                    f"sentences must be in 1..{len(self.lengths)} (the entry's), got {sentences}"
                )
            self.lengths = self.lengths[:sentences]
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)]).astype(np.int64)
        self._rows = int(self.offsets[-1])  # rows of each layer file served

    def __len__(self) -> int:
        return int(self.lengths.shape[0])

    def _file(self, k: int) -> Path:
        return self.path / f"layer_{k:03d}.npy"

    def layer(self, k: int) -> np.ndarray:
        """``(total_words, hidden)`` memory-mapped vectors of hidden state ``k``."""
        if k < 0:
            k += int(self.meta["num_states"])
        if k not in self.layers:
            raise ConfigError(f"layer {k} is not in this cache (it holds {list(self.layers)})")
        return np.load(self._file(k), mmap_mode="r", allow_pickle=False)[: self._rows]

    def sentence(self, i: int, k: int) -> np.ndarray:
        """``(n_words_i, hidden)`` vectors of sentence ``i`` at hidden state ``k``."""
        return np.asarray(self.layer(k)[self.offsets[i] : self.offsets[i + 1]])

    def sentences(self, k: int) -> list[np.ndarray]:
        """Views into layer ``k``, one ``(n_words_i, hidden)`` array per sentence."""
        arr = self.layer(k)
        return [arr[self.offsets[i] : self.offsets[i + 1]] for i in range(len(self))]


def entry_files(meta: dict) -> list[str]:
    """Names of the data files of an entry: ``lengths.npy`` and one ``layer_KKK.npy`` a layer."""
    return ["lengths.npy", *(f"layer_{int(k):03d}.npy" for k in meta["layers"])]


def entry_checksums(path: str | os.PathLike, names: Sequence[str]) -> dict[str, str]:
    """``{name: "sha256:<hex>"}`` of the finished files ``names`` in ``path``, hashed one after
    the other in :data:`bert_repro.io.HASH_CHUNK` chunks (their writes were out of order)."""
    return {name: "sha256:" + file_fingerprint(Path(path) / name) for name in names}


def _memo_key(f: Path, expected: str) -> tuple | None:
    try:
        st = f.stat()
    except OSError:
        return None
    return (str(f.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, expected)


def verify_entry(path: str | os.PathLike, meta: dict) -> None:
    """Check each data file of the entry at ``path`` against the checksum in ``meta``.

    A file is hashed at most once per process while its path, inode, size, ``mtime_ns`` and
    ``ctime_ns`` stay the same (a probe sweep over 13 layers opens an entry many times); a
    file changed within :data:`RACY_NS` of its hashing is hashed again next time.

    Raises:
        DataError: naming the folder and the file: no checksums (an entry of an earlier
            version), a missing file, or a file whose bytes are not the ones recorded.
    """
    path = Path(path)
    recorded = meta.get("checksums") if isinstance(meta, dict) else None
    try:
        names = entry_files(meta)
    except (KeyError, TypeError, ValueError):
        names = None
    if not isinstance(recorded, dict) or names is None or set(names) - set(recorded):
        raise DataError(
            f"cache entry {path} has no checksums of its files (made by an earlier version of "
            "bert_repro, or meta.json is damaged); delete it"
        )
    for name in names:
        f = path / name
        expected = str(recorded[name])
        before = _memo_key(f, expected)
        if before is None:
            raise DataError(f"cache entry {path} is damaged ({name} is missing); delete it")
        if before in _VERIFIED:
            continue
        started = time.time_ns()
        try:
            actual = "sha256:" + file_fingerprint(f)
        except OSError as err:
            raise DataError(f"cache entry {path} is damaged ({name}: {err}); delete it") from None
        if actual != expected:
            raise DataError(
                f"cache entry {path} is damaged ({name} does not match the checksum recorded "
                "when the entry was made); delete it"
            )
        if _memo_key(f, expected) == before and started - max(before[3], before[4]) > RACY_NS:
            _VERIFIED.add(before)


def _npy_header(path: Path) -> tuple[np.dtype, tuple[int, ...]] | None:
    """``(dtype, shape)`` from a ``.npy`` file's header (no data read), or None if unreadable
    or Fortran-ordered."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read(f)
    except (OSError, ValueError):
        return None
    return None if fortran else (dtype, tuple(shape))


def _open_layer_file(path: Path, rows: int, hidden: int, dtype: np.dtype) -> tuple[int, int]:
    """Create (or reopen) a pre-sized ``.npy`` file; return ``(fd, data_offset)``."""
    header = {
        "descr": np.lib.format.dtype_to_descr(dtype),
        "fortran_order": False,
        "shape": (rows, hidden),
    }
    if not path.exists():
        with open(path, "wb") as f:
            np.lib.format.write_array_header_1_0(f, header)
            offset = f.tell()
            f.truncate(offset + rows * hidden * dtype.itemsize)
    with open(path, "rb") as f:
        np.lib.format.read_magic(f)
        np.lib.format.read_array_header_1_0(f)
        offset = f.tell()
    return os.open(path, os.O_RDWR), offset


def cached_word_features(
    model,
    tokenizer,
    sentences: Sequence[Sequence[str]] | EncodedCorpus,
    cache_dir: str | os.PathLike,
    *,
    settings: ExtractionSettings | None = None,
    longer: Sequence[Sequence[str]] | None = None,
    **options,
) -> WordFeatureStore:
    """Word features of ``sentences`` for every layer, from the cache or computed into it.

    Args:
        model, tokenizer: see :func:`bert_repro.models.load_bert`.
        sentences: lists of words (e.g. CoNLL-U forms), or an
            :class:`~bert_repro.pipeline.EncodedCorpus` of them (not tokenised again).
        cache_dir: folder holding cache entries (created if missing).
        settings: how to extract (:class:`~bert_repro.settings.ExtractionSettings`); its
            ``layers`` (default all ``num_hidden_layers + 1``) and ``cache_dtype``
            (``"float16"`` halves the disk; its effect: docs/performance.md) are part of the
            entry's key. ``options`` replace some of its fields (``dtype=`` is
            ``cache_dtype=``).
        longer: a corpus whose first sentences are ``sentences`` (e.g. the whole treebank of a
            ``--limit`` subset): when ``sentences`` has no entry of its own but a longer
            prefix of ``longer`` has one (same model, tokenizer, layers and dtype), its first
            rows are served (:func:`prefix_entry`) instead of extracting again. Each
            sentence's vectors are its own (padding is masked), so they equal a new
            extraction's to float rounding (other batches, other summation orders).

    Returns:
        A :class:`WordFeatureStore` over the finished entry, its files checked against their
        checksums. A damaged entry (or one of an earlier version) is named in a warning,
        deleted and rebuilt.

    Raises:
        ConfigError: ``sentences`` are not the first sentences of ``longer``.
    """
    if "dtype" in options:
        options["cache_dtype"] = options.pop("dtype")
    settings = ExtractionSettings.create(settings, **options)
    corpus = encode_corpus(tokenizer, sentences, words=True)
    if not len(corpus):
        raise DataError("no sentences to extract features for")
    num_states = int(model.config.num_hidden_layers) + 1
    settings = settings.replace(layers=features.resolve_layers(settings.layers, num_states))
    ident = feature_key(
        model, tokenizer, corpus.sources, layers=settings.layers, **settings.cache_parts()
    )
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    final = cache_dir / ident["key"]
    if is_multi_worker(settings.strategy):
        if not is_chief(settings.strategy):  # never the chief's folder (nor its lock)
            own = output_dir_for(cache_dir, settings.strategy, what="cache")
            own.mkdir(parents=True, exist_ok=True)
            final = own / ident["key"]
        return _multi_worker_fill(final, ident, model, tokenizer, corpus, settings)
    store = _open_if_sound(final, ident["key"], warn=False)
    if store is None and longer is not None:
        store = prefix_entry(cache_dir, ident, longer)
    if store is not None:
        return store

    lock_path = cache_dir / f".lock-{ident['key']}"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process filling this entry: wait for it
        try:
            store = _open_if_sound(final, ident["key"], warn=True)
            if store is not None:
                return store
            _fill(final, ident, model, tokenizer, corpus, settings)
        finally:  # the lock file stays: unlinking it would let a third process lock a new one
            fcntl.flock(lock, fcntl.LOCK_UN)
    return WordFeatureStore(final, verify=False)  # _fill has just hashed every file


#: What an entry that serves a shorter corpus's features must share with it (all but the corpus).
PREFIX_IDENTITY = ("model", "tokenizer", "alignment", "format", "dtype", "layers")


def prefix_entry(
    cache_dir: str | os.PathLike, ident: dict, longer: Sequence[Sequence[str]]
) -> WordFeatureStore | None:
    """A finished entry holding the ``n = ident["n_sentences"]`` sentences of ``ident`` as its
    first rows, viewed as their store (``WordFeatureStore(..., sentences=n)``), or None.

    The candidates are the entries in ``cache_dir`` whose ``meta.json`` agrees with ``ident``
    on :data:`PREFIX_IDENTITY` and holds ``m`` sentences, ``n < m <= len(longer)``; one is
    taken when its corpus fingerprint is that of ``longer[:m]`` (the shortest such ``m``: the
    least to map). A damaged candidate is passed over (its own reader rebuilds it).

    Args:
        cache_dir: the cache folder.
        ident: :func:`feature_key` of the ``n`` sentences.
        longer: sentences whose first ``n`` are those of ``ident``.

    Raises:
        ConfigError: the first ``n`` sentences of ``longer`` are not those of ``ident``.
    """
    n = int(ident["n_sentences"])
    if corpus_fingerprint(longer[:n]) != ident["corpus"]:
        raise ConfigError("the sentences are not the first sentences of the longer corpus")
    by_size: dict[int, list[tuple[Path, dict]]] = {}
    for entry in sorted(Path(cache_dir).iterdir()):
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        try:
            meta = read_json(entry / "meta.json")
        except (OSError, ValueError):
            continue
        m = meta.get("n_sentences") if isinstance(meta, dict) else None
        if not isinstance(m, int) or not n < m <= len(longer):
            continue
        if all(meta.get(k) == ident[k] for k in PREFIX_IDENTITY):
            by_size.setdefault(m, []).append((entry, meta))
    for m in sorted(by_size):
        fingerprint = corpus_fingerprint(longer[:m])
        for entry, meta in by_size[m]:
            if meta.get("corpus") != fingerprint:
                continue
            try:
                return WordFeatureStore(entry, sentences=n)
            except DataError:
                continue
    return None


def _multi_worker_fill(final: Path, ident, model, tokenizer, corpus, settings):
    """The cache under a multi-worker strategy: every worker extracts what the chief's cache
    lacks (the chief's ``done`` sentences, broadcast: their collectives must match), so a
    rerun after a worker was killed resumes from the chief's entry.

    A non-chief worker's cache is a temporary folder of its own (whatever ``cache_dir`` it was
    given: a shared one would have the workers wait on each other's lock): its entry holds
    the rows it helped compute, every row on a first run; when the chief's entry already had
    some, the others are zeros and the store says so (``complete`` False: the probes then
    train on the chief alone).
    """
    key = ident["key"]
    lock_path = final.with_name(f".lock-{key}")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            store = _open_if_sound(final, key, warn=True)
            partial = final.with_name(f".partial-{key}")
            n = len(corpus)
            done = np.ones(n, bool) if store is not None else _load_done(partial, n)
            done = from_chief(settings.strategy, done)
            if store is not None and done.all():  # whole here, and nothing left to compute
                return store
            if final.exists():  # another worker's stale entry in its own folder
                shutil.rmtree(final)
            _fill(final, ident, model, tokenizer, corpus, settings, done=done)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    store = WordFeatureStore(final, verify=False)
    store.complete = is_chief(settings.strategy) or not done.any()
    return store


def _open_if_sound(final: Path, key: str, *, warn: bool) -> WordFeatureStore | None:
    """The finished entry at ``final``, or None when there is none or it is damaged.

    With ``warn`` (the caller holds the entry's lock) a damaged entry is named in a warning
    and moved aside (then deleted), so that it can be rebuilt; without, it is left for the
    locked second look (another process may be replacing it right now).
    """
    if not final.exists():
        return None
    try:
        store = WordFeatureStore(final)
        if store.key != key:
            raise DataError(f"cache entry {final} is damaged (its meta.json has another key)")
        return store
    except DataError as err:
        if not warn:
            return None
        reason = str(err).removesuffix("; delete it")
        warnings.warn(f"{reason}; rebuilding it", stacklevel=3)
    aside = final.with_name(f".damaged-{key}-{os.getpid()}")
    os.replace(final, aside)  # readers that have it mapped keep their (damaged) view
    shutil.rmtree(aside, ignore_errors=True)
    return None


def _load_done(partial: Path, n: int) -> np.ndarray:
    """``(n,)`` bool: the sentences a killed earlier fill had checkpointed (none at first)."""
    done_file = partial / "done.npy"
    if not done_file.exists():
        return np.zeros(n, dtype=bool)
    try:
        done = np.load(done_file, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(
            f"{done_file} is damaged ({err}); delete the folder {partial} to start afresh"
        ) from None
    if done.shape != (n,) or done.dtype != bool:
        raise DataError(f"{done_file} is damaged; delete the folder {partial}")
    return done


def _checkpoint(partial: Path, files: list[tuple[int, int]], done: np.ndarray) -> None:
    """Flush the layer files, then record which sentences they hold (in that order)."""
    for fd, _ in files:
        os.fsync(fd)
    tmp = partial / "done.tmp.npy"
    np.save(tmp, done)
    os.replace(tmp, partial / "done.npy")


def _fill(
    final: Path,
    ident: dict,
    model,
    tokenizer,
    corpus: EncodedCorpus,
    settings,
    *,
    done: np.ndarray | None = None,
) -> None:
    """Extract the sentences not yet done (``done``, default: those the partial entry has)
    into ``.partial-<key>/``, checkpointing, then hash the files, write meta.json and rename
    the folder into place."""
    partial = final.with_name(f".partial-{ident['key']}")
    partial.mkdir(exist_ok=True)
    lengths = np.array([len(s) for s in corpus.sources], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    hidden = int(model.config.hidden_size)
    np_dtype = np.dtype(settings.cache_dtype)
    done = _load_done(partial, len(lengths)) if done is None else np.array(done, dtype=bool)
    todo = np.flatnonzero(~done)
    files = [
        _open_layer_file(partial / f"layer_{k:03d}.npy", int(offsets[-1]), hidden, np_dtype)
        for k in settings.layers
    ]
    row_bytes = hidden * np_dtype.itemsize
    try:
        last = time.monotonic()
        for index, n_words, out in features.iter_word_batches(
            model, tokenizer, corpus.subset(todo), settings=settings
        ):
            # K arrays (B, W, H), written from the compiled call's results as they are
            layers = [np.asarray(o).astype(np_dtype, copy=False) for o in out]
            for row, j in enumerate(index):
                i = int(todo[int(j)])
                at = int(offsets[i]) * row_bytes
                for (fd, data_offset), layer in zip(files, layers, strict=True):
                    os.pwrite(fd, _contiguous(layer[row, : n_words[row]]), data_offset + at)
                done[i] = True
            if time.monotonic() - last > CHECKPOINT_SECONDS:
                _checkpoint(partial, files, done)
                last = time.monotonic()
        _checkpoint(partial, files, done)
    finally:
        for fd, _ in files:
            os.close(fd)
    _finish(partial, final, ident, lengths, hidden, int(model.config.num_hidden_layers) + 1)


def _contiguous(rows: np.ndarray) -> memoryview:
    """The bytes of ``(n, H)`` ``rows`` (a view when they are contiguous already, as a row of a
    ``(B, W, H)`` array is)."""
    return memoryview(np.ascontiguousarray(rows)).cast("B")


def _finish(partial: Path, final: Path, ident: dict, lengths, hidden: int, num_states: int):
    """Write lengths, checksums and meta.json into the finished ``partial``; rename it into
    place (readers never see a half-written entry)."""
    np.save(partial / "lengths.npy", lengths)
    meta = dict(
        ident,
        hidden_size=hidden,
        num_states=num_states,
        total_words=int(np.sum(lengths)),
        versions=package_versions(),
    )
    meta["checksums"] = entry_checksums(partial, entry_files(meta))
    atomic_write_json(partial / "meta.json", meta)
    (partial / "done.npy").unlink()
    os.replace(partial, final)
