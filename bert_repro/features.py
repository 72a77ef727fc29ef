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
from .errors import ConfigError, ModelError, check_not_string
from .models import check_compatible, model_label
from .pipeline import (
    as_word_lists,
    describe_item,
    encode_texts,
    encode_words,
    make_dataset,
    max_model_length,
)


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

    Calling it on a padded batch returns ``(K, B, T, H)`` float32 hidden states, or
    ``(K, B, W, H)`` word vectors (mean of each word's wordpieces) with ``words=True``,
    where ``K = len(layers)``.
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
            self._dist = tf.function(
                lambda b: strategy.run(self._forward, args=(b,)), reduce_retracing=True
            )

    def _forward(self, batch):
        import tensorflow as tf

        out = self.model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            token_type_ids=batch["token_type_ids"],
            output_hidden_states=True,
            training=False,
        )
        hs = tf.stack([out.hidden_states[k] for k in self.layers], axis=0)  # (K, B, T, H)
        hs = tf.cast(hs, tf.float32)
        if not self.words:
            return hs
        n_words = tf.shape(batch["word_mask"])[1]
        onehot = tf.one_hot(batch["word_index"], depth=n_words, dtype=hs.dtype)  # (B, T, W)
        counts = tf.reduce_sum(onehot, axis=1)  # (B, W)
        summed = tf.einsum("btw,kbth->kbwh", onehot, hs)  # (K, B, W, H)
        return summed / tf.maximum(counts, 1.0)[None, :, :, None]

    def run(self, batch) -> tuple[np.ndarray, np.ndarray]:
        """Run one batch (dict of tensors).

        Returns:
            ``(outputs, index)``: outputs ``(K, B, T|W, H)`` and ``index`` ``(B,)``, in
            matching order (under a strategy, the replicas' rows are concatenated).
        """
        feed = {k: v for k, v in batch.items() if k != "index"}
        if self.strategy is None:
            return self._fn(feed).numpy(), np.asarray(batch["index"])
        per_replica = self._dist(feed)
        outs = self.strategy.experimental_local_results(per_replica)
        idx = self.strategy.experimental_local_results(batch["index"])
        outs = np.concatenate([o.numpy() for o in outs], axis=1)
        return outs, np.concatenate([np.asarray(i) for i in idx])


_CACHE_ATTR = "_bert_repro_extractors"


