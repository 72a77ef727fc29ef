"""``bert-repro embeddings {similarity,norms,decompose,classify}``: parse, call the study, save.

Each command checks its options with the study's own check (before any model is loaded), runs
the study (:func:`~bert_repro.embeddings.similarity_study`,
:func:`~bert_repro.embeddings.norms_study`, :func:`~bert_repro.embeddings.decompose_study`,
:func:`~bert_repro.embeddings.classify_study`) and saves its result object into ``--out``:
``results.json`` (``meta``: command line, settings, versions, model; ``rows``: the study's table;
``summary``: the rest), ``results.csv`` and plotly figures in ``figures/`` (HTML, PNG when a
browser engine is present). A non-empty ``--out`` is refused unless ``--overwrite`` is given. Choices (``--recipe``, ``--pooling``,
``--sentence``, ``--features``) come from the library's ``Literal`` types. Heavy modules
(TensorFlow, transformers) are imported inside the handlers only.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import get_args

from ..cli_options import (
    add_limit,
    add_model,
    add_out,
    add_run_options,
    add_seed,
    add_tfds_data_dir,
    command_group,
    extraction_settings,
    hidden_alias,
)
from ..ops import SubwordPooling
from .recipes import RecipeName, parse_recipe
from .sentences import SentencePooling

DEFAULT_OUT = Path("runs") / "embeddings"
RECIPE_HELP = (
    f"word-vector recipe: {', '.join(get_args(RecipeName))}, or an int layer index "
    "(0 = embedding output, -1 = last layer)"
)


def recipe_arg(text: str):
    """argparse type of ``--recipe``: a recipe name or an int layer index
    (:func:`~bert_repro.embeddings.recipes.parse_recipe`)."""
    from ..errors import ConfigError

    try:
        return parse_recipe(text)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _common(p: argparse.ArgumentParser, name: str) -> None:
    add_model(p)
    add_out(p, str(DEFAULT_OUT / name))
    add_run_options(p, old_batch_size=True)


def add_parser(subparsers) -> None:
    """Register ``embeddings`` and its four subcommands on the main ``bert-repro`` parser."""
    sub = command_group(
        subparsers,
        "embeddings",
        help="word/sentence embeddings: similarity, norms, input-embedding split, classifier",
        description="Word and sentence embedding studies on frozen BERT.",
        metavar="COMMAND",
    )

    p = sub.add_parser(
        "similarity",
        help="cosine similarity of a word's occurrences and of sentences",
        description="Cosine similarity between every occurrence of each --word in the texts "
        "(word vectors by --recipe) and between the texts as sentences (cls, mean, pooler).",
    )
    p.add_argument("--text", action="append", default=[], help="a text (repeatable)")
    p.add_argument(
        "--texts",
        default=None,
        help="a text source: FILE.txt, FILE.conllu, csv:PATH:COLUMN (see bert_repro.text)",
    )
    add_limit(p, "texts of --texts")
    p.add_argument("--word", action="append", default=[], help="a word to compare (repeatable)")
    p.add_argument(
        "--recipe", type=recipe_arg, default="last_layer", metavar="RECIPE", help=RECIPE_HELP
    )
    p.add_argument(
        "--pooling",
        choices=get_args(SubwordPooling),
        default="mean",
        help="how a word of several wordpieces becomes one vector (default: mean)",
    )
    p.add_argument(
        "--sentence",
        nargs="+",
        choices=get_args(SentencePooling),
        default=list(get_args(SentencePooling)),
        help="sentence vectors to compare (default: all)",
    )
    _common(p, "similarity")
    p.set_defaults(func=run_similarity)

    p = sub.add_parser(
        "norms",
        help="the norms study: norms of embedding rows, mean hidden states and pooler outputs",
        description="For each word of a CSV with word (or words) and definition columns: the "
        "norm of its embedding-layer row, of its definition's mean last hidden state and of "
        "its definition's pooler output; a describe() table and a figure.",
    )
    p.add_argument("--csv", required=True, type=Path, help="CSV with word(s),definition")
    add_limit(p, "words")
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
        help="the classifier study: a linear head on frozen [CLS]/mean features (AG News)",
        description="Extract sentence features once, split the data (seeded, stratified), "
        "train a Keras head per feature kind with fit, report held-out accuracy.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--csv",
        type=Path,
        help="CSV with label and text, or an AG News file (label,title,description)",
    )
    src.add_argument("--tfds-split", help="tfds ag_news_subset split, e.g. test or train[:10%%]")
    add_tfds_data_dir(p)
    hidden_alias(p, "--data-dir", "tfds_data_dir")  # its old name
    add_limit(p, "rows")
    p.add_argument(
        "--features",
        nargs="+",
        choices=get_args(SentencePooling),
        default=["cls", "mean"],
        help="sentence-vector kinds, one head each (default: cls mean)",
    )
    p.add_argument(
        "--recipe", type=recipe_arg, default="last_layer", metavar="RECIPE", help=RECIPE_HELP
    )
    p.add_argument(
        "--test-fraction", type=float, default=0.2, help="share held out for the test score"
    )
    add_seed(p, "the split and the heads' initialisation")
    p.add_argument(
        "--max-seq-length",
        dest="max_length",
        type=int,
        default=128,
        help="wordpieces per text (longer texts are cut)",
    )
    hidden_alias(p, "--max-length", "max_length", type=int)  # its old name
    p.add_argument("--epochs", type=int, default=50, help="most epochs (early stopping)")
    p.add_argument("--hidden-units", type=int, default=0, help="0 = a linear head")
    p.add_argument("--learning-rate", type=float, default=1e-3, help="the heads' Adam rate")
    _common(p, "classify")
    p.set_defaults(func=run_classify)


def _check_common(args) -> None:
    """Options every subcommand has, checked before any data or model is read."""
    from ..errors import check_positive
    from ..io import check_out_dir
    from ..models import model_config
    from ..outputs import prepare_out

    check_positive("--max-batch", args.max_batch, optional=True)
    check_positive("--limit", getattr(args, "limit", None), optional=True)
    check_out_dir(args.out)
    prepare_out(args.out, command=_command(args), overwrite=args.overwrite)
    model_config(args.model)  # a missing model folder fails now, not after reading the data


def _load(args):
    from ..models import load_bert

    return load_bert(args.model, precision=args.precision or "float32")


#: Parsed values that are not settings of a study (where to write, how to report).
_NOT_SETTINGS = ("func", "out", "overwrite", "debug", "command", "embeddings_command")


def _command(args) -> str:
    return f"embeddings {args.embeddings_command}"


def _settings(args) -> dict:
    """The study's options, recorded in ``meta["settings"]`` (not where or how to write)."""
    return {k: v for k, v in vars(args).items() if k not in _NOT_SETTINGS}


