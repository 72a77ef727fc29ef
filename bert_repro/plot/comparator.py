"""Compare a base BERT with fine-tuned copies layer by layer, over the same text, in one pass.

Merchant, Rahimtoroghi, Pavlick & Tenney, "What Happens To BERT Embeddings During
Fine-tuning?" (BlackboxNLP 2020), sections 4-5: token-level cosine similarity of hidden
states, RSA and linear CKA between a pre-trained model and its fine-tuned versions.

**Cosine** (per model, per layer ``k``): for text ``i`` let ``S_i`` be its counted wordpiece
positions -- all its wordpieces except ``[CLS]`` and ``[SEP]`` (included when
``include_special``), never padding. Then::

    cos_k = (1 / N) * sum_i (1 / |S_i|) * sum_{t in S_i} cos(h^base_{k,i,t}, h^ft_{k,i,t})

a mean over the wordpieces of each text, then over the ``N`` texts (texts with no counted
wordpiece are left out and counted in ``n_without_tokens``).

**RSA and CKA** are computed on a uniform random sample of ``sample_tokens`` counted wordpiece
positions of the whole corpus (seeded by ``seed``; the same positions for every model and
layer, independent of batching: :class:`~bert_repro.plot.sampling.TokenSample`). With ``X``,
``Y`` the ``(n, H)`` vectors of the sampled tokens in the base's and the fine-tuned model's
layer ``k``: RSA is the correlation (Pearson, or Spearman with ``rsa_method``) of the
strictly-upper triangles of their token-by-token cosine-similarity matrices, and CKA is linear
CKA (Kornblith et al. 2019), see :mod:`bert_repro.plot.similarity`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from ..errors import ConfigError, DataError, ModelError, check_choice
from ..features import iter_batches, length_limit, model_labels
from ..models import as_fast_tokenizer, check_compatible
from ..pipeline import EncodedCorpus, encode_corpus
from ..settings import ExtractionSettings
from ..text import iter_texts
from .result import ComparisonResult
from .sampling import TokenSample
from .similarity import (
    RSA_METHODS,
    RsaMethod,
    correlation,
    linear_cka,
    upper_triangle,
)
from .tally import CosineTally

TooLong = Literal["error", "skip"]
TOO_LONG: tuple[str, ...] = ("error", "skip")


def _named_models(finetuned) -> dict[str, object]:
    """``{name: model}`` from one model, a list of models or a dict name -> model."""
    if isinstance(finetuned, Mapping):
        models = {str(k): v for k, v in finetuned.items()}
    elif isinstance(finetuned, Sequence) and not isinstance(finetuned, (str, bytes)):
        models = {f"finetuned_{i + 1}": m for i, m in enumerate(finetuned)}
    else:
        models = {"finetuned": finetuned}
    if not models:
        raise ModelError("no fine-tuned model given: pass a model, a list or a dict name -> model")
    for name, model in models.items():
        if not hasattr(model, "config"):
            raise ModelError(f"{name} is a {type(model).__name__}, not a transformers TFBertModel")
    return models


def special_token_mask(attention_mask: np.ndarray) -> np.ndarray:
    """``(B, T)`` True on each row's ``[CLS]`` (first) and ``[SEP]`` (last real) position.

    Texts are encoded as ``[CLS] pieces [SEP]`` and right-padded, so the specials are found by
    position (a text containing the literal string "[SEP]" does not confuse it).
    """
    m = np.asarray(attention_mask).astype(bool)
    out = np.zeros_like(m)
    lengths = m.sum(axis=1)
    rows = np.flatnonzero(lengths > 0)
    out[rows, 0] = True
    out[rows, lengths[rows] - 1] = True
    return out


def check_names(finetuned: Sequence[str] | Mapping[str, object]) -> None:
    """Fine-tuned models' names must be unique and not ``"base"`` (results are keyed by them).

    Raises:
        ConfigError: listing the names given.
    """
    names = list(finetuned)
    if not names or len(set(names)) != len(names) or "base" in names:
        raise ConfigError(f"fine-tuned model names must be unique and not 'base'; got {names}")


def _limit(limit: int | None, n_samples: int | None) -> int | None:
    """``limit``, or the old keyword ``n_samples`` when given; checked."""
    if n_samples is not None:
        warnings.warn("n_samples= is now limit=", DeprecationWarning, stacklevel=3)
        limit = n_samples
    if limit is not None and (
        not isinstance(limit, (int, np.integer)) or isinstance(limit, bool) or limit < 1
    ):
        raise ConfigError(f"limit must be a positive int or None, got {limit!r}")
    return limit


class BertComparator:
    """Layer-wise similarity of a base BERT and one or more fine-tuned copies.

    Args:
        bert_base: the pre-trained ``TFBertModel``.
        bert_finetune: a fine-tuned ``TFBertModel``, a list of them, or a dict name -> model.
            Every model must have the base's layer count, width and vocabulary.
        tokenizer: the tokenizer shared by all models (the base's).
        settings: how the models run (:class:`~bert_repro.settings.ExtractionSettings`:
            token budget, batch cap, XLA, ``tf.distribute`` strategy, progress bar);
            ``options`` replace some of its fields (``progress=False``, ``max_batch=3``, ...).

    Raises:
        ModelError: the models differ in layer count, width or vocabulary (checked here,
            before any work). They may differ in their number of positions: every text must
            then fit the smallest (a longer one is named with that model).
    """

    def __init__(
        self,
        bert_base,
        bert_finetune,
        tokenizer,
        *,
        settings: ExtractionSettings | None = None,
        **options,
    ):
        if not hasattr(bert_base, "config"):
            raise ModelError(f"the base is a {type(bert_base).__name__}, not a TFBertModel")
        self.base = bert_base
        self.finetuned = _named_models(bert_finetune)
        self.tokenizer = as_fast_tokenizer(tokenizer)
        self.settings = ExtractionSettings.create(settings, **options)
        self.fingerprints: dict[str, str] = {}  # filled by :meth:`load`
        self.sources: dict[str, str | None] = {}  # filled by :meth:`load`
        check_compatible(
            bert_base, list(self.finetuned.values()), self.tokenizer, names=list(self.finetuned)
        )

    @classmethod
    def load(
        cls,
        base: str | os.PathLike | None,
        finetuned: Mapping[str, str | os.PathLike],
        *,
        settings: ExtractionSettings | None = None,
        **options,
    ) -> BertComparator:
        """Load a base and fine-tuned models by folder or hub name and compare them.

        Every model's config is read first (a missing or broken model fails before any
        weights load), the models are loaded in ``settings``' precision (in its strategy's
        scope), and each fine-tune's tokenizer must be the base's (else its token ids would
        mean other wordpieces). ``fingerprints`` holds each model's content hash.

        Args:
            base: the base model (``None``: the offline default).
            finetuned: ``{name: folder or hub name}``; names unique and not ``"base"``.

        Raises:
            ConfigError: bad names. ModelError: a model cannot be loaded, or its tokenizer or
                shape differs from the base's.
        """
        from ..models import load_bert, model_config, model_fingerprint, tokenizer_fingerprint

        check_names(finetuned)
        settings = ExtractionSettings.create(settings, **options)
        for source in (base, *finetuned.values()):
            model_config(source)
        load = {"strategy": settings.strategy, "precision": settings.precision}
        base_model, tokenizer = load_bert(base, **load)
        models, fingerprints = {}, {"base": model_fingerprint(base_model)}
        for name, source in finetuned.items():
            model, tok = load_bert(source, **load)
            if tokenizer_fingerprint(tok) != tokenizer_fingerprint(tokenizer):
                raise ModelError(
                    f"{name} ({source}) has a different tokenizer from the base: its token ids "
                    "would not mean the same wordpieces"
                )
            models[name], fingerprints[name] = model, model_fingerprint(model)
        comparator = cls(base_model, models, tokenizer, settings=settings)
        comparator.fingerprints = fingerprints
        comparator.sources = {"base": base, **finetuned}
        return comparator

    def model_entries(self) -> dict[str, dict]:
        """``{name: {"path", "fingerprint"}}`` of the models (``meta["models"]`` of the
        results; the sources are known when the comparator was made by :meth:`load`)."""
        from ..outputs import model_entry

        sources = self.sources
        models = {"base": self.base, **self.finetuned}
        return {
            name: model_entry(
                sources.get(name), model=model, fingerprint=self.fingerprints.get(name)
            )
            if name in sources
            else {"path": None, "fingerprint": self.fingerprints.get(name)}
            for name, model in models.items()
        }

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.finetuned)

    def _select_texts(
        self, data, limit: int | None, too_long: str
    ) -> tuple[EncodedCorpus, np.ndarray, int]:
        """The first ``limit`` texts, tokenised once, minus too-long ones when skipping.

        Returns:
            ``(corpus, source_index, n_skipped)``: ``source_index[i]`` is text i's position
            among the first ``limit`` texts of the source.
        """
        corpus = encode_corpus(self.tokenizer, list(iter_texts(data, limit)), words=False)
        if not len(corpus):
            raise DataError("the text source is empty: there is nothing to compare")
        models = [self.base, *self.finetuned.values()]
        labels = model_labels(models, ("base", *self.names))
        limit, limited_by = length_limit(self.tokenizer, models, labels)
        if too_long == "error":
            corpus.check_fits(limit, limited_by)
            return corpus, np.arange(len(corpus)), 0
        bad = corpus.too_long(limit)
        if bad.size:
            warnings.warn(
                f"skipping {bad.size} of {len(corpus)} texts longer than {limit} wordpieces, "
                "the most every model accepts (too_long='skip')",
                stacklevel=3,
            )
        if bad.size == len(corpus):
            raise DataError(
                f"all {len(corpus)} texts are longer than the {limit} wordpieces every model "
                "accepts"
            )
        keep = np.setdiff1d(np.arange(len(corpus)), bad)
        return corpus.subset(keep), keep, int(bad.size)

    def compare(
        self,
        data,
        limit: int | None = 5000,
        *,
        include_special: bool = False,
        sample_tokens: int = 2000,
        seed: int = 0,
        rsa_method: RsaMethod = "pearson",
        too_long: TooLong = "error",
        n_samples: int | None = None,
    ) -> ComparisonResult:
        """Cosine, RSA and linear CKA per layer for every fine-tuned model, in one pass (the
        definitions: :mod:`bert_repro.plot.comparator`).

        Every model runs over the same batches; the base is computed once per batch.

        Args:
            data: the texts: a wiki40b split (dict examples with ``text``: its paragraphs,
                extracted from the article markup), a ``tf.data`` dataset of strings or a list
                of strings (:func:`bert_repro.text.iter_texts`).
            limit: number of texts to use, the first ones of the source (all when None;
                ``n_samples=`` is still accepted for it).
            include_special: count ``[CLS]`` and ``[SEP]`` in the cosine average and sample.
            sample_tokens: size of the token sample for RSA/CKA; 0 skips them.
            seed: seed of the token sample.
            rsa_method: ``"pearson"`` (as Merchant et al.) or ``"spearman"``.
            too_long: a text longer than any of the models accepts raises
                :class:`~bert_repro.errors.InputTooLongError` naming it (``"error"``), or is
                left out and counted in ``n_skipped_too_long`` with a warning (``"skip"``).

        Returns:
            A :class:`ComparisonResult` (``.cosine``, ``.rsa``, ``.cka`` of shape
            ``(n_models, num_layers + 1)``; ``.to_frame()``, ``.figure()``, ``.save()``).

        Raises:
            DataError: the source is empty, or no text has a wordpiece to compare.
            InputTooLongError: a text is too long for one of the models and
                ``too_long="error"``.
            ModelError: a model gives NaN or inf hidden states (a broken checkpoint, or an
                overflow in half precision), named with the hidden state and the text.
        """
        check_choice("too_long", too_long, TOO_LONG)
        check_choice("rsa_method", rsa_method, RSA_METHODS)
        limit = _limit(limit, n_samples)
        corpus, source_index, n_skipped = self._select_texts(data, limit, too_long)
        tally = self._cosine_pass(corpus, source_index, include_special, sample_tokens, seed)
        similarity = (
            self._sample_similarity(tally.sample, rsa_method) if sample_tokens else (None, None)
        )
        asked = dict(limit=limit, include_special=include_special, sample_tokens=sample_tokens)
        asked.update(seed=seed, rsa_method=rsa_method, too_long=too_long)
        return self._result(tally, similarity, n_skipped, asked)

    def _result(
        self, tally: CosineTally, similarity: tuple, n_skipped: int, asked: dict
    ) -> ComparisonResult:
        """The :class:`ComparisonResult` of a pass: ``similarity`` is ``(rsa, cka)`` (or
        ``(None, None)``), its ``settings`` what was ``asked``, how the models ran and which
        models."""
        rsa_values, cka_values = similarity
        settings = {
            **asked,
            "max_batch": self.settings.max_batch,
            "max_tokens": self.settings.max_tokens,
            "precision": self.settings.precision,
            "jit_compile": self.settings.jit_compile,
            "models": list(self.names),
        }
        return ComparisonResult(
            names=self.names,
            cosine=tally.cos_sum / tally.n_texts,
            rsa=rsa_values,
            cka=cka_values,
            n_texts=tally.n_texts,
            n_tokens=tally.n_tokens,
            n_sampled_tokens=tally.sample.filled,
            n_skipped_too_long=n_skipped,
            n_without_tokens=tally.n_without,
            settings=settings,
        )

    def _cosine_pass(
        self,
        corpus: EncodedCorpus,
        source_index: np.ndarray,
        include_special: bool,
        sample_tokens: int,
        seed: int,
    ) -> CosineTally:
        """One pass of every model over ``corpus``: the cosine sums and counts, and the
        token sample (``sample_tokens`` positions, seeded by ``seed``).

        Raises:
            DataError: no text has a wordpiece to compare.
        """
        models = [self.base, *self.finetuned.values()]
        n_states = int(self.base.config.num_hidden_layers) + 1
        tally = CosineTally.empty(len(self.finetuned), n_states, sample_tokens, seed)
        for batch, outputs in iter_batches(
            models, self.tokenizer, corpus, settings=self.settings, names=("base", *self.names)
        ):
            mask = batch["attention_mask"].astype(bool)  # (B, T)
            if not include_special:
                mask = mask & ~special_token_mask(mask)
            tally.add(outputs, mask, source_index[batch["index"]])
        if tally.n_texts == 0:
            raise DataError(
                f"none of the {len(corpus)} texts has a wordpiece to compare "
                "(they are empty once [CLS]/[SEP] are left out)"
            )
        return tally

    def _sample_similarity(self, sample: TokenSample, method: str) -> tuple[np.ndarray, np.ndarray]:
        """``(rsa, cka)`` of shape ``(M, L+1)`` on the token sample (NaN if < 2 tokens)."""
        from ..ops import pairwise_cosine

        n_states = int(self.base.config.num_hidden_layers) + 1
        rsa_values = np.full((len(self.finetuned), n_states), np.nan)
        cka_values = np.full((len(self.finetuned), n_states), np.nan)
        if sample.filled < 2:
            warnings.warn(
                f"only {sample.filled} token(s) sampled: RSA and CKA are undefined (NaN)",
                stacklevel=3,
            )
            return rsa_values, cka_values
        vectors = sample.vectors()  # (M+1, K, n, H)
        for k in range(n_states):
            base_sim = upper_triangle(pairwise_cosine(vectors[0, k]))  # computed once per layer
            for m in range(1, vectors.shape[0]):
                ft = vectors[m, k]
                rsa_values[m - 1, k] = correlation(
                    base_sim, upper_triangle(pairwise_cosine(ft)), method
                )
                cka_values[m - 1, k] = linear_cka(vectors[0, k], ft)
        return rsa_values, cka_values

    def get_layer_cos_sim_in_data(
        self,
        data,
        limit: int | None = 5000,
        *,
        include_special: bool = False,
        too_long: TooLong = "error",
        n_samples: int | None = None,
    ) -> np.ndarray:
        """Token-averaged cosine similarity per layer, base vs the (first) fine-tuned model.

        Definition (see :meth:`compare`): per layer, the cosine similarity of the two models'
        vectors for the same wordpiece, averaged over the wordpieces of each text, then over
        the first ``limit`` texts of ``data`` (``n_samples=`` is still accepted); padding is never counted, ``[CLS]``/``[SEP]``
        only with ``include_special=True``. ``data`` is a tfds wiki40b split (its paragraphs
        are the texts), a ``tf.data`` dataset of strings or a list of strings.

        Returns:
            ``(num_layers + 1,)`` float64; index 0 is the embedding output.
        """
        result = self.compare(
            data,
            _limit(limit, n_samples),
            include_special=include_special,
            sample_tokens=0,
            too_long=too_long,
        )
        return result.cosine[0]
