"""The figures of the analysis methods on a model trained on napkit's grammar.

One function per method, each returning a flat dict of the keys ``napkit lm demo --json``
prints (``snmf_*``, ``sae_*``, ``patch_*``, ``dla_*``, ``wordclass_*``) plus details.
Every figure is measured here, in the same run, with its baseline (SVD and scikit-learn
NMF for SNMF, zero ablation for SAE splicing, the random-init model and shuffled labels
for word classes).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from napkit.errors import NapkitError
from napkit.lm.ablation import ablate, ablation_scores, position_components
from napkit.lm.attribution import direct_logit_attribution, output_node_recovery, output_nodes
from napkit.lm.corpus import GRAMMAR, Grammar, Sentence
from napkit.lm.patching import Site, capture, patch, patch_sweep
from napkit.lm.sae import ce_recovered, sae_metrics, train_sae
from napkit.lm.snmf import fit_snmf, svd_rel_error
from napkit.lm.wordclass import random_init_like, windows, wordclass_scores


def token_rows(model, tokenizer, sentences, site: Site) -> torch.Tensor:
    """Activations at ``site`` for every real token of the sentences: [tokens, width]."""
    enc = tokenizer([s.text for s in sentences], return_tensors="pt", padding=True)
    acts = next(iter(capture(model, enc["input_ids"], enc["attention_mask"], [site]).values()))
    return acts[enc["attention_mask"].bool()]


def _prompts(tokenizer, sentences):
    enc = tokenizer([s.prompt for s in sentences], return_tensors="pt", padding=True)
    answers = torch.tensor(tokenizer.convert_tokens_to_ids([s.answer for s in sentences]))
    return enc["input_ids"], enc["attention_mask"], answers


def snmf_figures(
    model, tokenizer, layer: int = 1, rank: int = 24, n_sentences: int = 300, seed: int = 0
) -> dict:
    """Planted recovery, then SNMF vs SVD vs scikit-learn NMF on one layer's MLP neurons."""
    from scipy.optimize import linear_sum_assignment
    from sklearn.decomposition import NMF

    rng = np.random.default_rng(seed)
    d, n, k, support = 100, 300, 8, 4
    f = np.zeros((d, k))
    for j in range(k):
        f[rng.choice(d, support, replace=False), j] = rng.normal(size=support) + 2 * np.sign(
            rng.normal(size=support)
        )
    g = rng.exponential(size=(n, k)) * (rng.random((n, k)) < 0.3)
    fit = fit_snmf(
        f @ g.T + 0.01 * rng.normal(size=(d, n)),
        k,
        init=("kmeans", "svd", "random"),
        restarts=4,
        seed=seed,
        winner_take_all_fraction=0.04,
    )
    found = fit.F.numpy() / np.maximum(np.linalg.norm(fit.F.numpy(), axis=0), 1e-30)
    cos = np.abs((f / np.linalg.norm(f, axis=0)).T @ found)
    r, c = linear_sum_assignment(-cos)
    sentences = GRAMMAR.corpus(n_sentences, seed=seed + 1)
    a = token_rows(model, tokenizer, sentences, Site("neuron", layer, 0)).double().T.numpy()  # d_mlp × tokens
    snmf = fit_snmf(a, rank, init="svd", seed=seed, n_iter=300)
    nmf = NMF(rank, init="nndsvda", max_iter=1000, random_state=seed)
    w = nmf.fit_transform(a.T)
    return {
        "snmf_planted_cos": float(cos[r, c].min()),
        "snmf_rel_error": snmf.rel_errors[-1],
        "nmf_rel_error": float(np.linalg.norm(a.T - w @ nmf.components_) / np.linalg.norm(a)),
        "svd_rel_error": svd_rel_error(a, rank),
        "snmf_shape": list(a.shape),
        "snmf_rank": rank,
    }


