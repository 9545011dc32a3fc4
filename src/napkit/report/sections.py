"""The sections of the report page, each from the figures of :mod:`napkit.report.build`."""

from __future__ import annotations

from napkit.report.fmt import fmt
from napkit.report.html import cell, esc, figure_html, table_html
from napkit.report.verification import verdict_counts

COUNTEREXAMPLE_WIDTH = 520  # pixels on the page: two drawings side by side


def verdict_cell(q) -> str:
    return cell(q.verdict, q.verdict)


def model_section(m: dict, data_name: str) -> str:
    facts = [
        ["model", m["source"] or "(in memory)"],
        ["input shape", " × ".join(str(s) for s in m["input_shape"])],
        ["hidden layers", str(len(m["layers"]))],
        ["hidden neurons", m["neurons"]],
        ["outputs (classes)", m["outputs"]],
        ["parameters", m["parameters"]],
        ["fingerprint (sha256 of the weights)", m["fingerprint"]],
        ["data", f"{data_name}, {m['samples']} samples"],
        ["accuracy on the data", m["accuracy"]],
    ]
    layers = [[k, layer["name"], layer["units"]] for k, layer in enumerate(m["layers"])]
    return (table_html(["", ""], [[a, fmt(b) if not isinstance(b, str) else b] for a, b in facts],
                       "model-facts")
            + table_html(["hidden layer", "name", "units"], layers, "model-layers"))


def naps_section(naps_rows: list[dict], delta: float, all_samples: bool, image: str) -> str:
    rows = [
        [r["label"], r["samples"], r["support"], r["active"], r["inactive"], r["constrained"],
         r["recall"], r["precision"]]
        for r in naps_rows
    ]
    mined = "all samples" if all_samples else "correctly classified samples only"
    mean = lambda k: sum(r[k] for r in naps_rows if r[k] == r[k]) / max(len(naps_rows), 1)  # noqa: E731
    return (
        f"<p>δ = {esc(fmt(delta))}, mined from {esc(mined)}. Recall: share of the class's inputs "
        "that follow its NAP; precision: share of the inputs following the NAP that belong to the "
        f"class. Mean recall {esc(fmt(mean('recall')))}, mean precision {esc(fmt(mean('precision')))}.</p>"
        + table_html(["class", "samples in data", "mined from", "active", "inactive", "constrained",
                      "recall", "precision"], rows, "per-class-naps")
        + figure_html(image, "NAP of each class: red neurons must be active, blue inactive, white free")
    )


def sweep_section(sweep: list[dict] | None, image: str | None, names: tuple[str, str]) -> str:
    if not sweep:
        return ("<p class='note'>Give mining data (<code>--mine-data</code>) to see how recall and "
                "precision change with δ.</p>")
    rows = [[r["delta"], r["neurons"], r["recall_fit"], r["recall"], r["precision"]] for r in sweep]
    head = ["δ", "mean constrained neurons", f"mean recall ({names[0]}, correct only)",
            f"mean recall ({names[1]})", f"mean precision ({names[1]})"]
    return table_html(head, rows, "delta-sweep") + (figure_html(image, "recall and precision against δ")
                                                     if image else "")


def monitor_section(mon: dict, images: tuple[str, str], novelty: dict | None) -> str:
    pts = [
        [p["gamma"], p["flagged_rate"], p["errors_caught"], p["correct_flagged"], p["softmax_errors_caught"]]
        for p in mon["operating_points"]
    ]
    body = (
        f"<p>Score: the number of violated constraints of the NAP of the predicted class (δ = "
        f"{esc(fmt(mon['delta']))}); an input is flagged when more than γ fail. {mon['errors']} of "
        f"{mon['n']} predictions are wrong. AUROC of the score for wrong predictions "
        f"{esc(fmt(mon['auroc']))}, of max-softmax {esc(fmt(mon['max_softmax_auroc']))}.</p>"
        + figure_html(images[0], "ROC curves: NAP violations against max-softmax", 480)
        + figure_html(images[1], "violated constraints for correct and wrong predictions", 520)
        + "<h3>Operating points over γ</h3>"
        + table_html(["γ", "flagged", "errors caught", "correct flagged",
                      "errors caught by max-softmax flagging as many"], pts, "operating-points",
                     percent=(1, 2, 3, 4))
    )
    if novelty:
        body += (
            f"<h3>Novelty</h3><p>{esc(novelty['what'])}: {esc(fmt(novelty['novel_flagged'], True))} of "
            f"the inputs of the held-out classes are flagged (AUROC {esc(fmt(novelty['novelty_auroc']))}), "
            f"against {esc(fmt(novelty['flagged_rate'], True))} of the known ones.</p>"
        )
    return body


