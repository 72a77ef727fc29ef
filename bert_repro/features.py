"""The one extraction path: every hidden state of every layer, batched, compiled, distributable.

All of bert_repro (comparator, probes, embeddings) runs BERT through :class:`Extractor`: texts
are tokenised once, grouped into batches that compute little padding under a budget of padded
wordpieces (:mod:`bert_repro.batching`), padded and prefetched by ``tf.data``
(:mod:`bert_repro.pipeline`), and each batch goes through a ``tf.function`` (optionally
XLA-compiled, then with few distinct shapes) that returns the selected hidden states, already
pooled into words when the input is pre-split sentences. Under a ``tf.distribute.Strategy`` the
batch is split across replicas and the results are gathered back in corpus order. Measurements
and the GPU settings: ``docs/performance.md``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from .batching import (
    DEFAULT_MAX_TOKENS,
    Batch,
    attention_width,
    bucket_widths,
    bucketed_plan,
    token_budget_plan,
)
from .distribute import distributed_batches
from .errors import ConfigError, ModelError
from .models import as_fast_tokenizer, check_compatible, model_label
from .pipeline import EncodedCorpus, describe_item, encode_corpus, make_dataset, max_model_length
from .settings import ExtractionSettings

__all__ = [
    "ExtractionSettings",
    "Extractor",
    "hidden_states",
    "iter_batches",
    "iter_word_batches",
    "resolve_layers",
    "word_features",
]


def resolve_layers(layers: int | Sequence[int] | None, num_states: int) -> tuple[int, ...]:
    """Normalise layer indices into ``0..num_states-1`` (negative ones count from the top).

    ``num_states`` is ``num_hidden_layers + 1``: index 0 is the embedding output, index ``k``
    the output of encoder layer ``k``. ``None`` selects all of them.

    Raises:
        ConfigError: an index is out of range or not an int.
    """
    if layers is None:
        return tuple(range(num_states))
    if isinstance(layers, (int, np.integer)):
        layers = [int(layers)]
    out = []
    for k in layers:
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
            raise ConfigError(f"layer indices must be ints, got {k!r}")
        j = int(k) + num_states if k < 0 else int(k)
        if not 0 <= j < num_states:
            raise ConfigError(
                f"layer {k} does not exist: this model has hidden states 0..{num_states - 1} "
                f"(0 = embedding output, {num_states - 1} = last encoder layer)"
            )
        out.append(j)
    return tuple(out)


class Extractor:
    """Compiled forward pass of a TFBertModel returning selected hidden states.

    Args:
        model: a ``TFBertModel`` (variables created in ``strategy``'s scope when one is given).
        layers: hidden-state indices to return (see :func:`resolve_layers`); default all.
        words: pool wordpieces into words inside the compiled function (inputs then carry
            ``word_index`` and ``word_mask``, see :func:`bert_repro.pipeline.pad_batch`).
        jit_compile: compile with XLA (one compilation per distinct padded shape).
        strategy: a ``tf.distribute.Strategy`` to split each batch across its replicas.

    Calling it on a padded batch gives ``K = len(layers)`` float32 arrays ``(B, T, H)`` of
    hidden states, or ``(B, W, H)`` word vectors (mean of each word's wordpieces) with
    ``words=True`` (:meth:`run_layers`); :meth:`run` stacks them into ``(K, B, T|W, H)``.
    The compiled function returns the layers as they are, never stacked: a consumer copying
    per text or per layer (:func:`hidden_states`, :func:`word_features`, the feature cache)
    reads them in place.
    """

    def __init__(self, model, *, layers=None, words=False, jit_compile=False, strategy=None):
        import tensorflow as tf

        self.model = model
        self.num_states = int(model.config.num_hidden_layers) + 1
        self.layers = resolve_layers(layers, self.num_states)
        self.words = bool(words)
        self.jit_compile = bool(jit_compile)
        self.strategy = strategy
        keys = ["input_ids", "attention_mask", "token_type_ids"]
        keys += ["word_index", "word_mask"] if self.words else []
        # One signature with unknown batch and length: traced once. Under XLA each distinct
        # padded shape still compiles once (padding to multiples of 8 keeps those few).
        signature = [{k: tf.TensorSpec((None, None), tf.int32) for k in keys}]
        self._fn = tf.function(
            self._forward, input_signature=signature, jit_compile=bool(jit_compile)
        )
        if strategy is not None:
            # Per-replica inputs cannot match a plain TensorSpec signature: retrace by shape.
            # Each replica's rows are gathered back (from every worker under multi-worker),
            # in global replica order: the global batch's order (distributed_batches).
            self._dist = tf.function(self._distributed, reduce_retracing=True)

    def _distributed(self, batch):
        """``(K gathered outputs, gathered batch)`` of a per-replica batch (one compiled
        call: the all-gathers of a multi-worker run go together)."""
        feed = {k: v for k, v in batch.items() if k != "index"}
        outs = self.strategy.run(self._forward, args=(feed,))
        gather = self.strategy.gather
        return tuple(gather(o, axis=0) for o in outs), {
            k: gather(v, axis=0) for k, v in batch.items()
        }

    def _forward(self, batch):
        """``K`` tensors ``(B, T, H)`` (or ``(B, W, H)`` word means), one per selected layer."""
        import tensorflow as tf

        out = self.model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            token_type_ids=batch["token_type_ids"],
            output_hidden_states=True,
            training=False,
        )
        hs = [tf.cast(out.hidden_states[k], tf.float32) for k in self.layers]  # K x (B, T, H)
        if not self.words:
            return tuple(hs)
        n_words = tf.shape(batch["word_mask"])[1]
        onehot = tf.one_hot(batch["word_index"], depth=n_words, dtype=tf.float32)  # (B, T, W)
        counts = tf.maximum(tf.reduce_sum(onehot, axis=1), 1.0)[:, :, None]  # (B, W, 1)
        # word w of row b: sum_t onehot[b, t, w] h[b, t] / count[b, w]
        return tuple(tf.matmul(onehot, h, transpose_a=True) / counts for h in hs)

    def run_layers(self, batch) -> tuple[list[np.ndarray], np.ndarray]:
        """Run one batch (dict of tensors).

        Returns:
            ``(outputs, index)``: ``K`` arrays ``(B, T|W, H)`` (the compiled call's results,
            not copied) and ``index`` ``(B,)``, in matching order (under a strategy, the
            replicas' rows are concatenated).
        """
        outs, host = self.run_batch(batch)
        return outs, host["index"]

    def run_batch(self, batch) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
        """Run one batch: ``K`` arrays ``(B, T|W, H)`` and the batch itself as NumPy (under a
        strategy both gathered from every replica, and every worker, in the batch's order)."""
        if self.strategy is None:
            feed = {k: v for k, v in batch.items() if k != "index"}
            return [o.numpy() for o in self._fn(feed)], {k: np.asarray(v) for k, v in batch.items()}
        outs, host = self._dist(batch)
        return [o.numpy() for o in outs], {k: np.asarray(v) for k, v in host.items()}

    def run(self, batch) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`run_layers` with the layers stacked: ``(K, B, T|W, H)`` and ``(B,)``."""
        outs, index = self.run_layers(batch)
        return np.stack(outs), index


_CACHE_ATTR = "_bert_repro_extractors"


def get_extractor(model, settings: ExtractionSettings | None = None, *, words: bool = False):
    """The :class:`Extractor` for ``settings`` (layers, XLA, strategy), built once per model
    and reused.

    Building one traces the model (seconds); reusing it makes repeated calls on the same
    model (a notebook cell run again, a sweep over corpora) pay that only once.
    """
    settings = settings or ExtractionSettings()
    num_states = int(model.config.num_hidden_layers) + 1
    layers = resolve_layers(settings.layers, num_states)
    key = (layers, bool(words), settings.jit_compile, id(settings.strategy))
    # Kept on the model itself (not in a global weak-key map, whose values would hold the
    # model alive forever): the extractors are freed with the model. object.__setattr__
    # bypasses Keras' attribute tracking, so saving the model is unaffected.
    per_model = model.__dict__.get(_CACHE_ATTR)
    if per_model is None:
        per_model = {}
        object.__setattr__(model, _CACHE_ATTR, per_model)
    if key not in per_model:
        per_model[key] = Extractor(
            model,
            layers=layers,
            words=words,
            jit_compile=settings.jit_compile,
            strategy=settings.strategy,
        )
    return per_model[key]


def _progress(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(
        total=total, disable=not enabled or total <= 1, desc=desc, unit="batch", leave=False
    )


def extraction_plan(
    lengths: Sequence[int],
    config,
    *,
    max_batch: int | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    fixed_shapes: bool = False,
    max_length: int | None = None,
    num_replicas: int = 1,
) -> list[Batch]:
    """The batches the extraction runs (see :mod:`bert_repro.batching`).

    Graph mode (``fixed_shapes=False``) takes the cheapest token-budget plan, any shapes; XLA
    (``fixed_shapes=True``) pads to a few lengths tuned to the data, multiples of 8 (what GPU
    tensor cores want), so few shapes compile. Under a strategy with ``num_replicas`` replicas
    each global batch holds ``num_replicas`` times the budget (each replica gets its budget).
    """
    width = attention_width(config)
    budget = int(max_tokens) * max(1, int(num_replicas))
    cap = None if max_batch is None else int(max_batch) * max(1, int(num_replicas))
    if fixed_shapes:
        widths = bucket_widths(lengths, max_length=max_length, attention_width=width)
        return bucketed_plan(lengths, widths, max_tokens=budget, max_batch=cap)
    return token_budget_plan(
        lengths, max_tokens=budget, max_batch=cap, max_length=max_length, attention_width=width
    )


def first_non_finite(
    outputs: np.ndarray | Sequence[np.ndarray],
    mask: np.ndarray,
    layers: Sequence[int] | None = None,
) -> tuple[int, int] | None:
    """Where the first NaN/inf of a batch's outputs is, at real positions only.

    Args:
        outputs: ``(K, B, T, H)`` hidden states (or ``(K, B, W, H)`` word vectors), or ``K``
            arrays ``(B, T|W, H)``.
        mask: ``(B, T)`` (or ``(B, W)``), nonzero on real wordpieces (words); padding is not
            checked.
        layers: the hidden-state index of each of the ``K`` (default ``0..K-1``).

    Returns:
        ``(layer, row)``: the lowest hidden state holding a non-finite value, and the first
        row holding one in it; None when every real position is finite (the common case
        costs one pass over ``outputs``).
    """
    if all(np.isfinite(o).all() for o in outputs):
        return None
    real = np.asarray(mask).astype(bool)
    bad = np.stack([~np.isfinite(o).all(axis=-1) & real for o in outputs])  # (K, B, T)
    if not bad.any():
        return None
    layers = np.arange(len(outputs)) if layers is None else np.asarray(layers)
    candidates = np.flatnonzero(bad.any(axis=(1, 2)))
    k = int(candidates[np.argmin(layers[candidates])])
    return int(layers[k]), int(np.argmax(bad[k].any(axis=1)))


def _check_finite(ex: Extractor, outputs, host, index, label: str, sources) -> None:
    """Refuse a batch whose hidden states hold NaN/inf, naming the model, the first such
    hidden state and the first such text (before anything is computed from or cached of
    them)."""
    mask = host["word_mask" if ex.words else "attention_mask"]
    found = first_non_finite(outputs, mask, ex.layers)
    if found is None:
        return
    layer, row = found
    i = int(index[row])
    what = "sentence" if ex.words else "text"
    raise ModelError(
        f"model {label} gives NaN or inf hidden states, first at hidden state {layer} "
        f"(0 = embedding output) for {what} {i} ({describe_item(sources[i])!r}): its weights "
        "are broken (a diverged fine-tune, a damaged checkpoint) or its half precision "
        "overflows (try float32); nothing is computed from them"
    )


def _iter_runs(extractors, corpus: EncodedCorpus, tokenizer, plan, settings, desc, labels):
    """Yield ``(batch_numpy, [outputs per extractor], index)`` over the planned batches; each
    extractor's outputs are ``K`` arrays ``(B, T|W, H)`` (:meth:`Extractor.run_layers`).

    Every extractor's outputs are checked for NaN/inf first (:func:`first_non_finite`);
    ``corpus.sources`` and ``labels`` (one per extractor) name them in the error. One batch
    runs ahead: while the caller copies or writes batch ``i``'s outputs, a worker thread runs
    the models on batch ``i + 1`` and checks them (TensorFlow releases the GIL while it
    computes), so host work overlaps the next call; at most two batches' outputs are alive.
    """
    from concurrent.futures import ThreadPoolExecutor

    strategy = settings.strategy
    ds = make_dataset(
        corpus.items,
        plan,
        pad_id=int(tokenizer.pad_token_id or 0),
        fixed_word_length=extractors[0].jit_compile,
    )
    if strategy is not None:
        ds = distributed_batches(strategy, ds)

    def run(batch):
        outs = []
        host = None
        for ex in extractors:  # under a strategy, each gathers the replicas' rows back
            o, host = ex.run_batch(batch)
            outs.append(o)
        index = host.pop("index")
        for ex, out, label in zip(extractors, outs, labels, strict=True):
            _check_finite(ex, out, host, index, label, corpus.sources)
        return host, outs, index

    batches = iter(ds)
    with (
        _progress(len(plan), settings.progress, desc) as bar,
        ThreadPoolExecutor(1, thread_name_prefix="bert_repro-extract") as worker,
    ):
        batch = next(batches, None)
        pending = None if batch is None else worker.submit(run, batch)
        while pending is not None:
            result = pending.result()
            batch = next(batches, None)
            pending = None if batch is None else worker.submit(run, batch)
            bar.update(1)
            yield result


def _plan(corpus: EncodedCorpus, model, max_length: int, settings: ExtractionSettings):
    return extraction_plan(
        corpus.lengths,
        model.config,
        max_batch=settings.max_batch,
        max_tokens=settings.max_tokens,
        fixed_shapes=settings.jit_compile,
        max_length=max_length,
        num_replicas=settings.num_replicas,
    )


def model_labels(models: list, names: Sequence[str] | None) -> list[str]:
    """What error messages call each model (see :func:`bert_repro.models.model_label`)."""
    if names is not None and len(names) != len(models):
        raise ConfigError(f"{len(names)} names for {len(models)} models")
    return [
        model_label(
            m,
            None if names is None else names[i],
            fallback="(built in memory)" if len(models) == 1 else f"{i} of the list",
        )
        for i, m in enumerate(models)
    ]


def length_limit(tokenizer, models: Sequence, labels: Sequence[str]) -> tuple[int, str | None]:
    """``(limit, limited_by)``: the most wordpieces every model accepts, and the label of the
    model that sets it when the models' limits differ (for the length error)."""
    limits = [max_model_length(tokenizer, m) for m in models]
    smallest = int(np.argmin(limits))
    return limits[smallest], None if len(set(limits)) == 1 else f"model {labels[smallest]}"


def _extract(models, tokenizer, inputs, settings, *, words: bool, names=None):
    """The one extraction loop: tokenise once (unless ``inputs`` is already an
    :class:`~bert_repro.pipeline.EncodedCorpus`), refuse over-long inputs, plan, run every
    model over the same batches. Yields ``(corpus, host, outputs, index)``."""
    models = list(models) if isinstance(models, (list, tuple)) else [models]
    labels = model_labels(models, names)
    tokenizer = as_fast_tokenizer(tokenizer)
    check_compatible(models[0], models[1:], tokenizer)  # ids beyond a vocabulary fail in TF
    corpus = encode_corpus(tokenizer, inputs, words=words)
    limit, limited_by = length_limit(tokenizer, models, labels)
    corpus.check_fits(limit, limited_by)
    if not len(corpus):
        return
    plan = _plan(corpus, models[0], limit, settings)
    extractors = [get_extractor(m, settings, words=words) for m in models]
    desc = "word features" if words else "hidden states"
    for host, outs, index in _iter_runs(
        extractors, corpus, tokenizer, plan, settings, desc, labels
    ):
        yield corpus, host, outs, index


def iter_batches(
    models,
    tokenizer,
    texts: Sequence[str] | EncodedCorpus,
    *,
    settings: ExtractionSettings | None = None,
    names: Sequence[str] | None = None,
    **options,
) -> Iterator[tuple[dict[str, np.ndarray], list[np.ndarray]]]:
    """Run one or more compatible models over the same length-sorted batches of ``texts``.

    Each batch is computed once per model, so comparing a base with N fine-tuned models costs
    N + 1 passes; nothing is kept after the batch is yielded (memory stays bounded).

    Args:
        models: a TFBertModel or a list of them (same layer count, width and vocabulary;
            they may have different numbers of positions: every text must fit all of them).
        tokenizer: the fast tokenizer shared by the models.
        texts: raw strings (a list of them; one bare string is refused), or an
            :class:`~bert_repro.pipeline.EncodedCorpus` of them (not tokenised again).
        settings: how to run (:class:`~bert_repro.settings.ExtractionSettings`);
            ``options`` replace some of its fields (``layers=``, ``max_tokens=``, ...).
        names: what error messages call the models (default: where each was loaded from).

    Raises:
        InputTooLongError: a text has more wordpieces than one of the models accepts (naming
            that model when the models' limits differ).
        ModelError: the models do not match, or one gives NaN/inf hidden states (naming the
            model, the hidden state and the text).

    Yields:
        ``(batch, outputs)``: ``batch`` holds NumPy ``input_ids``/``attention_mask`` ``(B, T)``
        and ``index`` ``(B,)`` (positions in ``texts``); ``outputs[m]`` is model ``m``'s
        ``(K, B, T, H)`` hidden states for the selected layers. Padding positions have
        ``attention_mask == 0`` and must be ignored.
    """
    settings = ExtractionSettings.create(settings, **options)
    for _, host, outs, index in _extract(
        models, tokenizer, texts, settings, words=False, names=names
    ):
        host["index"] = index
        yield host, [np.stack(layers) for layers in outs]


def hidden_states(
    model,
    tokenizer,
    texts: Sequence[str] | EncodedCorpus,
    *,
    settings: ExtractionSettings | None = None,
    **options,
) -> list[np.ndarray]:
    """Hidden states of every text, all layers, the wordpieces the model sees.

    Args:
        model: a ``TFBertModel`` (see :func:`bert_repro.models.load_bert`).
        tokenizer: its fast tokenizer.
        texts: raw strings; each must fit the model (else :class:`InputTooLongError` names it).
        settings: how to run (:class:`~bert_repro.settings.ExtractionSettings`: token budget,
            batch cap, layers, XLA, distribute strategy, progress bar). ``options`` replace
            some of its fields, e.g. ``layers=[0, 6]`` (0 = embedding output),
            ``max_tokens=4096``, ``strategy=tf.distribute.MirroredStrategy()``,
            ``progress=False``. Which texts share a batch is planned over the texts sorted
            by length to compute little padding; the results do not depend on the batching.

    Returns:
        One ``(K, n_wordpieces, hidden)`` float32 array per text, in input order, where
        ``K = num_hidden_layers + 1`` (or ``len(layers)``) and the wordpieces include
        ``[CLS]`` and ``[SEP]``; no padding.

    Raises:
        DataError: ``texts`` is one string, not a list of them.
        InputTooLongError: a text does not fit the model.
        ModelError: the model gives NaN/inf hidden states (named with the layer and text).
    """
    settings = ExtractionSettings.create(settings, **options)
    result: list[np.ndarray | None] = []
    for corpus, batch, (out,), index in _extract(model, tokenizer, texts, settings, words=False):
        if not result:
            result = [None] * len(corpus)
        lengths = batch["attention_mask"].sum(axis=1)
        for row, i in enumerate(index):
            result[int(i)] = _gather_rows(out, row, int(lengths[row]))
    return result  # type: ignore[return-value]


def _gather_rows(layers: Sequence[np.ndarray], row: int, n: int) -> np.ndarray:
    """``(K, n, H)``: the first ``n`` positions of ``row`` in each of the ``K`` layer arrays
    ``(B, T, H)``, copied once into a new array (the batch's arrays are not kept)."""
    first = layers[0]
    out = np.empty((len(layers), n, first.shape[-1]), dtype=first.dtype)
    for k, layer in enumerate(layers):
        out[k] = layer[row, :n]
    return out


def iter_word_batches(
    model,
    tokenizer,
    sentences: Sequence[Sequence[str]] | EncodedCorpus,
    *,
    settings: ExtractionSettings | None = None,
    **options,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Word vectors of pre-split sentences, batch by batch (bounded memory).

    ``settings``/``options``: see :func:`hidden_states`. ``sentences`` may be an
    :class:`~bert_repro.pipeline.EncodedCorpus` of them (not tokenised again).

    Yields:
        ``(index, n_words, vectors)``: sentence positions ``(B,)``, their word counts ``(B,)``
        and ``K`` arrays ``(B, W, H)`` of word vectors, one per layer (mean of each word's
        wordpieces; ``[CLS]``/``[SEP]`` excluded; rows beyond a sentence's word count are
        padding); ``np.stack(vectors)`` is the ``(K, B, W, H)`` block.
    """
    settings = ExtractionSettings.create(settings, **options)
    for corpus, _, (out,), index in _extract(model, tokenizer, sentences, settings, words=True):
        n_words = np.array([corpus.items[int(i)].n_words for i in index], dtype=np.int64)
        yield index, n_words, out


def word_features(
    model,
    tokenizer,
    sentences: Sequence[Sequence[str]] | EncodedCorpus,
    *,
    settings: ExtractionSettings | None = None,
    **options,
) -> list[np.ndarray]:
    """Word-level features of pre-split sentences (e.g. CoNLL-U words), all layers.

    Each word's vector is the mean of its wordpieces' vectors; ``[CLS]`` and ``[SEP]`` are
    excluded (Hewitt & Manning 2019 align subwords to words the same way).
    ``settings``/``options``: see :func:`hidden_states`.

    Returns:
        One ``(K, n_words, hidden)`` float32 array per sentence, in input order.
    """
    settings = ExtractionSettings.create(settings, **options)
    result: list[np.ndarray | None] = []
    for corpus, _, (out,), index in _extract(model, tokenizer, sentences, settings, words=True):
        if not result:
            result = [None] * len(corpus)
        for row, i in enumerate(index):
            result[int(i)] = _gather_rows(out, row, corpus.items[int(i)].n_words)
    return result  # type: ignore[return-value]