def get_extractor(model, *, layers=None, words=False, jit_compile=False, strategy=None):
    """The :class:`Extractor` for these settings, built once per model and reused.

    Building one traces the model (seconds); reusing it makes repeated calls on the same
    model (a notebook cell run again, a sweep over corpora) pay that only once.
    """
    num_states = int(model.config.num_hidden_layers) + 1
    key = (resolve_layers(layers, num_states), bool(words), bool(jit_compile), id(strategy))
    # Kept on the model itself (not in a global weak-key map, whose values would hold the
    # model alive forever): the extractors are freed with the model. object.__setattr__
    # bypasses Keras' attribute tracking, so saving the model is unaffected.
    per_model = model.__dict__.get(_CACHE_ATTR)
    if per_model is None:
        per_model = {}
        object.__setattr__(model, _CACHE_ATTR, per_model)
    if key not in per_model:
        per_model[key] = Extractor(
            model, layers=layers, words=words, jit_compile=jit_compile, strategy=strategy
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
    batch_size: int | None = None,
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
    cap = None if batch_size is None else int(batch_size) * max(1, int(num_replicas))
    if fixed_shapes:
        widths = bucket_widths(lengths, max_length=max_length, attention_width=width)
        return bucketed_plan(lengths, widths, max_tokens=budget, max_batch=cap)
    return token_budget_plan(
        lengths, max_tokens=budget, max_batch=cap, max_length=max_length, attention_width=width
    )


def first_non_finite(
    outputs: np.ndarray, mask: np.ndarray, layers: Sequence[int] | None = None
) -> tuple[int, int] | None:
    """Where the first NaN/inf of a batch's outputs is, at real positions only.

    Args:
        outputs: ``(K, B, T, H)`` hidden states (or ``(K, B, W, H)`` word vectors).
        mask: ``(B, T)`` (or ``(B, W)``), nonzero on real wordpieces (words); padding is not
            checked.
        layers: the hidden-state index of each of the ``K`` (default ``0..K-1``).

    Returns:
        ``(layer, row)``: the lowest hidden state holding a non-finite value, and the first
        row holding one in it; None when every real position is finite (the common case
        costs one pass over ``outputs``).
    """
    if np.isfinite(outputs).all():
        return None
    bad = ~np.isfinite(outputs).all(axis=-1) & np.asarray(mask).astype(bool)[None]  # (K, B, T)
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


def _iter_runs(extractors, items, tokenizer, plan, strategy, progress, desc, sources, labels):
    """Yield ``(batch_numpy, [outputs per extractor], index)`` over the planned batches.

    Every extractor's outputs are checked for NaN/inf first (:func:`first_non_finite`);
    ``sources`` (the texts or sentences of ``items``) and ``labels`` (one per extractor)
    name them in the error.
    """
    ds = make_dataset(
        items,
        plan,
        pad_id=int(tokenizer.pad_token_id or 0),
        fixed_word_length=extractors[0].jit_compile,
    )
    if strategy is not None:
        ds = strategy.experimental_distribute_dataset(ds)
    with _progress(len(plan), progress, desc) as bar:
        for batch in ds:
            outs = []
            index = None
            for ex in extractors:
                o, index = ex.run(batch)
                outs.append(o)
            if strategy is None:
                host = {k: v.numpy() for k, v in batch.items()}
            else:  # the global batch was split by rows: concatenate the replicas' rows back
                host = {
                    k: np.concatenate([t.numpy() for t in strategy.experimental_local_results(v)])
                    for k, v in batch.items()
                }
            for ex, out, label in zip(extractors, outs, labels, strict=True):
                _check_finite(ex, out, host, index, label, sources)
            bar.update(1)
            yield host, outs, index


def _plan(items, model, max_length, batch_size, max_tokens, jit_compile, strategy):
    _check_batch_size(batch_size)
    max_tokens = DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens
    if not isinstance(max_tokens, (int, np.integer)) or max_tokens < 1:
        raise ConfigError(f"max_tokens must be a positive int, got {max_tokens!r}")
    return extraction_plan(
        [len(e) for e in items],
        model.config,
        batch_size=batch_size,
        max_tokens=max_tokens,
        fixed_shapes=bool(jit_compile),
        max_length=max_length,
        num_replicas=1 if strategy is None else strategy.num_replicas_in_sync,
    )


def _check_batch_size(batch_size: int | None) -> None:
    if batch_size is None:
        return
    if (
        not isinstance(batch_size, (int, np.integer))
        or isinstance(batch_size, bool)
        or batch_size < 1
    ):
        raise ConfigError(f"batch_size must be a positive int or None, got {batch_size!r}")


def _labels(models: list, names: Sequence[str] | None) -> list[str]:
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


def iter_batches(
    models,
    tokenizer,
    texts: Sequence[str],
    *,
    batch_size: int | None = None,
    max_tokens: int | None = None,
    layers=None,
    strategy=None,
    jit_compile: bool = False,
    progress: bool = True,
    names: Sequence[str] | None = None,
) -> Iterator[tuple[dict[str, np.ndarray], list[np.ndarray]]]:
    """Run one or more compatible models over the same length-sorted batches of ``texts``.

    Each batch is computed once per model, so comparing a base with N fine-tuned models costs
    N + 1 passes; nothing is kept after the batch is yielded (memory stays bounded).

    Args:
        models: a TFBertModel or a list of them (same layer count, width and vocabulary;
            they may have different numbers of positions: every text must fit all of them).
        tokenizer: the fast tokenizer shared by the models.
        texts: raw strings (a list of them; one bare string is refused).
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
    models = list(models) if isinstance(models, (list, tuple)) else [models]
    labels = _labels(models, names)
    _check_batch_size(batch_size)
    check_compatible(models[0], models[1:], tokenizer)
    check_not_string(texts, "texts")
    texts = list(texts)
    limits = [max_model_length(tokenizer, m) for m in models]
    smallest = int(np.argmin(limits))
    limited_by = None if len(set(limits)) == 1 else f"model {labels[smallest]}"
    items = encode_texts(tokenizer, texts, max_length=limits[smallest], limited_by=limited_by)
    if not items:
        return
    plan = _plan(items, models[0], limits[smallest], batch_size, max_tokens, jit_compile, strategy)
    extractors = [
        get_extractor(m, layers=layers, jit_compile=jit_compile, strategy=strategy) for m in models
    ]
    for host, outs, index in _iter_runs(
        extractors, items, tokenizer, plan, strategy, progress, "hidden states", texts, labels
    ):
        host["index"] = index
        yield host, outs


def hidden_states(
    model,
    tokenizer,
    texts: Sequence[str],
    *,
    batch_size: int | None = None,
    max_tokens: int | None = None,
    layers=None,
    strategy=None,
    jit_compile: bool = False,
    progress: bool = True,
) -> list[np.ndarray]:
    """Hidden states of every text, all layers, the wordpieces the model sees.

    Args:
        model: a ``TFBertModel`` (see :func:`bert_repro.models.load_bert`).
        tokenizer: its fast tokenizer.
        texts: raw strings; each must fit the model (else :class:`InputTooLongError` names it).
        batch_size: at most this many texts a batch (``None``: only ``max_tokens`` limits).
        max_tokens: padded wordpieces a batch may hold (its memory; default
            :data:`~bert_repro.batching.DEFAULT_MAX_TOKENS`). Which texts share a
            batch is planned over the texts sorted by length to compute little padding
            (:func:`extraction_plan`); the results do not depend on the batching.
        layers: hidden-state indices to keep (0 = embedding output); default all.
        strategy: optional ``tf.distribute.Strategy`` (load the model in its scope).
        jit_compile: XLA-compile the forward pass; batches are then padded to a few lengths
            tuned to the data, so few shapes compile (worth it on GPUs and for long runs).
        progress: show a progress bar for runs of more than one batch.

    Returns:
        One ``(K, n_wordpieces, hidden)`` float32 array per text, in input order, where
        ``K = num_hidden_layers + 1`` (or ``len(layers)``) and the wordpieces include
        ``[CLS]`` and ``[SEP]``; no padding.

    Raises:
        DataError: ``texts`` is one string, not a list of them.
        InputTooLongError: a text does not fit the model.
        ModelError: the model gives NaN/inf hidden states (named with the layer and text).
    """
    result: list[np.ndarray | None] = [None] * len(texts)
    for batch, (out,) in iter_batches(
        model,
        tokenizer,
        texts,
        batch_size=batch_size,
        max_tokens=max_tokens,
        layers=layers,
        strategy=strategy,
        jit_compile=jit_compile,
        progress=progress,
    ):
        lengths = batch["attention_mask"].sum(axis=1)
        for row, i in enumerate(batch["index"]):
            result[int(i)] = np.ascontiguousarray(out[:, row, : lengths[row]])
    return result  # type: ignore[return-value]


def iter_word_batches(
    model,
    tokenizer,
    sentences: Sequence[Sequence[str]],
    *,
    batch_size: int | None = None,
    max_tokens: int | None = None,
    layers=None,
    strategy=None,
    jit_compile: bool = False,
    progress: bool = True,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Word vectors of pre-split sentences, batch by batch (bounded memory).

    Yields:
        ``(index, n_words, vectors)``: sentence positions ``(B,)``, their word counts ``(B,)``
        and ``(K, B, W, H)`` word vectors (mean of each word's wordpieces; ``[CLS]``/``[SEP]``
        excluded; rows beyond a sentence's word count are padding).
    """
    _check_batch_size(batch_size)
    check_compatible(model, [], tokenizer)  # ids beyond the vocabulary fail inside TF otherwise
    sentences = as_word_lists(sentences)
    limit = max_model_length(tokenizer, model)
    items = encode_words(tokenizer, sentences, max_length=limit)
    if not items:
        return
    plan = _plan(items, model, limit, batch_size, max_tokens, jit_compile, strategy)
    ex = get_extractor(model, layers=layers, words=True, jit_compile=jit_compile, strategy=strategy)
    labels = _labels([model], None)
    for _, (out,), index in _iter_runs(
        [ex], items, tokenizer, plan, strategy, progress, "word features", sentences, labels
    ):
        n_words = np.array([items[int(i)].n_words for i in index], dtype=np.int64)
        yield index, n_words, out


def word_features(
    model,
    tokenizer,
    sentences: Sequence[Sequence[str]],
    *,
    batch_size: int | None = None,
    max_tokens: int | None = None,
    layers=None,
    strategy=None,
    jit_compile: bool = False,
    progress: bool = True,
) -> list[np.ndarray]:
    """Word-level features of pre-split sentences (e.g. CoNLL-U words), all layers.

    Each word's vector is the mean of its wordpieces' vectors; ``[CLS]`` and ``[SEP]`` are
    excluded (Hewitt & Manning 2019 align subwords to words the same way).

    Returns:
        One ``(K, n_words, hidden)`` float32 array per sentence, in input order.
    """
    result: list[np.ndarray | None] = [None] * len(sentences)
    for index, n_words, out in iter_word_batches(
        model,
        tokenizer,
        sentences,
        batch_size=batch_size,
        max_tokens=max_tokens,
        layers=layers,
        strategy=strategy,
        jit_compile=jit_compile,
        progress=progress,
    ):
        for row, i in enumerate(index):
            result[int(i)] = np.ascontiguousarray(out[:, row, : n_words[row]])
    return result  # type: ignore[return-value]