def sae_figures(
    model, tokenizer, layer: int = 2, expansion: int = 4, k: int = 32, steps: int = 3000, seed: int = 0
) -> dict:
    """A TopK SAE on one block's output: FVU, L0, dead fraction on held-out tokens, CE recovered."""
    site = Site("resid_post", layer)
    train = token_rows(model, tokenizer, GRAMMAR.corpus(3000, seed=seed + 2), site)
    held_out = GRAMMAR.corpus(300, seed=seed + 3)
    test = token_rows(model, tokenizer, held_out, site)
    name = f"transformer.h.{layer}"
    sae, _ = train_sae(
        train, expansion * train.shape[1], kind="topk", k=k, steps=steps, seed=seed, hook_name=name
    )
    m = sae_metrics(sae, test)
    enc = tokenizer([s.text for s in held_out], return_tensors="pt", padding=True)
    ce = ce_recovered(model, sae, name, enc["input_ids"], enc["attention_mask"])
    return {
        "sae_fvu": m.fvu,
        "sae_l0": m.l0,
        "sae_dead_frac": m.dead_frac,
        "sae_ce_recovered": ce["ce_recovered"],
        "sae_ce": ce,
        "sae_layer": layer,
        "sae_k": k,
        "sae_d_sae": sae.d_sae,
    }


def site_label(site: Site) -> str:
    """``head2.1``, ``mlp3``: a component as the figures name it."""
    return f"{site.component}{site.layer}" + ("" if site.index is None else f".{site.index}")


def _variant(grammar: Grammar, words: list[str], kind: str, answer_index: int | None) -> Sentence:
    """A sentence with some words replaced (a corrupted prompt), classes from the grammar."""
    return Sentence(tuple(words), tuple(grammar.word_class[w] for w in words), kind, answer_index)


def _accuracy(logits: torch.Tensor, answers: torch.Tensor) -> float:
    return float((logits.argmax(-1) == answers).float().mean())


