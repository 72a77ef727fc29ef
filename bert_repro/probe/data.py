"""Probe data: a treebank's gold trees paired with word-aligned BERT features from the cache.

:class:`ProbeDataset` reads a CoNLL-U file (syntactic words only, see
:mod:`bert_repro.treebank`) and serves padded batches of

* ``features``: ``(B, W, H)`` float32 word vectors of one hidden state (the mean of each
  word's wordpieces, ``[CLS]``/``[SEP]`` excluded), zero on padding;
* ``labels``: ``(B, W, W)`` gold tree distances or ``(B, W)`` gold depths, ``-1`` on padding;
* ``lengths``: ``(B,)`` int32 words per sentence;

where ``W`` is the longest sentence of the batch. Features and labels are indexed the same way
(sentence ``i`` of the file is row ``i`` of the feature cache); no sentence and no partial last
batch is ever dropped. Features for every hidden state are extracted once per (model,
tokenizer, corpus) into the on-disk cache (:func:`bert_repro.cache.cached_word_features`);
batches read one layer from it at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from ..batching import length_grouped_order
from ..errors import ConfigError, DataError, InputTooLongError, check_choice
from ..models import as_fast_tokenizer, tokenizer_fingerprint
from ..pipeline import EncodedCorpus, encode_corpus, generator_dataset, max_model_length
from ..settings import ExtractionSettings
from ..treebank import Sentence, read_conllu
from .kinds import PAD_LABEL, PROBE_KINDS, ProbeKind


def default_cache_dir() -> Path:
    """Where word features are cached unless told otherwise: ``$XDG_CACHE_HOME/bert_repro``
    (``~/.cache/bert_repro/features``)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(root).expanduser() / "bert_repro" / "features"


def pad_labels(labels: Sequence[np.ndarray], max_words: int | None = None) -> np.ndarray:
    """Stack ``(n_i, n_i)`` distances into ``(B, W, W)`` or ``(n_i,)`` depths into ``(B, W)``
    float32, padded with :data:`~bert_repro.probe.kinds.PAD_LABEL` (-1)."""
    w = max_words if max_words is not None else max((len(v) for v in labels), default=0)
    pairs = bool(labels) and np.ndim(labels[0]) == 2
    out = np.full((len(labels), w, w) if pairs else (len(labels), w), PAD_LABEL, np.float32)
    for r, lab in enumerate(labels):
        n = len(lab)
        if pairs:
            out[r, :n, :n] = lab
        else:
            out[r, :n] = lab
    return out


def _label_spec(kind: ProbeKind):
    """The ``tf.TensorSpec`` of a batch of padded labels: ``(B, W, W)`` distances or ``(B, W)``
    depths, float32."""
    import tensorflow as tf

    return tf.TensorSpec((None, None, None) if kind == "distance" else (None, None), tf.float32)


class _Epochs:
    """A re-iterable of batches: every ``iter()`` is a new epoch, ``batches(order)``.

    ``order`` is ``None`` (file order) unless ``shuffle``; then every epoch draws a new order
    of the ``n`` sentences from one generator seeded with ``seed``, so a seeded run sees the
    same sequence of orders: a permutation, or, given ``grouping=(lengths, batch_size)``, a
    :func:`~bert_repro.batching.length_grouped_order` whose batches hold sentences of similar
    lengths.
    """

    def __init__(self, batches, n: int, *, shuffle: bool, seed: int | None, grouping=None):
        self._batches, self._n, self._shuffle = batches, n, shuffle
        self._grouping = grouping
        self._rng = np.random.default_rng(seed)

    def __iter__(self):
        if not self._shuffle:
            order = None
        elif self._grouping is None:
            order = self._rng.permutation(self._n)
        else:
            lengths, batch_size = self._grouping
            order = length_grouped_order(lengths, batch_size, self._rng)
        return iter(self._batches(order))


