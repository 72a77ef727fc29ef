"""The paper's claims checked on synthetic numbers: each supported, not supported and
inconclusive; one changed number changes the verdict; the report and results.json show them."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from bert_repro.errors import ConfigError
from bert_repro.io import atomic_write_json, read_json
from bert_repro.reproduce import FinetuneJob, ReproduceConfig, TextSource
from bert_repro.reproduce.claim_inputs import ClaimInputs, claim_inputs
from bert_repro.reproduce.claim_maths import (
    best_layer,
    first_layer_below,
    relative_drop,
    top_third,
    top_third_share,
)
from bert_repro.reproduce.claims import (
    CKA_CHANGED,
    VERDICTS,
    Check,
    Claim,
    ablations_agree,
    aggregate,
    check_claims,
    in_domain_changes_more,
    no_forgetting,
    parsing_reaches_deeper,
    top_layers_change,
)

L = 12
#: CKA to the base: unchanged below layer 9, then falling (the paper's MNLI/SQuAD picture).
SHALLOW = [1.0] * 9 + [0.95, 0.85, 0.7, 0.5]
#: changed from layer 2 up, evenly (a parser that reconfigures most of the model).
DEEP = [1.0, 0.97, 0.88, 0.85, 0.82, 0.8, 0.78, 0.76, 0.74, 0.72, 0.7, 0.68, 0.66]
#: the same change spread evenly over all layers.
EVEN = [0.9] * (L + 1)


def sims(**models) -> dict:
    return {m: {"cosine": list(v), "rsa": None, "cka": list(v)} for m, v in models.items()}


def structural(model, uuas_by_layer, dspr=0.8):
    """Probe rows as the sweep writes them: distance (UUAS, DSpr) and depth per layer."""
    rows = []
    for layer, u in enumerate(uuas_by_layer):
        common = {"model": model, "layer": layer, "rank": 4}
        rows.append({**common, "kind": "distance", "uuas": u, "dspr": dspr})
        rows.append({**common, "kind": "depth", "root_acc": 0.5, "nspr": 0.7})
    return rows


def ablation(model, task, drop_to, reference=0.8, *, k=6, n=1000, metric="accuracy"):
    common = {"model": model, "task": task, "mode": "restore", "metric": metric, "n_examples": n}
    return [
        {**common, "direction": "bottom", "k": 0, "value": reference},
        {**common, "direction": "bottom", "k": k, "value": drop_to},
        {**common, "direction": "top", "k": k, "value": 0.1},  # never read by (e)
    ]


def full_inputs(**changes) -> ClaimInputs:
    """A run in which every claim is supported."""
    inputs = ClaimInputs(
        base="base",
        tasks={"mnli": "mnli", "squad": "squad", "parser": "parse"},
        similarity={
            "wiki": sims(mnli=SHALLOW, squad=SHALLOW, parser=DEEP),
            "mnli_text": sims(mnli=[1.0] * 9 + [0.9, 0.8, 0.6, 0.4], squad=SHALLOW, parser=DEEP),
        },
        structural=[
            *structural("base", [0.3, 0.6, 0.7, 0.65]),
            *structural("mnli", [0.3, 0.6, 0.68, 0.5]),
            *structural("squad", [0.3, 0.61, 0.69, 0.4]),
            *structural("parser", [0.3, 0.6, 0.75, 0.8]),
        ],
        edge=[
            {"model": m, "task": t, "layer": layer, "f1": f1, "n": 500}
            for m in ("base", "mnli", "squad", "parser")
            for t in ("pos", "deprel")
            for layer, f1 in ((0, 0.5), (1, 0.9), ("mix", 0.92))
        ],
        ablations=[
            *ablation("mnli", "mnli", 0.78),
            *ablation("squad", "squad", 85.0, 88.0, metric="f1"),
            *ablation("parser", "parse", 0.5, 0.85, metric="las"),
        ],
        in_domain={"mnli": ("mnli_text",)},
    )
    return dataclasses.replace(inputs, **changes)


# --------------------------------------------------------------------------- shared maths


def test_top_third_and_its_share_by_hand():
    assert top_third(12).tolist() == [9, 10, 11, 12]
    assert top_third(6).tolist() == [5, 6]
    assert top_third(3).tolist() == [3]
    with pytest.raises(ConfigError, match="at least 3 layers"):
        top_third(2)
    # L = 6: change 0 .1 .1 .1 .4 .4 .4 -> top (5, 6) carries .8 of 1.5
    assert top_third_share([1, 0.9, 0.9, 0.9, 0.6, 0.6, 0.6]) == pytest.approx(0.8 / 1.5)
    assert top_third_share(EVEN) == pytest.approx(4 / 13)
    assert top_third_share(SHALLOW) == pytest.approx(1.0)
    assert np.isnan(top_third_share([1.0, 1.0, 1.0, 1.0]))
    assert np.isnan(top_third_share([1.0, 1.0, 1.0, 1.0 + 1e-7]))  # CKA a hair above 1


def test_first_layer_below_best_layer_and_drop():
    assert first_layer_below([1.0, 0.95, 0.85, 0.8], 0.9) == 2
    assert first_layer_below([1.0, 0.95], 0.9) is None
    assert first_layer_below([0.5, 1.0], 0.9) == 0
    assert best_layer({0: 0.5, 2: 0.7, 1: 0.7}) == (1, 0.7)  # ties: the lowest layer
    assert best_layer({0: 0.5, "mix": 0.9, 1: 0.7}) == ("mix", 0.9)
    assert best_layer({"mix": 0.7, 1: 0.7}) == (1, 0.7)
    assert relative_drop(0.8, 0.6) == pytest.approx(0.25)
    assert relative_drop(0.5, 0.6) == pytest.approx(-0.2)


def test_aggregate_rules():
    p, f, u = Check("pass", "p"), Check("fail", "f"), Check("unclear", "u")
    assert aggregate([p, p])[0] == "supported"
    assert aggregate([f, f])[0] == "not supported"
    assert aggregate([f, u])[0] == "not supported"
    assert aggregate([p, f])[0] == "inconclusive"
    assert aggregate([p, f], one_fail_refutes=True)[0] == "not supported"
    assert aggregate([p, u])[0] == "inconclusive"
    assert aggregate([])[0] == "inconclusive"
    with pytest.raises(ConfigError, match="verdict"):
        Claim("x", "x", "true", "rule", "why")


# --------------------------------------------------------------------------- the claims


def test_every_claim_is_supported_on_numbers_that_agree_with_the_paper():
    claims = check_claims(full_inputs())
    assert [c.id for c in claims] == [
        "no_forgetting",
        "top_layers",
        "parsing_deeper",
        "out_of_domain",
        "ablations",
    ]
    assert {c.id: c.verdict for c in claims} == dict.fromkeys(
        [c.id for c in claims], "supported"
    ), [(c.id, c.reason) for c in claims]
    for c in claims:
        d = c.to_dict()
        assert json.loads(json.dumps(d)) == d
        assert d["verdict"] in VERDICTS and d["rule"] and d["claim"]


def test_no_forgetting_per_model_best_layer_against_the_margin():
    claim = no_forgetting(full_inputs())
    assert claim.verdict == "supported"
    ev = claim.evidence["UUAS"]["squad"]
    assert ev == {
        "base_best": 0.7,
        "base_best_layer": 2,
        "best": 0.69,
        "best_layer": 2,
        "drop": 0.01,
        "largest_layer_drop": 0.25,  # layer 3: 0.65 -> 0.40, shown not judged
        "largest_drop_layer": 3,
    }
    assert claim.evidence["POS F1"]["mnli"]["best_layer"] == "mix"

    def with_squad_best(u):
        rows = [r for r in full_inputs().structural if r["model"] != "squad"]
        return full_inputs(structural=[*rows, *structural("squad", [0.3, 0.6, u, 0.4])])

    assert no_forgetting(with_squad_best(0.651)).verdict == "supported"  # 0.049 below
    flipped = no_forgetting(with_squad_best(0.649))  # 0.051 below: forgotten
    assert flipped.verdict == "not supported"
    assert "squad UUAS 0.649" in flipped.reason

    edge = [
        dict(r, f1=0.6) if r["model"] == "mnli" and r["task"] == "deprel" else r
        for r in full_inputs().edge
    ]
    assert no_forgetting(full_inputs(edge=edge)).verdict == "not supported"


def test_no_forgetting_inconclusive_without_base_or_models():
    assert no_forgetting(full_inputs(base="other")).verdict == "inconclusive"
    claim = no_forgetting(full_inputs(tasks={}))
    assert claim.verdict == "inconclusive" and claim.reason == "no fine-tuned model"
    # a model with no probe rows: the others pass, it is unclear -> inconclusive
    rows = [r for r in full_inputs().structural if r["model"] != "squad"]
    claim = no_forgetting(full_inputs(structural=rows, edge=()))
    assert claim.verdict == "inconclusive" and "no UUAS of squad" in claim.reason
    # a single-layer model: best of one layer
    one = ClaimInputs(
        base="b",
        tasks={"m": "mnli"},
        structural=[*structural("b", [0.5]), *structural("m", [0.47])],
    )
    assert no_forgetting(one).verdict == "supported"
    assert (
        no_forgetting(
            dataclasses.replace(one, structural=[*structural("b", [0.5]), *structural("m", [0.4])])
        ).verdict
        == "not supported"
    )


def test_top_layers_change():
    claim = top_layers_change(full_inputs())
    assert claim.verdict == "supported"
    assert claim.evidence["wiki"]["parser"]["counted"] is False  # the paper's exception
    assert claim.evidence["wiki"]["mnli"]["even_share"] == pytest.approx(4 / 13, abs=1e-4)
    # one model on one source with change spread evenly: mixed -> inconclusive
    wiki = sims(mnli=SHALLOW, squad=EVEN, parser=DEEP)
    mixed = top_layers_change(full_inputs(similarity={"wiki": wiki}))
    assert (
        mixed.verdict == "inconclusive"
        and "squad on wiki: top third 9-12 carries 31%" in mixed.reason
    )
    both = top_layers_change(full_inputs(similarity={"wiki": sims(mnli=EVEN, squad=EVEN)}))
    assert both.verdict == "not supported"
    # flip one number: a big change at layer 1 pulls the share below one half
    moved = list(SHALLOW)
    moved[1] = 0.0
    flipped = top_layers_change(full_inputs(similarity={"wiki": sims(mnli=moved, squad=moved)}))
    assert flipped.verdict == "not supported"


def test_top_layers_change_inconclusive_cases():
    # single-layer model (two hidden states): no top third
    one = top_layers_change(full_inputs(similarity={"wiki": sims(mnli=[1.0, 0.5])}))
    assert one.verdict == "inconclusive" and "no top third" in one.reason
    still = top_layers_change(full_inputs(similarity={"wiki": sims(mnli=[1.0] * 12 + [0.99])}))
    assert still.verdict == "inconclusive" and "barely changed" in still.reason
    no_cka = {"wiki": {"mnli": {"cosine": SHALLOW, "rsa": None, "cka": None}}}
    assert top_layers_change(full_inputs(similarity=no_cka)).verdict == "inconclusive"
    nan = {"wiki": sims(mnli=[*SHALLOW[:-1], float("nan")])}
    assert top_layers_change(full_inputs(similarity=nan)).verdict == "inconclusive"
    only_parser = top_layers_change(full_inputs(similarity={"wiki": sims(parser=DEEP)}))
    assert only_parser.verdict == "inconclusive"
    assert top_layers_change(full_inputs(similarity={})).verdict == "inconclusive"


def test_parsing_reaches_deeper():
    claim = parsing_reaches_deeper(full_inputs())
    assert claim.verdict == "supported"
    assert claim.evidence["wiki"]["first_layer_below"] == {"parser": 2, "mnli": 10, "squad": 10}
    # the parser changes only where the others do: a tie is not "lower"
    late = sims(mnli=SHALLOW, squad=SHALLOW, parser=SHALLOW)
    tie = parsing_reaches_deeper(full_inputs(similarity={"wiki": late}))
    assert tie.verdict == "not supported"
    # the parser never falls below the threshold, another model does
    never = sims(mnli=SHALLOW, squad=SHALLOW, parser=[1.0] * 13)
    assert parsing_reaches_deeper(full_inputs(similarity={"wiki": never})).verdict == (
        "not supported"
    )
    # the parser's curve late like the others': not lower
    flat = [1.0] * 10 + [0.8, 0.7, 0.6]
    assert first_layer_below(flat, CKA_CHANGED) == 10
    late_parser = sims(mnli=SHALLOW, squad=SHALLOW, parser=flat)
    assert parsing_reaches_deeper(full_inputs(similarity={"wiki": late_parser})).verdict == (
        "not supported"
    )
    # flip one number: the parser falls below the threshold at layer 9, lower than the 10
    flat[9] = CKA_CHANGED - 0.01
    early = sims(mnli=SHALLOW, squad=SHALLOW, parser=flat)
    assert parsing_reaches_deeper(full_inputs(similarity={"wiki": early})).verdict == "supported"
    one_source_each = {
        "wiki": sims(mnli=SHALLOW, squad=SHALLOW, parser=DEEP),
        "ewt": sims(mnli=SHALLOW, squad=SHALLOW, parser=SHALLOW),
    }
    assert parsing_reaches_deeper(full_inputs(similarity=one_source_each)).verdict == (
        "inconclusive"
    )


def test_parsing_reaches_deeper_inconclusive_cases():
    no_parser = full_inputs(tasks={"mnli": "mnli", "squad": "squad"})
    claim = parsing_reaches_deeper(no_parser)
    assert claim.verdict == "inconclusive" and claim.reason == "no parsing model in this run"
    alone = parsing_reaches_deeper(full_inputs(tasks={"parser": "parse"}))
    assert alone.verdict == "inconclusive"
    calm = sims(mnli=[1.0] * 13, squad=[0.95] * 13, parser=[0.92] * 13)
    calm_claim = parsing_reaches_deeper(full_inputs(similarity={"wiki": calm}))
    assert (
        calm_claim.verdict == "inconclusive" and "no model's CKA falls below" in calm_claim.reason
    )
    missing = parsing_reaches_deeper(full_inputs(similarity={"wiki": sims(mnli=SHALLOW)}))
    assert missing.verdict == "inconclusive" and "no CKA curve of" in missing.reason


def test_in_domain_changes_more():
    claim = in_domain_changes_more(full_inputs())
    assert claim.verdict == "supported"
    ev = claim.evidence["mnli"]["wiki vs mnli_text"]
    in_mean = np.mean(1 - np.array([1.0] * 9 + [0.9, 0.8, 0.6, 0.4]))
    assert ev["in_domain_change"] == pytest.approx(in_mean, abs=1e-4)
    assert ev["ratio"] == pytest.approx(np.mean(1 - np.array(SHALLOW)) / in_mean, abs=1e-4)

    def with_wiki(curve):
        return full_inputs(similarity={**full_inputs().similarity, "wiki": sims(mnli=curve)})

    close = [1.0] * 9 + [0.9, 0.8, 0.6, 0.45]  # 4% less change: not told apart
    assert in_domain_changes_more(with_wiki(close)).verdict == "inconclusive"
    more = [1.0] * 9 + [0.8, 0.7, 0.5, 0.3]  # out of domain changes more
    assert in_domain_changes_more(with_wiki(more)).verdict == "not supported"


def test_in_domain_changes_more_inconclusive_cases():
    assert in_domain_changes_more(full_inputs(in_domain={})).verdict == "inconclusive"
    only_own = {"mnli_text": full_inputs().similarity["mnli_text"]}
    assert in_domain_changes_more(full_inputs(similarity=only_own)).verdict == "inconclusive"
    gone = full_inputs(in_domain={"mnli": ("not-run",)})
    assert in_domain_changes_more(gone).verdict == "inconclusive"
    still = {"mnli_text": sims(mnli=[1.0] * 13), "wiki": sims(mnli=[1.0] * 13)}
    claim = in_domain_changes_more(full_inputs(similarity=still))
    assert claim.verdict == "inconclusive" and "barely changed" in claim.reason


def test_ablations_agree():
    claim = ablations_agree(full_inputs())
    assert claim.verdict == "supported"
    assert claim.evidence["squad"] == {
        "metric": "f1",
        "k": 6,
        "value": 85.0,
        "n": 1000,
        "reference": 88.0,
        "relative_drop": pytest.approx(3 / 88, abs=1e-4),
    }
    assert claim.evidence["parser"]["metric"] == "las"

    def with_parser(value):
        rows = [r for r in full_inputs().ablations if r["model"] != "parser"]
        return full_inputs(ablations=[*rows, *ablation("parser", "parse", value, 0.85)])

    assert ablations_agree(with_parser(0.7)).verdict == "supported"  # 18% lost
    assert ablations_agree(with_parser(0.8)).verdict == "not supported"  # 6% lost: little
    shallow_hurt = [
        *ablation("mnli", "mnli", 0.5),
        *ablation("squad", "squad", 40.0, 88.0, metric="f1"),
        *ablation("parser", "parse", 0.5, 0.85),
    ]
    assert ablations_agree(full_inputs(ablations=shallow_hurt)).verdict == "not supported"
    one_hurt = [*ablation("mnli", "mnli", 0.5), *full_inputs().ablations[3:]]
    assert ablations_agree(full_inputs(ablations=one_hurt)).verdict == "inconclusive"


def test_ablations_agree_inconclusive_and_references():
    none = ablations_agree(full_inputs(ablations=()))
    assert none.verdict == "inconclusive" and none.reason == "no ablation results in this run"
    no_parser = [r for r in full_inputs().ablations if r["model"] != "parser"]
    claim = ablations_agree(full_inputs(ablations=no_parser))
    assert claim.verdict == "inconclusive" and "no parsing model" in claim.reason
    few = [dict(r, n_examples=40) for r in full_inputs().ablations]
    assert ablations_agree(full_inputs(ablations=few)).verdict == "inconclusive"
    # no k = 0 row: the fine-tuning metric is the reference; k nearest L / 2 is used
    rows = [r for r in full_inputs().ablations if r["k"] != 0]
    rows += [dict(rows[0], k=2, value=0.1), dict(rows[0], k=5, value=0.79)]
    metrics = {"mnli": {"accuracy": 0.8}, "squad": {"f1": 88.0}, "parser": {"las": 0.85}}
    claim = ablations_agree(full_inputs(ablations=rows, finetune_metrics=metrics))
    assert claim.verdict == "supported", claim.reason
    assert claim.evidence["mnli"]["k"] == 6 and claim.evidence["mnli"]["reference"] == 0.8
    no_ref = ablations_agree(full_inputs(ablations=rows))
    assert no_ref.verdict == "inconclusive" and "no positive unablated" in no_ref.reason


# --------------------------------------------------------------------------- results.json


def results_json(**extra) -> dict:
    """The shape `bert-repro reproduce` writes (settings echo the config)."""
    return {
        "settings": {
            "base_label": "MiniLM",
            "finetune": [
                {"name": "agnews", "task": "agnews"},
                {"name": "ewt-parser", "task": "parse"},
            ],
            "texts": [
                {"name": "ewt", "spec": "conllu:x", "limit": 5, "in_domain_for": ["ewt-parser"]},
                {"name": "agnews", "spec": "csv:y:d", "limit": 5, "in_domain_for": ["agnews"]},
            ],
        },
        "finetune": {"agnews": {"task": "agnews", "metrics": {"accuracy": 0.9}}},
        "compare": {
            "ewt": {"models": sims(agnews=SHALLOW, **{"ewt-parser": DEEP}), "n_texts": 5},
            "agnews": {
                "models": sims(
                    agnews=[1.0] * 9 + [0.9, 0.8, 0.6, 0.4],
                    **{"ewt-parser": [(1 + c) / 2 for c in DEEP]},
                ),
                "n_texts": 5,
            },
        },
        "probes": [*structural("MiniLM", [0.3, 0.6]), *structural("agnews", [0.3, 0.59])],
        **extra,
    }


def test_claim_inputs_read_results_json():
    inputs = claim_inputs(
        results_json(
            edge_probes=[{"model": "MiniLM", "task": "pos", "layer": 1, "f1": 0.9, "n": 3}]
        )
    )
    assert inputs.base == "MiniLM"
    assert inputs.tasks == {"agnews": "agnews", "ewt-parser": "parse"}
    assert inputs.parsers == ("ewt-parser",)
    assert inputs.in_domain == {"ewt-parser": ("ewt",), "agnews": ("agnews",)}
    assert inputs.finetune_metrics == {"agnews": {"accuracy": 0.9}}
    assert inputs.layers() == 12 and len(inputs.edge) == 1 and inputs.ablations == ()
    claims = {c.id: c for c in check_claims(inputs)}
    assert {k: c.verdict for k, c in claims.items()} == {
        "no_forgetting": "inconclusive",  # agnews passes; the parser was not probed
        "top_layers": "supported",
        "parsing_deeper": "supported",
        "out_of_domain": "supported",
        "ablations": "inconclusive",
    }
    assert "no UUAS of ewt-parser" in claims["no_forgetting"].reason
    assert "agnews UUAS 0.590 (layer 1) vs base 0.600" in claims["no_forgetting"].reason
    assert check_claims(claim_inputs({}))[0].verdict == "inconclusive"
    # this version's layout: the settings in meta (the sections stay at the top level)
    old = results_json()
    new = {"meta": {"settings": old.pop("settings")}, "rows": [], **old}
    assert claim_inputs(new) == claim_inputs(results_json())


# --------------------------------------------------------------------------- the report


def fake_run(tmp_path, probes: list[dict]) -> tuple[ReproduceConfig, object]:
    """The files the steps of a run leave behind, written by hand."""
    from bert_repro.reproduce.runner import StepState

    config = ReproduceConfig(
        preset="test",
        base="unused",
        base_label="MiniLM",
        finetune=(FinetuneJob("agnews", "agnews"),),
        texts=(TextSource("agnews", "csv:x:d", 5, ("agnews",)), TextSource("ewt", "conllu:y", 5)),
        probe_train="t",
        probe_dev="d",
        probe_test="e",
    )
    atomic_write_json(
        tmp_path / "models" / "agnews" / "finetune.json",
        {"metrics": {"accuracy": 0.9, "n_examples": 100}, "steps": 3},
    )
    for source, curve in (
        ("agnews", [1, 1, 1, 0.99, 0.9, 0.8, 0.5]),
        ("ewt", [1, 1, 1, 1, 0.95, 0.9, 0.8]),
    ):
        result = {"models": sims(agnews=curve), "n_texts": 5}
        atomic_write_json(tmp_path / "compare" / source / "similarity.json", {"result": result})
    atomic_write_json(tmp_path / "probes" / "results.json", {"results": probes})
    return config, StepState(tmp_path)


@pytest.mark.parametrize("agnews_best, verdict", [(0.58, "supported"), (0.5, "not supported")])
def test_report_shows_the_claims_and_results_json_holds_them(
    tmp_path, monkeypatch, agnews_best, verdict
):
    from bert_repro.reproduce import report

    monkeypatch.setattr(report, "save_figure", lambda fig, path: [])  # no figure files needed
    probes = [
        *structural("MiniLM", [0.3, 0.6, 0.5]),
        *structural("agnews", [0.3, agnews_best, 0.4]),
    ]
    config, state = fake_run(tmp_path, probes)
    page = report.write_report(config, tmp_path, state, 1.0).read_text()
    saved = read_json(tmp_path / "results.json")
    claims = saved["claims"]
    assert [c["id"] for c in claims] == [c.id for c in check_claims(ClaimInputs())]
    # the rows are the claims without their evidence; the steps' files were an earlier
    # version's layout (similarity.json, {"results": rows}) and are read all the same
    assert saved["rows"] == [{k: c[k] for k in report.CLAIM_COLUMNS} for c in claims]
    assert saved["meta"]["command"] == "reproduce" and saved["meta"]["settings"]["preset"] == "test"
    assert saved["compare"]["agnews"]["n_texts"] == 5 and len(saved["probes"]) == len(probes)
    by_id = {c["id"]: c for c in claims}
    assert by_id["no_forgetting"]["verdict"] == verdict  # computed from the probe numbers
    assert by_id["top_layers"]["verdict"] == "supported"
    assert by_id["out_of_domain"]["verdict"] == "supported"
    assert by_id["parsing_deeper"]["verdict"] == "inconclusive"
    assert by_id["ablations"]["reason"] == "no ablation results in this run"
    assert "<h2>Claims</h2>" in page and page.index("<h2>Claims</h2>") < page.index(
        "1. Fine-tuning"
    )
    colour = report.VERDICT_COLOURS
    assert f'background:{colour[verdict]}">{verdict}</span>' in page
    assert f'background:{colour["inconclusive"]}">inconclusive</span>' in page
    assert "FORGETTING" not in page and "0.05 below the base" in page  # the rule, with its number