def verification_section(ver: dict, region: str) -> str:
    rows = []
    for r in ver["classes"]:
        d, loc = r["domain"], r["local"]
        rows.append([r["label"], verdict_cell(d), d.seconds, cell(d.reason),
                     "–" if r["centre"] is None else r["centre"], verdict_cell(loc), loc.seconds,
                     cell(loc.reason)])
    counts = verdict_counts(ver)
    count_rows = [[k, *[counts[k][v] for v in counts[k]]] for k in counts]
    limit = "" if ver["max_queries"] is None else f", at most {ver['max_queries']} solver queries"
    return (
        f"<p>NAP robustness of each class: every input that follows NAP_c is classified c, over the "
        f"whole domain {esc(region)} and within ε = {esc(fmt(ver['eps']))} (L∞) of the first input of "
        f"the class that the network classifies correctly and that follows the NAP (its row in the "
        f"data is given). Timeout {esc(fmt(ver['timeout']))} s per query{esc(limit)}; "
        f"{ver['queries']} solver queries ran. Every counterexample was re-checked by an exact "
        "float64 forward pass.</p>"
        + table_html(["class", "domain", "seconds", "reason", "centre row", f"ε = {fmt(ver['eps'])}",
                      "seconds", "reason"], rows, "per-class-verification", left=(1, 3, 5, 7))
        + table_html(["queries", *next(iter(counts.values())).keys()], count_rows, "verdict-counts",
                     left=(0,))
    )


def ambiguity_section(ver: dict, image: str) -> str:
    labels = ver["labels"]
    solved = [
        [labels[a], labels[b], verdict_cell(q), q.seconds, cell(q.reason)]
        for (a, b), q in sorted(ver["pairs"].items()) if q.reason != "disjoint by syntax"
    ]
    n_syn = sum(q.reason == "disjoint by syntax" for q in ver["pairs"].values())
    body = (
        f"<p>Can one input follow two NAPs? {n_syn} of {len(ver['pairs'])} pairs are disjoint by "
        "syntax (one NAP needs a neuron active that the other needs inactive); the verifier decided "
        "the rest (verified = no input of the domain follows both).</p>"
        + figure_html(image, "non-ambiguity matrix of the NAPs")
    )
    if solved:
        body += table_html(["i", "j", "result", "seconds", "reason"], solved, "pairs", left=(2, 4))
    return body


def counterexample_section(items: list[dict]) -> str:
    if not items:
        return "<p>No counterexample: no query was falsified.</p>"
    rows = [[cell(it["query"]), it["label"], it["predicted"], it["distance"]] for it in items]
    body = table_html(["query", "class of the nearest image", "counterexample classified",
                       "L2 distance to the nearest image"],
                      rows, "counterexamples", left=(0,))
    for it in items:
        if it.get("image"):
            body += figure_html(it["image"], it["query"], COUNTEREXAMPLE_WIDTH)
    return body


def page_sections(
    figures: dict, mon: dict, ver: dict, sweep_names: tuple[str, str], novelty: dict | None,
    region: str, data_name: str, has_sweep: bool, cex: list[dict],
) -> list[tuple[str, str, str]]:
    """(anchor, heading, body) of every section, in reading order."""
    naps = figures["naps"]
    return [
        ("model", "Model", model_section(figures["model"], data_name)),
        ("naps", "NAPs per class",
         naps_section(naps["classes"], naps["delta"], naps["all_samples"], "naps.png")),
        ("sweep", "δ sweep", sweep_section(figures["sweep"], "delta_sweep.png" if has_sweep else None,
                                           sweep_names)),
        ("monitor", "Run-time monitor", monitor_section(mon, ("roc.png", "violations.png"), novelty)),
        ("verification", "Verification", verification_section(ver, region)),
        ("ambiguity", "Non-ambiguity", ambiguity_section(ver, "ambiguity.png")),
        ("counterexamples", "Counterexamples", counterexample_section(cex)),
    ]
