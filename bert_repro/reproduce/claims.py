"""The paper's claims, checked against a run's own numbers: one verdict per claim.

Merchant et al. (2020), "What Happens To BERT Embeddings During Fine-tuning?", read their
measurements as five claims; each has a check here, a small pure function of
:class:`~.claim_inputs.ClaimInputs` returning a :class:`Claim`:

(a) :func:`no_forgetting` -- fine-tuning does not make linguistic structure unreadable
    (probe scores of each fine-tuned model vs the base);
(b) :func:`top_layers_change` -- the change concentrates in the top layers;
(c) :func:`parsing_reaches_deeper` -- parsing reconfigures more of the model than the others;
(d) :func:`in_domain_changes_more` -- out-of-domain text changes less than in-domain text;
(e) :func:`ablations_agree` -- putting the pre-trained bottom half back costs the shallow
    tasks little and the parser more.

A verdict is ``"supported"``, ``"not supported"`` or ``"inconclusive"`` (the numbers it needs
are missing, too small to read, or point both ways; the ``reason`` says which). A claim is
checked on several units (a model, a model on a text source, ...), each of which passes,
fails or is unclear: all pass -> supported; some fail and none pass -> not supported (for
(a) and the parser of (e), one failure is enough); otherwise inconclusive.

The thresholds are the module constants below, written into each rule's text. They come from
what the measures mean (a change spread evenly over the layers puts about a third of it in the
top third; a CKA of 0.9 is a clearly different representation; a 10% relative loss is beyond
the sampling noise of a few hundred evaluation examples), not from the paper's numbers or a
run's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np

from ..errors import check_choice
from .claim_inputs import ClaimInputs, finite, is_parser
from .claim_maths import (
    best_layer,
    change,
    first_layer_below,
    relative_drop,
    top_third,
    top_third_share,
)

Verdict = Literal["supported", "not supported", "inconclusive"]
VERDICTS: tuple[str, ...] = get_args(Verdict)
Status = Literal["pass", "fail", "unclear"]

#: (a) a fine-tuned model's best-layer probe score may be at most this much (absolute: UUAS,
#: Spearman and F1 are in [0, 1]) below the base's best-layer score.
FORGETTING_MARGIN = 0.05
#: (b) the share of the total change (sum over hidden states of 1 - CKA) that the top third of
#: the layers must carry; an even spread gives about 1/3 (4/13 for 12 layers).
TOP_THIRD_SHARE = 0.5
#: (b), (d) a model whose 1 - CKA stays below this on every layer barely changed: the shape
#: of its change is noise.
MIN_CHANGE = 0.02
#: (c) a layer has been reconfigured once its linear CKA to the base falls below this.
CKA_CHANGED = 0.9
#: (d) out-of-domain change must be at most (1 - margin) x in-domain change; within
#: (1 +- margin) the two are not told apart.
DOMAIN_MARGIN = 0.1
#: (e) the relative loss of the task metric that still counts as "little".
SMALL_DROP = 0.1
#: (e) fewer evaluation examples than this and a 10% relative drop is within sampling noise
#: (binomial standard error at accuracy 0.8 and n = 100: 0.04, i.e. 5% relative).
MIN_EXAMPLES = 100
#: (a) the probe scores compared: ``(name, rows, kind or edge task, metric)``.
PROBE_SCORES = (
    ("UUAS", "structural", "distance", "uuas"),
    ("DSpr", "structural", "distance", "dspr"),
    ("POS F1", "edge", "pos", "f1"),
    ("deprel F1", "edge", "deprel", "f1"),
)
#: (e) which of a model's ablation metrics is its task metric (the first one it has).
TASK_METRICS = ("las", "accuracy", "f1", "uas", "exact_match")


@dataclass(frozen=True)
class Claim:
    """One claim of the paper and what this run's numbers say of it.

    Attributes:
        id: short name (``"no_forgetting"``, ...).
        claim: the claim, in words.
        verdict: ``"supported"``, ``"not supported"`` or ``"inconclusive"``.
        rule: how the verdict is reached, with its thresholds.
        reason: why this verdict, with the deciding numbers (or what is missing).
        evidence: the numbers behind it (plain JSON data).
    """

    id: str
    claim: str
    verdict: Verdict
    rule: str
    reason: str
    evidence: dict = field(default_factory=dict)

    def __post_init__(self):
        check_choice("verdict", self.verdict, VERDICTS)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "claim": self.claim,
            "verdict": self.verdict,
            "rule": self.rule,
            "reason": self.reason,
            "evidence": json.loads(json.dumps(self.evidence, default=float)),
        }


@dataclass(frozen=True)
class Check:
    """One unit of a claim (a model, a model on a text, ...): passes, fails or is unclear."""

    status: Status
    note: str


def aggregate(checks: Sequence[Check], *, one_fail_refutes: bool = False) -> tuple[str, str]:
    """``(verdict, reason)`` of a claim from its units' checks.

    All pass -> supported; a failure and no pass (or any failure, with
    ``one_fail_refutes``) -> not supported; no units, or a mix -> inconclusive.
    """
    if not checks:
        return "inconclusive", "nothing to check"
    fails = [c.note for c in checks if c.status == "fail"]
    passes = [c.note for c in checks if c.status == "pass"]
    unclear = [c.note for c in checks if c.status == "unclear"]
    if fails and (one_fail_refutes or not passes):
        return "not supported", "; ".join(fails + unclear + passes)
    if not fails and not unclear:
        return "supported", "; ".join(passes)
    mix = f"mixed: {len(passes)} pass, {len(fails)} fail, {len(unclear)} unclear"
    return "inconclusive", mix + " -- " + "; ".join(fails + unclear + passes)


def _r(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 4)


def _layer(value) -> int | str:
    try:
        return int(value)
    except (TypeError, ValueError):
        return str(value)


# ---------------------------------------------------------------------------------------
# (a) no catastrophic forgetting
# ---------------------------------------------------------------------------------------


def probe_scores(inputs: ClaimInputs) -> dict[str, dict[str, dict[int | str, float]]]:
    """``{score name: {model: {layer: score}}}`` of the :data:`PROBE_SCORES` present."""
    out: dict[str, dict[str, dict[int | str, float]]] = {}
    for name, rows, which, metric in PROBE_SCORES:
        for r in inputs.structural if rows == "structural" else inputs.edge:
            kind = r.get("kind") if rows == "structural" else r.get("task")
            if kind == which and finite(r.get(metric)):
                out.setdefault(name, {}).setdefault(r["model"], {})[_layer(r["layer"])] = float(
                    r[metric]
                )
    return out


def no_forgetting(inputs: ClaimInputs) -> Claim:
    """(a) Each fine-tuned model's best-layer probe score stays within
    :data:`FORGETTING_MARGIN` of the base model's (per score: UUAS, DSpr, edge F1)."""
    rule = (
        f"For each probe score (structural UUAS and DSpr, edge-probe POS and deprel F1) and "
        f"each fine-tuned model: its best score over the layers (an edge probe's scalar mix "
        f"counts as a layer) is at most {FORGETTING_MARGIN} below the base model's best. "
        "Supported when every model passes on every score the run has; one model more than "
        "the margin below refutes it. The per-layer differences are shown, not judged."
    )
    claim = (
        "No catastrophic forgetting: linguistic structure stays as readable by probes after "
        "fine-tuning as in the base model."
    )
    if not inputs.finetuned:
        return Claim("no_forgetting", claim, "inconclusive", rule, "no fine-tuned model", {})
    scores = probe_scores(inputs)
    base = inputs.base
    checks, evidence = [], {}
    for name, by_model in scores.items():
        if base not in by_model:
            continue
        b_layer, b_best = best_layer(by_model[base])
        for model in inputs.finetuned:
            if model not in by_model:
                checks.append(Check("unclear", f"no {name} of {model}"))
                continue
            layer, best = best_layer(by_model[model])
            drop = b_best - best
            common = [k for k in by_model[model] if isinstance(k, int) and k in by_model[base]]
            per_layer = {k: by_model[base][k] - by_model[model][k] for k in common}
            worst = max(per_layer, key=per_layer.get) if per_layer else None
            evidence.setdefault(name, {})[model] = {
                "base_best": _r(b_best),
                "base_best_layer": b_layer,
                "best": _r(best),
                "best_layer": layer,
                "drop": _r(drop),
                "largest_layer_drop": None if worst is None else _r(per_layer[worst]),
                "largest_drop_layer": worst,
            }
            ok = drop <= FORGETTING_MARGIN
            checks.append(
                Check(
                    "pass" if ok else "fail",
                    f"{model} {name} {best:.3f} (layer {layer}) vs base {b_best:.3f} "
                    f"(layer {b_layer}): {best - b_best:+.3f}",
                )
            )
    if not checks:
        why = f"no probe scores of the base model ({base!r}) in this run"
        return Claim("no_forgetting", claim, "inconclusive", rule, why, evidence)
    verdict, reason = aggregate(checks, one_fail_refutes=True)
    return Claim("no_forgetting", claim, verdict, rule, reason, evidence)