class ProbeDataset:
    """Gold trees of a CoNLL-U treebank, and their batches with BERT word features.

    Args:
        conllu_path: the ``.conllu`` file (read with :func:`bert_repro.treebank.read_conllu`;
            malformed input raises :class:`~bert_repro.errors.DataError` naming file and line).
        sentences: already-read sentences instead of a path (e.g. a subset).
        cache_dir: where word features are cached (default :func:`default_cache_dir`).

    Attributes:
        path: the file, or ``None``.
        sentences: the :class:`~bert_repro.treebank.Sentence` objects, in file order.
        lengths: ``(n_sentences,)`` int words per sentence.
    """

    def __init__(
        self,
        conllu_path: str | os.PathLike | None = None,
        *,
        sentences: Sequence[Sentence] | None = None,
        cache_dir: str | os.PathLike | None = None,
    ):
        if (conllu_path is None) == (sentences is None):
            raise ConfigError("give either conllu_path or sentences")
        self.path = None if conllu_path is None else Path(conllu_path)
        self.sentences: list[Sentence] = (
            read_conllu(self.path) if sentences is None else list(sentences)
        )
        if not self.sentences:
            raise DataError("no sentences", path=self.path)
        if self.path is None and self.sentences[0].path is not None:
            self.path = Path(self.sentences[0].path)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.lengths = np.array([len(s) for s in self.sentences], dtype=np.int64)
        self._distances: list[np.ndarray] | None = None
        self._depths: list[np.ndarray] | None = None
        self._encodings: dict[str, EncodedCorpus] = {}  # tokenizer fingerprint -> encoding
        # sentences that begin with these (the file a --limit subset was cut from), or None
        self._longer: list[Sentence] | None = None

    def __len__(self) -> int:
        return len(self.sentences)

    def __repr__(self) -> str:
        return (
            f"ProbeDataset({str(self.path)!r}: {len(self)} sentences, "
            f"{int(self.lengths.sum())} words)"
        )

    def subset(self, indices: Sequence[int] | slice) -> ProbeDataset:
        """A dataset of some of the sentences (in the given order), same cache folder.

        A subset of the first sentences (``range(n)``) remembers the sentences it begins, so
        its :meth:`features` can be served from a cache entry of a longer prefix of them
        (e.g. the edge probes' ``--limit 500`` from the structural probes' 1,000).
        """
        idx = range(len(self))[indices] if isinstance(indices, slice) else indices
        idx = [int(i) for i in idx]
        out = ProbeDataset(sentences=[self.sentences[i] for i in idx], cache_dir=self.cache_dir)
        out._encodings = {fp: enc.subset(idx) for fp, enc in self._encodings.items()}
        if idx == list(range(len(idx))):
            out._longer = self._longer if self._longer is not None else self.sentences
        return out

    # ------------------------------------------------------------------ gold labels

    @property
    def words(self) -> list[list[str]]:
        """The word forms of every sentence (what BERT is given)."""
        return [list(s.words) for s in self.sentences]

    @property
    def distances(self) -> list[np.ndarray]:
        """Per sentence ``(n, n)`` gold tree distances (int16, computed once)."""
        if self._distances is None:
            self._distances = [s.distances.astype(np.int16) for s in self.sentences]
        return self._distances

    @property
    def depths(self) -> list[np.ndarray]:
        """Per sentence ``(n,)`` gold tree depths, root 0 (int16, computed once)."""
        if self._depths is None:
            self._depths = [s.depths.astype(np.int16) for s in self.sentences]
        return self._depths

    @property
    def punctuation(self) -> list[np.ndarray]:
        """Per sentence ``(n,)`` bool punctuation marks (PTB XPOS, else UPOS PUNCT)."""
        return [s.punctuation for s in self.sentences]

    def labels(self, kind: ProbeKind) -> list[np.ndarray]:
        """Gold distances (``kind="distance"``) or depths (``"depth"``) per sentence."""
        check_choice("kind", kind, PROBE_KINDS)
        return self.distances if kind == "distance" else self.depths

    # ------------------------------------------------------------------ features

    def encoding(self, tokenizer) -> EncodedCorpus:
        """The sentences tokenised by ``tokenizer``: done once per tokenizer (kept by its
        fingerprint, shared with subsets) and read by every later step."""
        tokenizer = as_fast_tokenizer(tokenizer)
        fp = tokenizer_fingerprint(tokenizer)
        if fp not in self._encodings:
            self._encodings[fp] = encode_corpus(tokenizer, self.words, words=True)
        return self._encodings[fp]

    def wordpiece_lengths(self, tokenizer) -> np.ndarray:
        """``(n_sentences,)`` wordpieces per sentence including ``[CLS]`` and ``[SEP]``."""
        return self.encoding(tokenizer).lengths

    def too_long(self, model, tokenizer) -> list[int]:
        """Indices of the sentences with more wordpieces than the model accepts."""
        limit = max_model_length(tokenizer, model)
        return self.encoding(tokenizer).too_long(limit).tolist()

    def check_fits(self, model, tokenizer) -> None:
        """Refuse sentences longer than the model accepts (they are never cut silently).

        Raises:
            InputTooLongError: naming the file, the line and sentence ID of the first one, its
                wordpiece count and the model's limit, and how many there are.
        """
        limit = max_model_length(tokenizer, model)
        pieces = self.wordpiece_lengths(tokenizer)
        bad = np.flatnonzero(pieces > limit)
        if bad.size == 0:
            return
        s = self.sentences[int(bad[0])]
        more = f"; {bad.size} sentences in all are too long" if bad.size > 1 else ""
        raise InputTooLongError(
            f"sentence {s.sent_id or int(bad[0])} has {int(pieces[bad[0]])} wordpieces with "
            f"[CLS]/[SEP], more than the model's maximum of {limit}{more}. Nothing is cut "
            "silently: remove or split such sentences (`ProbeDataset.subset`, or "
            "`--too-long skip` on the command line drops and lists them)",
            path=s.path or self.path,
            line=s.start_line,
        )

    def features(
        self,
        model,
        tokenizer,
        *,
        settings: ExtractionSettings | None = None,
        **options,
    ):
        """Word features of every sentence for every hidden state, from the cache.

        Args:
            model, tokenizer: see :func:`bert_repro.models.load_bert`.
            settings: how to extract (:class:`~bert_repro.settings.ExtractionSettings`;
                ``cache_dtype="float16"`` halves the cache and the memory that reading it
                maps, probe metrics move within seed noise: docs/performance.md); ``options``
                replace some of its fields (``progress=False``, ``max_tokens=``, ...).

        Returns:
            A :class:`bert_repro.cache.WordFeatureStore` (``.layer(k)`` is
            ``(total_words, hidden)``, sentence ``i`` at rows ``offsets[i]:offsets[i+1]``).
            For a subset of the first sentences of a file (:meth:`subset`), the first rows of
            an entry of more of them when there is one and none of its own (``longer`` of
            :func:`~bert_repro.cache.cached_word_features`: the same vectors to float
            rounding).

        Raises:
            InputTooLongError: a sentence does not fit the model (see :meth:`check_fits`).
        """
        from ..cache import cached_word_features

        tokenizer = as_fast_tokenizer(tokenizer)
        self.check_fits(model, tokenizer)
        longer = (
            self._longer if self._longer is not None and len(self._longer) > len(self) else None
        )
        store = cached_word_features(
            model,
            tokenizer,
            self.encoding(tokenizer),
            self.cache_dir,
            settings=settings,
            longer=None if longer is None else [s.words for s in longer],
            **options,
        )
        if not np.array_equal(np.asarray(store.lengths), self.lengths):
            raise DataError(
                f"feature cache {store.path} does not match the treebank's sentence lengths"
            )
        return store

    # ------------------------------------------------------------------ batches

    def _check_batching(self, store, batch_size: int) -> None:
        """Refuse a batch size below 1 and a feature store of another corpus."""
        if batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        if not np.array_equal(np.asarray(store.lengths), self.lengths):
            raise DataError(
                f"the feature store has {len(store.lengths)} sentences whose lengths do not "
                f"match the treebank's {len(self)} (features of another corpus?)",
                path=self.path,
            )

    def iter_batches(
        self,
        store,
        layer: int,
        kind: ProbeKind = "distance",
        *,
        batch_size: int = 20,
        order: Sequence[int] | None = None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Padded NumPy batches ``(features, labels, lengths)`` of one hidden state.

        Args:
            store: the :class:`~bert_repro.cache.WordFeatureStore` of :meth:`features`.
            layer: hidden-state index (0 = embedding output; negative counts from the top).
            kind: ``"distance"`` labels ``(B, W, W)`` or ``"depth"`` labels ``(B, W)``.
            batch_size: sentences per batch; the last batch may be smaller.
            order: the sentence order (default file order).

        Yields:
            ``(B, W, H)`` float32 features, labels (``-1`` on padding), ``(B,)`` int32 lengths:
            :meth:`iter_layer_batches` of this one layer and kind.
        """
        check_choice("kind", kind, PROBE_KINDS)
        batches = self.iter_layer_batches(
            store, [layer], [kind], batch_size=batch_size, order=order
        )
        for feats, labels, lengths in batches:  # (1, B, W, H), {kind: labels}, (B,)
            yield feats[0], labels[kind], lengths

    def tf_dataset(
        self,
        store,
        layer: int,
        kind: ProbeKind = "distance",
        *,
        batch_size: int = 20,
        shuffle: bool = False,
        seed: int | None = None,
        prefetch: int = 2,
        group_by_length: bool = True,
    ):
        """A ``tf.data.Dataset`` of ``(features, labels, lengths)`` batches (see
        :meth:`iter_batches`).

        Args:
            shuffle: draw a new sentence order at every pass (epoch), from a generator seeded
                with ``seed``, so a seeded run sees the same sequence of orders.
            seed: the shuffling seed.
            group_by_length: shuffled batches hold sentences of similar lengths
                (:func:`~bert_repro.batching.length_grouped_order`: the padded words and word
                pairs a batch computes shrink 2.8x and 5.6x on EWT train); ``False``: plain
                random batches, as Hewitt & Manning's code draws them.
        """
        import tensorflow as tf

        check_choice("kind", kind, PROBE_KINDS)
        epochs = _Epochs(
            lambda order: self.iter_batches(store, layer, kind, batch_size=batch_size, order=order),
            len(self),
            shuffle=shuffle,
            seed=seed,
            grouping=(self.lengths, batch_size) if group_by_length else None,
        )
        ds = generator_dataset(
            lambda: iter(epochs),
            (
                tf.TensorSpec((None, None, int(store.hidden_size)), tf.float32),
                _label_spec(kind),
                tf.TensorSpec((None,), tf.int32),
            ),
        )
        return ds.prefetch(prefetch)

    def iter_layer_batches(
        self,
        store,
        layers: Sequence[int],
        kinds: Sequence[ProbeKind] = PROBE_KINDS,
        *,
        batch_size: int = 20,
        order: Sequence[int] | None = None,
    ) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]]:
        """Padded batches of several hidden states at once: each layer read once per batch.

        The same sentences, order, padding and labels as :meth:`iter_batches` gives for each
        layer alone, with the layers stacked in front (for
        :func:`bert_repro.probe.joint.train_probes`).

        Args:
            store: the :class:`~bert_repro.cache.WordFeatureStore` of :meth:`features`.
            layers: the ``K`` hidden-state indices, in the order to stack them.
            kinds: the label kinds to serve, ``"distance"`` and/or ``"depth"``.
            batch_size, order: as :meth:`iter_batches`.

        Yields:
            ``(K, B, W, H)`` float32 features (zero on padding), ``{kind: labels}`` (``(B, W,
            W)`` distances / ``(B, W)`` depths, ``-1`` on padding), ``(B,)`` int32 lengths.
        """
        for kind in kinds:
            check_choice("kind", kind, PROBE_KINDS)
        if not layers:
            raise ConfigError("no layers given")
        self._check_batching(store, batch_size)
        vectors = [store.layer(k) for k in layers]  # K x (total_words, H), memory-mapped
        offsets = np.asarray(store.offsets)
        labels = {kind: self.labels(kind) for kind in kinds}
        idx_all = np.arange(len(self)) if order is None else np.asarray(order, dtype=np.int64)
        for start in range(0, len(idx_all), batch_size):
            idx = idx_all[start : start + batch_size]
            n = self.lengths[idx]
            w = int(n.max())
            # word j of the batch's sentence r is row offsets[idx[r]] + j of every layer
            col = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)  # (words,)
            row = np.repeat(np.arange(len(idx)), n)
            src = np.repeat(offsets[idx], n) + col
            feats = np.zeros((len(vectors), len(idx), w, int(store.hidden_size)), np.float32)
            for k, vec in enumerate(vectors):
                feats[k, row, col] = vec[src]
            labs = {kind: pad_labels([lab[i] for i in idx], w) for kind, lab in labels.items()}
            yield feats, labs, n.astype(np.int32)

    def layer_batches(
        self,
        store,
        layers: Sequence[int],
        kinds: Sequence[ProbeKind] = PROBE_KINDS,
        *,
        batch_size: int = 20,
        shuffle: bool = False,
        seed: int | None = None,
        group_by_length: bool = True,
    ) -> Iterable[tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]]:
        """:meth:`iter_layer_batches` epoch after epoch: each iteration of the returned object
        is one epoch of NumPy batches ``(features (K, B, W, H), {kind: labels}, lengths)``.

        Shuffled as :meth:`tf_dataset` (a new order at every epoch, drawn from a generator
        seeded with ``seed``, batches grouped by length unless ``group_by_length=False``), so
        with the same seed the batches hold the same sentences, in the same order, as each
        layer's :meth:`tf_dataset`. The fast input of
        :func:`bert_repro.probe.joint.train_probes`: the step converts each batch once, with
        no ``tf.data`` generator thread competing with it for the cores
        (``benchmarks/bench_probes.py``).
        """
        for kind in kinds:
            check_choice("kind", kind, PROBE_KINDS)
        layers = [int(k) for k in layers]
        kinds = list(kinds)
        return _Epochs(
            lambda order: self.iter_layer_batches(
                store, layers, kinds, batch_size=batch_size, order=order
            ),
            len(self),
            shuffle=shuffle,
            seed=seed,
            grouping=(self.lengths, batch_size) if group_by_length else None,
        )

    def tf_layers_dataset(
        self,
        store,
        layers: Sequence[int],
        kinds: Sequence[ProbeKind] = PROBE_KINDS,
        *,
        prefetch: int = 2,
        **batching,
    ):
        """:meth:`layer_batches` as a ``tf.data.Dataset`` (every pass a new epoch, shuffled
        the same way) of ``(features (K, B, W, H), {kind: labels}, lengths)``.

        Args:
            store, layers, kinds: as :meth:`layer_batches`.
            prefetch: batches prepared ahead.
            **batching: ``batch_size``, ``shuffle``, ``seed``, ``group_by_length``, as
                :meth:`layer_batches`.
        """
        import tensorflow as tf

        epochs = self.layer_batches(store, layers, kinds, **batching)
        ds = generator_dataset(
            lambda: iter(epochs),
            (
                tf.TensorSpec((len(layers), None, None, int(store.hidden_size)), tf.float32),
                {kind: _label_spec(kind) for kind in kinds},
                tf.TensorSpec((None,), tf.int32),
            ),
        )
        return ds.prefetch(prefetch)

    def build_pairs_distance_generator(
        self,
        bert,
        tokenizer,
        layer_index: int = -1,
        return_length: bool = True,
        batch_size: int = 32,
    ) -> Iterator[tuple[np.ndarray, ...]]:
        """Batches of word features and gold distances, as the seed notebooks iterate them.

        Features of all hidden states are extracted once into the cache (later calls for other
        layers reuse it); every sentence is served in file order, the last batch may be
        smaller.

        Args:
            bert: a ``TFBertModel``.
            tokenizer: its tokenizer (a slow ``BertTokenizer`` is converted to a fast one).
            layer_index: hidden-state index: 0 = embedding output, ``k`` = encoder layer
                ``k``, negative counts from the top (``-1`` = last layer).
            return_length: also yield the lengths.
            batch_size: sentences per batch.

        Returns:
            An iterator of ``(features (B, W, H), distances (B, W, W), lengths (B,))`` (or
            the first two only), float32/float32/int32, distances ``-1`` on padding.
        """
        from ..features import resolve_layers

        (layer,) = resolve_layers(int(layer_index), int(bert.config.num_hidden_layers) + 1)
        store = self.features(bert, tokenizer)

        def batches():
            for feats, labs, lengths in self.iter_batches(
                store, layer, "distance", batch_size=batch_size
            ):
                yield (feats, labs, lengths) if return_length else (feats, labs)

        return batches()