def _save(result, args, started: float, model) -> None:
    from ..outputs import model_entry

    written = result.save(
        args.out,
        command=_command(args),
        figures=not args.no_figures,
        models={"model": model_entry(args.model, model=model)},
        **_settings(args),
        wall_time_s=round(time.perf_counter() - started, 2),
    )
    if not args.quiet:
        for line in result.summary():
            print(line)
        print(f"wrote {written[0]}")


def run_similarity(args) -> int:
    from ..errors import DataError
    from ..text import load_texts
    from .similarity import check_similarity_study, similarity_study

    started = time.perf_counter()
    check_similarity_study(args.word, recipe=args.recipe, pooling=args.pooling, hows=args.sentence)
    _check_common(args)
    texts = list(args.text)
    if args.texts:
        texts += list(load_texts(args.texts, limit=args.limit))
    if not texts:
        raise DataError("no texts: give --text (repeatable) or --texts SOURCE")
    model, tokenizer = _load(args)
    result = similarity_study(
        model,
        tokenizer,
        texts,
        args.word,
        recipe=args.recipe,
        pooling=args.pooling,
        hows=args.sentence,
        settings=extraction_settings(args),
    )
    _save(result, args, started, model)
    return 0


def run_norms(args) -> int:
    from .norms import norms_study, read_word_definitions

    started = time.perf_counter()
    _check_common(args)
    table = read_word_definitions(args.csv, limit=args.limit)
    model, tokenizer = _load(args)
    result = norms_study(model, tokenizer, table, settings=extraction_settings(args))
    _save(result, args, started, model)
    return 0


def run_decompose(args) -> int:
    from .decompose import check_decompose_study, decompose_study

    started = time.perf_counter()
    check_decompose_study(args.text, args.pair)
    _check_common(args)
    model, tokenizer = _load(args)
    result = decompose_study(
        model, tokenizer, args.text, args.pair, settings=extraction_settings(args)
    )
    _save(result, args, started, model)
    return 0


def run_classify(args) -> int:
    from ..agnews import load_agnews_tfds
    from .classifier import LabeledTexts, check_classify_study, classify_study, read_labeled_csv

    started = time.perf_counter()
    options = {
        "features": args.features,
        "recipe": args.recipe,
        "test_fraction": args.test_fraction,
        "max_length": args.max_length,
        "epochs": args.epochs,
        "hidden_units": args.hidden_units,
        "learning_rate": args.learning_rate,
    }
    check_classify_study(**options)
    _check_common(args)
    if args.csv is not None:
        data = read_labeled_csv(args.csv, limit=args.limit)
    else:
        items = load_agnews_tfds(args.tfds_split, data_dir=args.tfds_data_dir, limit=args.limit)
        data = LabeledTexts.from_agnews(items)
    check_classify_study(data, **options)  # a label too rare to split fails before the model
    model, tokenizer = _load(args)
    result = classify_study(
        model,
        tokenizer,
        data,
        **options,
        seed=args.seed,
        settings=extraction_settings(args),
    )
    _save(result, args, started, model)
    return 0