# ---------------------------------------------------------------------------------------
# (b) change concentrated in the top layers
# ---------------------------------------------------------------------------------------


def top_layers_change(inputs: ClaimInputs) -> Claim:
    """(b) For every model but the parser, on every text, the top third of the layers carries
    more than :data:`TOP_THIRD_SHARE` of the total (1 - CKA) change."""
    rule = (
        f"For every fine-tuned model other than the parser (the paper's exception), on every "
        f"text source: the top third of the L layers (the last max(1, L // 3)) carries more "
        f"than {TOP_THIRD_SHARE:.0%} of the total change, sum over hidden states of (1 - "
        f"linear CKA to the base); an even spread would give about a third. Unclear for a "
        f"model with fewer than 3 layers or whose 1 - CKA stays below {MIN_CHANGE} on every "
        "layer (it barely changed). All pass: supported; fails and no pass: not supported."
    )
    claim = "Fine-tuning changes mostly the top layers."
    checks, evidence = [], {}
    for source, models in inputs.similarity.items():
        for model in models:
            cka = inputs.curve(source, model)
            counted = not is_parser(inputs.tasks.get(model))
            what = f"{model} on {source}"
            if cka is None:
                status, note, ev = "unclear", f"{what}: no CKA curve", {}
            elif len(cka) - 1 < 3:
                status, note, ev = "unclear", f"{what}: {len(cka) - 1} layer(s), no top third", {}
            else:
                share, top = top_third_share(cka), top_third(len(cka) - 1)
                c = change(cka)
                ev = {
                    "share": _r(share),
                    "top_layers": [int(top[0]), int(top[-1])],
                    "even_share": _r(len(top) / len(c)),
                    "total_change": _r(c.sum()),
                    "max_change": _r(c.max()),
                }
                if c.max() < MIN_CHANGE:
                    status, note = "unclear", f"{what} barely changed (max 1-CKA {c.max():.3f})"
                else:
                    status = "pass" if share > TOP_THIRD_SHARE else "fail"
                    note = f"{what}: top third {top[0]}-{top[-1]} carries {share:.0%}"
            evidence.setdefault(source, {})[model] = {**ev, "counted": counted}
            if counted:
                checks.append(Check(status, note))
    if not checks:
        why = "no similarity curves of a fine-tuned model other than a parser"
        return Claim("top_layers", claim, "inconclusive", rule, why, evidence)
    verdict, reason = aggregate(checks)
    return Claim("top_layers", claim, verdict, rule, reason, evidence)