def _top_components(result_heads, result_mlps, m: int) -> list[Site]:
    scores = np.concatenate([result_heads.ravel(), result_mlps])
    n_heads = result_heads.shape[1]
    top = np.argsort(-scores, kind="stable")[:m]
    return [
        Site("head", j // n_heads, j % n_heads)
        if j < result_heads.size
        else Site("mlp", j - result_heads.size)
        for j in map(int, top)
    ]


def patch_figures(
    model, tokenizer, grammar: Grammar = GRAMMAR, n: int = 64, top: int = 3, seed: int = 0
) -> dict:
    """Facts (recall) vs bindings (in-context): patching sweeps, then cross-ablation of top components."""
    rng = np.random.default_rng(seed)
    names = list(grammar.facts)
    pairs = [
        (a, b)
        for a, b in (rng.choice(names, 2, replace=False) for _ in range(4 * n))
        if grammar.facts[a] != grammar.facts[b]
    ][:n]
    facts = [grammar.fact(rng, a) for a, _ in pairs]
    swaps = [grammar.fact(rng, b) for _, b in pairs]
    f_clean, f_mask, f_ans = _prompts(tokenizer, facts)
    f_corr, _, f_wrong = _prompts(tokenizer, swaps)
    subject = 1  # position of the name after <bos>
    resid = patch_sweep(model, f_clean, f_corr, f_ans, f_wrong, "resid_pre", f_mask)
    f_heads = patch_sweep(model, f_clean, f_corr, f_ans, f_wrong, "head", f_mask).scores
    f_mlps = patch_sweep(model, f_clean, f_corr, f_ans, f_wrong, "mlp", f_mask).scores
    binds = grammar.sample("binding", n, seed + 5)
    flipped = [
        _variant(
            grammar,
            [*s.words[:8], s.words[4] if s.meta["query_first"] else s.words[0], *s.words[9:]],
            "binding",
            s.answer_index,
        )
        for s in binds
    ]
    b_clean, b_mask, b_ans = _prompts(tokenizer, binds)
    b_corr, _, _ = _prompts(tokenizer, flipped)
    b_wrong = torch.tensor(
        tokenizer.convert_tokens_to_ids([s.words[6] if s.meta["query_first"] else s.words[2] for s in binds])
    )
    b_heads = patch_sweep(model, b_clean, b_corr, b_ans, b_wrong, "head", b_mask).scores
    b_mlps = patch_sweep(model, b_clean, b_corr, b_ans, b_wrong, "mlp", b_mask).scores
    recall_parts = _top_components(f_heads, f_mlps, top)
    binding_parts = _top_components(b_heads, b_mlps, top)
    base_f = _accuracy(ablate(model, f_clean, [], "mean", attention_mask=f_mask), f_ans)
    base_b = _accuracy(ablate(model, b_clean, [], "mean", attention_mask=b_mask), b_ans)

    def cut(parts):
        af = _accuracy(ablate(model, f_clean, parts, "mean", attention_mask=f_mask), f_ans)
        ab = _accuracy(ablate(model, b_clean, parts, "mean", attention_mask=b_mask), b_ans)
        return base_f - af, base_b - ab

    allpos_recall_cut, allpos_binding_cut = cut(recall_parts)
    allpos_reverse_recall_cut, allpos_reverse_binding_cut = cut(binding_parts)
    return {
        "patch_recall_recovery": float(resid.scores[1:, subject].max()),
        "patch_recall_subject_by_layer": resid.scores[:, subject].tolist(),
        "patch_recall_last_by_layer": resid.scores[:, -1].tolist(),
        **answer_position_ablation(model, tokenizer, grammar, top=top, seed=seed),
        # whole heads and MLPs ranked by patching, mean-ablated at every position
        "patch_allpos_recall_cut": allpos_recall_cut,
        "patch_allpos_binding_cut": allpos_binding_cut,
        "patch_allpos_reverse_binding_cut": allpos_reverse_binding_cut,
        "patch_allpos_reverse_recall_cut": allpos_reverse_recall_cut,
        "patch_allpos_recall_components": [site_label(s) for s in recall_parts],
        "patch_allpos_binding_components": [site_label(s) for s in binding_parts],
    }


def _task_batch(tokenizer, sentences) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Prompts of one token length: ids, mask, answers and the answer position (the last token)."""
    ids, mask, answers = _prompts(tokenizer, sentences)
    if not bool(mask.all()):
        raise NapkitError("answer-position ablation needs prompts of one token length")
    return ids, mask, answers, ids.shape[1] - 1


def answer_position_ablation(
    model,
    tokenizer,
    grammar: Grammar = GRAMMAR,
    top: int = 3,
    n_select: int = 32,
    n_eval: int = 200,
    seed: int = 0,
) -> dict:
    """Cross-ablation of facts (recall) and bindings with components at the answer position.

    Components are every head and MLP neuron at the last prompt position. Each is scored per
    task by the drop of log p(answer) when it alone is mean-ablated there (facts: the whole
    fact table, one prompt per name; bindings: a selection set). The ``top`` components with
    the largest score difference (recall − binding, and the reverse) are then mean-ablated
    together at the answer position, and the accuracy cut is measured on facts and on a
    held-out set of bindings.
    """
    rng = np.random.default_rng(seed)
    facts = _task_batch(tokenizer, [grammar.fact(rng, name) for name in grammar.facts])
    select = _task_batch(tokenizer, grammar.sample("binding", n_select, seed + 11))
    held_out = _task_batch(tokenizer, grammar.sample("binding", n_eval, seed + 12))
    f_sites = position_components(model, facts[3])
    b_sites = position_components(model, select[3])
    s_f = ablation_scores(model, facts[0], facts[2], f_sites, facts[1])
    s_b = ablation_scores(model, select[0], select[2], b_sites, select[1])
    recall_idx = np.argsort(-(s_f - s_b), kind="stable")[:top]
    binding_idx = np.argsort(-(s_b - s_f), kind="stable")[:top]

    def accuracy(batch, idx) -> float:
        ids, mask, answers, position = batch
        sites = [replace(s, position=position) for s in (f_sites[i] for i in idx)]
        return _accuracy(ablate(model, ids, sites, "mean", attention_mask=mask), answers)

    base_f, base_b = accuracy(facts, []), accuracy(held_out, [])

    def cut(idx) -> tuple[float, float]:
        return base_f - accuracy(facts, idx), base_b - accuracy(held_out, idx)

    (recall_cut, binding_cut), (rev_recall_cut, rev_binding_cut) = cut(recall_idx), cut(binding_idx)

    def named(idx) -> list[str]:
        return [site_label(f_sites[i]) for i in idx]

    return {
        "patch_recall_cut": recall_cut,
        "patch_binding_cut": binding_cut,
        "patch_reverse_binding_cut": rev_binding_cut,
        "patch_reverse_recall_cut": rev_recall_cut,
        "patch_recall_components": named(recall_idx),
        "patch_binding_components": named(binding_idx),
        "patch_component_scores": {
            "recall": [float(s_f[i]) for i in recall_idx],
            "recall_on_binding": [float(s_b[i]) for i in recall_idx],
            "binding": [float(s_b[i]) for i in binding_idx],
            "binding_on_recall": [float(s_f[i]) for i in binding_idx],
        },
        "patch_base_accuracy": {"fact": base_f, "binding": base_b},
    }


def dla_figures(model, tokenizer, grammar: Grammar = GRAMMAR, n: int = 64, k: int = 4, seed: int = 0) -> dict:
    """DLA on multiple choice (correct letter vs the letter the corrupted prompt asks for)."""
    rng = np.random.default_rng(seed)
    clean = grammar.sample("choice", n, seed + 7)
    corrupted = []
    for s in clean:  # the same options rotated: the right city moves to another letter
        shift = 1 + int(rng.integers(2))
        opts = list(s.meta["options"])
        opts = opts[shift:] + opts[:shift]
        words = list(s.words)
        words[7], words[10], words[13] = opts
        letter = "ABC"[opts.index(s.meta["options"][s.meta["correct"]])]
        words[s.answer_index] = letter
        corrupted.append(_variant(grammar, words, "choice", s.answer_index))
    c_ids, c_mask, c_ans = _prompts(tokenizer, clean)
    x_ids, _, x_ans = _prompts(tokenizer, corrupted)
    dla = direct_logit_attribution(model, c_ids, c_ans, x_ans, c_mask)
    nodes = output_nodes(dla, k)
    whole = patch(model, c_ids, x_ids, c_ans, x_ans, [[Site("resid_pre", 0)]], c_mask)
    recovery = output_node_recovery(model, c_ids, x_ids, c_ans, x_ans, nodes, c_mask)
    ranked = output_nodes(dla, dla.heads[0].size + dla.mlps.shape[1])
    prefixes = [ranked[:j] for j in range(1, len(ranked) + 1)]
    curve = patch(model, c_ids, x_ids, c_ans, x_ans, prefixes, c_mask).scores
    enough = np.nonzero(curve >= 0.8)[0]
    return {
        "dla_sum_error": dla.sum_error(),
        "dla_logit_diff": float(dla.logit_diff.mean()),
        "dla_output_nodes": [site_label(s) for s in nodes],
        "dla_output_node_recovery": recovery,
        "dla_output_node_k": k,
        "dla_recovery_by_k": curve.tolist(),
        "dla_nodes_for_80": int(enough[0]) + 1 if len(enough) else -1,
        "dla_check_everything": float(whole.scores[0]),
    }


def wordclass_figures(model, tokenizer, n: int = 2000, seed: int = 0) -> dict:
    """Best-layer purity of the trained model vs the same architecture at random init."""
    # running text = the grammar's plain clauses (the task templates would make FUNC words the majority)
    ids, labels = windows(GRAMMAR.sample("plain", 800, seed + 9), tokenizer, n, seed=seed)
    trained = wordclass_scores(model, ids, labels, seed)
    random = wordclass_scores(random_init_like(model, seed), ids, labels, seed)
    return {
        "wordclass_purity_trained": trained.best_purity,
        "wordclass_purity_random": random.best_purity,
        "wordclass_best_layer": trained.best_layer,
        "wordclass_purity_by_layer": trained.purity.tolist(),
        "wordclass_nmi_by_layer": trained.nmi.tolist(),
        "wordclass_shuffled_purity": float(trained.shuffled_purity.max()),
        "wordclass_majority": trained.majority,
    }
