"""``bert-repro embeddings {similarity,norms,decompose,classify}``: thin wrappers over the library.

Each command writes its results as JSON (with the resolved settings, versions and wall time),
tables as CSV, and plotly figures (HTML, PNG when a browser engine is present) into ``--out``.
Heavy modules (TensorFlow, transformers) are imported inside the handlers only.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from ..cli import seed

DEFAULT_OUT = Path("runs") / "embeddings"


def _recipe(text: str):
    """A recipe name, or an int layer index written as digits (``-1``, ``0``, ``7``)."""
    return int(text) if re.fullmatch(r"-?\d+", text.strip()) else text.strip()


def _common(p: argparse.ArgumentParser, name: str) -> None:
    p.add_argument(
        "--model",
        default=None,
        help="model folder or hub name (default: the shipped all-MiniLM-L6-v2)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT / name,
        help=f"output folder (default: {DEFAULT_OUT / name})",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="at most this many texts a forward pass (default: a budget of padded wordpieces)",
    )


def add_parser(subparsers) -> None:
    """Register ``embeddings`` and its four subcommands on the main ``bert-repro`` parser."""
    parser = subparsers.add_parser(
        "embeddings",
        help="word/sentence embeddings: similarity, norms, input-embedding split, classifier",
        description="Word and sentence embedding studies on frozen BERT.",
    )
    sub = parser.add_subparsers(dest="embeddings_command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "similarity",
        help="cosine similarity of a word's occurrences and of sentences",
        description="Cosine similarity between every occurrence of each --word in the texts "
        "(word vectors by --strategy) and between the texts as sentences (cls, mean, pooler).",
    )
    p.add_argument("--text", action="append", default=[], help="a text (repeatable)")
    p.add_argument(
        "--texts",
        default=None,
        help="a text source: FILE.txt, FILE.conllu, csv:PATH:COLUMN (see bert_repro.text)",
    )
    p.add_argument("--limit", type=int, default=None, help="use the first N texts of --texts")
    p.add_argument("--word", action="append", default=[], help="a word to compare (repeatable)")
    p.add_argument(
        "--strategy",
        type=_recipe,
        default="last_layer",
        help="word-vector recipe: first_layer, last_layer, sum_all, sum_last4, concat_last4, "
        "mean_last4, or an int layer index (0 = embedding output)",
    )
    p.add_argument("--pooling", default="mean", help="subword pooling: mean, first, last")
    p.add_argument(
        "--sentence",
        nargs="+",
        default=["cls", "mean", "pooler"],
        help="sentence vectors to compare: cls mean pooler",
    )
    _common(p, "similarity")
    p.set_defaults(func=run_similarity)

    p = sub.add_parser(
        "norms",
        help="norms of embedding rows, mean hidden states and pooler outputs (seed 000)",
        description="For each word of a CSV with word (or words) and definition columns: the "
        "norm of its embedding-layer row, of its definition's mean last hidden state and of "
        "its definition's pooler output; a describe() table and a figure.",
    )
    p.add_argument("--csv", required=True, type=Path, help="CSV with word(s),definition")
    p.add_argument("--limit", type=int, default=None, help="use the first N words only")
    _common(p, "norms")
    p.set_defaults(func=run_norms)

    p = sub.add_parser(
        "decompose",
        help="split the input embedding into token + segment + position, then LayerNorm",
        description="Token, segment and position embeddings of a text, their sum and its "
        "LayerNorm, checked against hidden_states[0].",
    )
    p.add_argument("--text", required=True, help="the text (sentence A)")
    p.add_argument("--pair", default=None, help="optional sentence B (segment id 1)")
    _common(p, "decompose")
    p.set_defaults(func=run_decompose)

    p = sub.add_parser(
        "classify",
        help="linear classifier on frozen [CLS]/mean features (AG News, seed 004)",
        description="Extract sentence features once, split the data (seeded, stratified), "
        "train a Keras head per feature kind with fit, report held-out accuracy.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--csv", type=Path, help="CSV with label and title,description (or text)")
    src.add_argument("--tfds-split", help="tfds ag_news_subset split, e.g. test or train[:10%%]")
    p.add_argument("--data-dir", default=None, help="tfds data_dir (with --tfds-split)")
    p.add_argument("--limit", type=int, default=None, help="use the first N rows only")
    p.add_argument("--features", nargs="+", default=["cls", "mean"], help="cls mean pooler")
    p.add_argument("--strategy", type=_recipe, default="last_layer", help="layer recipe")
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--max-length", type=int, default=128, help="wordpieces per text (cut)")
    p.add_argument("--epochs", type=int, default=50, help="at most (early stopping)")
    p.add_argument("--hidden-units", type=int, default=0, help="0 = linear head")
    p.add_argument("--learning-rate", type=float, default=1e-3)
    _common(p, "classify")
    p.set_defaults(func=run_classify)


def _load(args):
    from ..models import load_bert

    return load_bert(args.model)


def _check_common(args) -> None:
    """Options every subcommand has, checked before any data or model is read."""
    from ..errors import check_positive
    from ..io import check_out_dir
    from ..models import model_config

    check_positive("--batch-size", args.batch_size, optional=True)
    check_positive("--limit", getattr(args, "limit", None), optional=True)
    check_out_dir(args.out)
    model_config(args.model)  # a missing model folder fails now, not after reading the data


def _write_json(out: Path, name: str, settings: dict, results: dict, started: float) -> Path:
    from ..io import atomic_write_json, run_metadata

    meta = run_metadata(**settings)
    meta["wall_time_s"] = round(time.perf_counter() - started, 2)
    return atomic_write_json(out / name, {**meta, **results})


def _settings(args) -> dict:
    return {k: v for k, v in vars(args).items() if k != "func"}


def run_similarity(args) -> int:
    from ..errors import DataError, check_choice
    from ..io import save_figure
    from ..ops import SUBWORD_POOLINGS
    from ..text import load_texts
    from .figures import similarity_heatmap
    from .recipes import check_recipe
    from .sentences import SENTENCE_POOLINGS
    from .similarity import occurrence_similarity, sentence_similarity

    started = time.perf_counter()
    check_recipe(args.strategy)
    check_choice("--pooling", args.pooling, SUBWORD_POOLINGS)
    for how in args.sentence:
        check_choice("--sentence", how, SENTENCE_POOLINGS)
    for word in args.word:
        if not word.strip():
            raise DataError(f"--word {word!r} is blank")
    _check_common(args)
    texts = list(args.text)
    if args.texts:
        texts += list(load_texts(args.texts, n=args.limit))
    if not texts:
        raise DataError("no texts: give --text (repeatable) or --texts SOURCE")
    model, tokenizer = _load(args)
    results: dict = {"texts": texts, "words": {}, "sentences": {}}
    for word in args.word:
        occ, matrix = occurrence_similarity(
            model,
            tokenizer,
            texts,
            word,
            args.strategy,
            pooling=args.pooling,
            batch_size=args.batch_size,
        )
        results["words"][word] = {
            "pieces": list(occ.pieces),
            "occurrences": [
                {"text": int(t), "positions": p.tolist()}
                for t, p in zip(occ.text_index, occ.positions, strict=True)
            ],
            "similarity": matrix,
        }
        save_figure(
            similarity_heatmap(
                matrix, occ.labels(), title=f"{word!r} occurrences ({args.strategy})"
            ),
            args.out / f"word_{re.sub(r'[^A-Za-z0-9_-]+', '_', word)}",
        )
        print(f"{word!r}: {len(occ)} occurrence(s)")
        if len(occ) > 1:
            print("  similarity:", " ".join(f"{v:.4f}" for v in matrix[0, 1:]), "(first vs rest)")
    if len(texts) > 1 and args.sentence:
        sims = sentence_similarity(
            model, tokenizer, texts, hows=args.sentence, batch_size=args.batch_size
        )
        labels = [f"text {i}" for i in range(len(texts))]
        for how, matrix in sims.items():
            results["sentences"][how] = matrix
            save_figure(
                similarity_heatmap(matrix, labels, title=f"sentence similarity ({how})"),
                args.out / f"sentences_{how}",
            )
            print(f"sentences ({how}): text 0 vs 1 = {matrix[0, 1]:.4f}")
    path = _write_json(args.out, "similarity.json", _settings(args), results, started)
    print(f"wrote {path}")
    return 0


def run_norms(args) -> int:
    from ..io import atomic_write_text, save_figure
    from .figures import norms_figure
    from .norms import describe_norms, norms_study, read_word_definitions

    started = time.perf_counter()
    _check_common(args)
    table = read_word_definitions(args.csv, limit=args.limit)
    model, tokenizer = _load(args)
    norms = norms_study(model, tokenizer, table, batch_size=args.batch_size, progress=True)
    summary = describe_norms(norms)
    atomic_write_text(args.out / "norms.csv", norms.to_csv(index=False))
    atomic_write_text(args.out / "norms_describe.csv", summary.to_csv())
    save_figure(norms_figure(norms), args.out / "norms")
    results = {"n_words": len(norms), "describe": summary.to_dict()}
    path = _write_json(args.out, "norms.json", _settings(args), results, started)
    print(summary.to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"wrote {path}")
    return 0


def run_decompose(args) -> int:
    import numpy as np

    from ..errors import DataError
    from ..io import atomic_write_text, save_figure
    from .decompose import decompose_text, max_abs_difference
    from .figures import decomposition_figure

    started = time.perf_counter()
    for flag, text in (("--text", args.text), ("--pair", args.pair)):
        if text is not None and not text.strip():
            raise DataError(f"{flag} is blank: give a text to decompose")
    _check_common(args)
    model, tokenizer = _load(args)
    parts = decompose_text(model, tokenizer, args.text, args.pair)
    if args.pair is None:
        from ..features import hidden_states

        h0 = hidden_states(model, tokenizer, [args.text], layers=[0], progress=False)[0][0]
    else:  # two segments: the foundation encodes single texts; ask the embedding layer itself
        enc = tokenizer(args.text, args.pair, return_tensors="tf")
        h0 = model.bert.embeddings(
            input_ids=enc["input_ids"], token_type_ids=enc["token_type_ids"], training=False
        ).numpy()[0]
    diff = max_abs_difference(parts, h0)
    norms = parts.norms()
    rows = ["position,token," + ",".join(norms)]
    for i, tok in enumerate(parts.tokens):
        rows.append(f"{i},{tok!r}," + ",".join(f"{norms[k][i]:.6f}" for k in norms))
    atomic_write_text(args.out / "decompose.csv", "\n".join(rows) + "\n")
    save_figure(decomposition_figure(parts), args.out / "decompose")
    results = {
        "tokens": list(parts.tokens),
        "norms": {k: np.round(v, 6) for k, v in norms.items()},
        "max_abs_difference_vs_hidden_states_0": diff,
    }
    path = _write_json(args.out, "decompose.json", _settings(args), results, started)
    print(f"{len(parts.tokens)} wordpieces; max |LayerNorm(sum) - hidden_states[0]| = {diff:.2e}")
    print(f"wrote {path}")
    return 0


def run_classify(args) -> int:
    from ..errors import ConfigError, check_choice, check_positive
    from ..io import save_figure
    from .classifier import (
        check_splittable,
        classify_study,
        load_ag_news_tfds,
        read_labeled_csv,
    )
    from .figures import confusion_figure, training_figure
    from .recipes import check_recipe
    from .sentences import SENTENCE_POOLINGS

    started = time.perf_counter()
    for kind in args.features:
        check_choice("--features", kind, SENTENCE_POOLINGS)
    check_recipe(args.strategy)
    if not 0.0 < args.test_fraction < 1.0:
        raise ConfigError(f"--test-fraction must be between 0 and 1, got {args.test_fraction}")
    check_positive("--max-length", args.max_length, minimum=3)  # [CLS] + a piece + [SEP]
    check_positive("--epochs", args.epochs)
    check_positive("--hidden-units", args.hidden_units, minimum=0)
    if not args.learning_rate > 0:
        raise ConfigError(f"--learning-rate must be positive, got {args.learning_rate}")
    _check_common(args)
    if args.csv is not None:
        data = read_labeled_csv(args.csv, limit=args.limit)
    else:
        data = load_ag_news_tfds(args.tfds_split, data_dir=args.data_dir, limit=args.limit)
    check_splittable(data, args.test_fraction)  # a label too rare to split fails before the model
    model, tokenizer = _load(args)
    study = classify_study(
        model,
        tokenizer,
        data,
        features=args.features,
        strategy=args.strategy,
        test_fraction=args.test_fraction,
        seed=args.seed,
        max_length=args.max_length,
        batch_size=args.batch_size,
        epochs=args.epochs,
        hidden_units=args.hidden_units,
        learning_rate=args.learning_rate,
        progress=True,
    )
    for kind, res in study["results"].items():
        save_figure(
            confusion_figure(res["confusion"], study["class_names"], title=f"{kind} features"),
            args.out / f"confusion_{kind}",
        )
        per = ", ".join(f"{k} {v:.3f}" for k, v in res["per_class"].items())
        print(f"{kind}: accuracy {res['accuracy']:.4f} on {res['n']} held-out texts ({per})")
    save_figure(
        training_figure({k: r["history"] for k, r in study["results"].items()}),
        args.out / "training",
    )
    path = _write_json(args.out, "classify.json", _settings(args), study, started)
    print(f"wrote {path}")
    return 0