# ---------------------------------------------------------------------------------------
# (c) parsing reaches deeper
# ---------------------------------------------------------------------------------------


def parsing_reaches_deeper(inputs: ClaimInputs) -> Claim:
    """(c) The parser's lowest layer with CKA below :data:`CKA_CHANGED` is lower than every
    other fine-tuned model's, on every text source."""
    rule = (
        f"On each text source: the lowest hidden state where linear CKA to the base falls "
        f"below {CKA_CHANGED} ('never' counts as above the top layer), per model; the source "
        "passes when each parsing model's is strictly lower than every other fine-tuned "
        "model's, fails otherwise, and is unclear when no model falls below the threshold "
        "(nothing to order) or a curve is missing. All sources pass: supported; fails and no "
        "pass: not supported. Needs a parsing model and another model."
    )
    claim = "Dependency parsing reconfigures more of the model (lower layers) than MNLI/SQuAD."
    parsers = inputs.parsers
    others = [m for m in inputs.finetuned if m not in parsers]
    if not parsers or not others:
        why = "no parsing model in this run" if not parsers else "no model besides the parser"
        return Claim("parsing_deeper", claim, "inconclusive", rule, why, {})
    checks, evidence = [], {}
    for source in inputs.similarity:
        curves = {m: inputs.curve(source, m) for m in (*parsers, *others)}
        missing = [m for m, c in curves.items() if c is None]
        first = {
            m: None if c is None else first_layer_below(c, CKA_CHANGED) for m, c in curves.items()
        }
        evidence[source] = {"first_layer_below": first}
        if missing:
            checks.append(Check("unclear", f"on {source}: no CKA curve of {', '.join(missing)}"))
            continue
        if all(v is None for v in first.values()):
            checks.append(
                Check("unclear", f"on {source}: no model's CKA falls below {CKA_CHANGED}")
            )
            continue
        never = len(next(iter(curves.values())))
        rank = {m: never if v is None else v for m, v in first.items()}
        lowest_other = min(rank[m] for m in others)
        ok = all(rank[p] < lowest_other for p in parsers)
        shown = ", ".join(f"{m} {'never' if v is None else v}" for m, v in first.items())
        checks.append(Check("pass" if ok else "fail", f"on {source}: {shown}"))
    if not checks:
        return Claim("parsing_deeper", claim, "inconclusive", rule, "no similarity curves", {})
    verdict, reason = aggregate(checks)
    return Claim("parsing_deeper", claim, verdict, rule, reason, evidence)


# ---------------------------------------------------------------------------------------
# (d) out-of-domain text changes less
# ---------------------------------------------------------------------------------------


def in_domain_changes_more(inputs: ClaimInputs) -> Claim:
    """(d) Each model's mean (1 - CKA) on other text is at most ``1 - DOMAIN_MARGIN`` times
    its mean (1 - CKA) on its in-domain text."""
    rule = (
        f"For each fine-tuned model with an in-domain text source and each other source: the "
        f"mean over hidden states of (1 - linear CKA to the base) on the other text, divided "
        f"by that on the in-domain text. Below {1 - DOMAIN_MARGIN:g}: pass; above "
        f"{1 + DOMAIN_MARGIN:g}: fail; between: unclear (not told apart); unclear too when the "
        f"model's 1 - CKA stays below {MIN_CHANGE} on every layer of its in-domain text. All "
        "pass: supported; fails and no pass: not supported."
    )
    claim = (
        "A fine-tuned model's representations change less on out-of-domain text than on "
        "text of its own task."
    )
    checks, evidence = [], {}
    for model in inputs.finetuned:
        for own in inputs.in_domain.get(model, ()):
            if own not in inputs.similarity:
                continue
            for other in inputs.similarity:
                if other == own:
                    continue
                what = f"{model}: {other} vs in-domain {own}"
                c_in, c_out = inputs.curve(own, model), inputs.curve(other, model)
                if c_in is None or c_out is None:
                    checks.append(Check("unclear", f"{what}: a CKA curve is missing"))
                    continue
                m_in, m_out = change(c_in).mean(), change(c_out).mean()
                ratio = m_out / m_in if m_in > 0 else float("nan")
                evidence.setdefault(model, {})[f"{other} vs {own}"] = {
                    "in_domain_change": _r(m_in),
                    "other_change": _r(m_out),
                    "ratio": _r(ratio),
                }
                if change(c_in).max() < MIN_CHANGE:
                    checks.append(Check("unclear", f"{what}: barely changed in domain"))
                    continue
                status = (
                    "pass"
                    if ratio < 1 - DOMAIN_MARGIN
                    else "fail"
                    if ratio > 1 + DOMAIN_MARGIN
                    else "unclear"
                )
                checks.append(
                    Check(status, f"{what}: mean 1-CKA {m_out:.3f} vs {m_in:.3f} (x{ratio:.2f})")
                )
    if not checks:
        why = "no fine-tuned model has both an in-domain and another text source in this run"
        return Claim("out_of_domain", claim, "inconclusive", rule, why, evidence)
    verdict, reason = aggregate(checks)
    return Claim("out_of_domain", claim, verdict, rule, reason, evidence)


# ---------------------------------------------------------------------------------------
# (e) the ablations agree
# ---------------------------------------------------------------------------------------


def _task(inputs: ClaimInputs, model: str) -> str | None:
    """A model's task: from the run's fine-tuning jobs, else from its ablation rows."""
    rows = (r.get("task") for r in inputs.ablations if r.get("model") == model)
    return inputs.tasks.get(model) or next(rows, None)


def _ablation_drop(inputs: ClaimInputs, model: str, half: int) -> tuple[Check, dict]:
    rows = [
        r
        for r in inputs.ablations
        if r.get("model") == model and r.get("mode") == "restore" and finite(r.get("value"))
    ]
    have = {r.get("metric") for r in rows}
    metric = next((m for m in TASK_METRICS if m in have), min(have, key=str, default=None))
    ref_rows = [r for r in rows if r.get("metric") == metric and r.get("k") == 0]
    bottom = [
        r
        for r in rows
        if r.get("metric") == metric and r.get("direction") == "bottom" and r.get("k")
    ]
    if not bottom:
        return Check("unclear", f"{model}: no restore-bottom ablation"), {}
    row = min(bottom, key=lambda r: (abs(int(r["k"]) - half), int(r["k"])))
    reference = (
        float(ref_rows[0]["value"])
        if ref_rows
        else inputs.finetune_metrics.get(model, {}).get(metric)
    )
    ev = {
        "metric": metric,
        "k": int(row["k"]),
        "value": _r(row["value"]),
        "n": row.get("n_examples"),
    }
    if not finite(reference) or reference <= 0:
        return Check("unclear", f"{model}: no positive unablated {metric}"), ev
    drop = relative_drop(float(reference), float(row["value"]))
    ev.update(reference=_r(reference), relative_drop=_r(drop))
    n = row.get("n_examples")
    if finite(n) and n < MIN_EXAMPLES:
        return Check("unclear", f"{model}: only {n} evaluation examples"), ev
    note = (
        f"{model} {metric} {reference:.3f} -> {row['value']:.3f} with the bottom {row['k']} "
        f"layers restored ({-drop:+.0%})"
    )
    ok = drop > SMALL_DROP if is_parser(_task(inputs, model)) else drop <= SMALL_DROP
    return Check("pass" if ok else "fail", note), ev


def ablations_agree(inputs: ClaimInputs) -> Claim:
    """(e) Restoring the pre-trained bottom half costs the shallow tasks at most
    :data:`SMALL_DROP` of their metric and the parser more."""
    rule = (
        f"Restore the pre-trained weights of the bottom L // 2 layers of each fine-tuned model "
        f"(keeping its head; the ablation row with k nearest L / 2) and take the relative drop "
        f"of its task metric (first of {', '.join(TASK_METRICS)}) against the unablated model "
        f"(k = 0, else its fine-tuning metric). A shallow task (MNLI, SQuAD, AG News) passes at "
        f"a drop of at most {SMALL_DROP:.0%}, the parser at more; unclear with fewer than "
        f"{MIN_EXAMPLES} evaluation examples. Supported when all pass; not supported when the "
        "parser fails or every shallow task fails; inconclusive without a parser or when mixed."
    )
    claim = (
        "Layer ablations agree: MNLI, SQuAD and AG News need little of the bottom layers' "
        "change, parsing needs more."
    )
    if not inputs.ablations:
        return Claim(
            "ablations", claim, "inconclusive", rule, "no ablation results in this run", {}
        )
    num_layers = inputs.layers()
    if num_layers is None:
        ks = [int(r["k"]) for r in inputs.ablations if finite(r.get("k"))]
        num_layers = max(ks) if ks else 0
    half = num_layers // 2
    ablated = {r.get("model") for r in inputs.ablations}
    models = [m for m in dict.fromkeys([*inputs.finetuned, *ablated]) if m in ablated]
    evidence: dict = {m: "not ablated" for m in inputs.finetuned if m not in ablated}
    shallow, parser = [], []
    for model in models:
        check, ev = _ablation_drop(inputs, model, half)
        evidence[model] = ev
        (parser if is_parser(_task(inputs, model)) else shallow).append(check)
    checks = parser + shallow
    if any(c.status == "fail" for c in parser) or (
        shallow and all(c.status == "fail" for c in shallow)
    ):
        _, reason = aggregate(checks, one_fail_refutes=True)
        return Claim("ablations", claim, "not supported", rule, reason, evidence)
    if not parser:
        _, reason = aggregate(shallow)
        why = "no parsing model's ablation in this run; shallow tasks: " + reason
        return Claim("ablations", claim, "inconclusive", rule, why, evidence)
    if not shallow:
        why = "no shallow task's ablation to compare the parser with"
        return Claim("ablations", claim, "inconclusive", rule, why, evidence)
    verdict, reason = aggregate(checks)
    return Claim("ablations", claim, verdict, rule, reason, evidence)


#: The checks :func:`check_claims` runs, in the report's order.
CLAIM_CHECKS: tuple[Callable[[ClaimInputs], Claim], ...] = (
    no_forgetting,
    top_layers_change,
    parsing_reaches_deeper,
    in_domain_changes_more,
    ablations_agree,
)


def check_claims(inputs: ClaimInputs) -> list[Claim]:
    """Every claim of :data:`CLAIM_CHECKS`, checked on ``inputs``."""
    return [check(inputs) for check in CLAIM_CHECKS]
