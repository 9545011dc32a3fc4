"""Is the difference of means the best last-block steering vector? Against the KL-aware gradient.

At the chosen site (the tiny model's last block, ``blocks.3.hook_resid_post``) the next-token
logits depend on the state only through the final LayerNorm and the unembedding, so the
first-order question has an answer: with ``J`` the Jacobian of the logits in the state, the
log-odds gradient is ``g = mean (J[bad] − J[good])`` and the local KL cost of a step ``d`` is
``½ dᵀ F d`` with ``F = mean Jᵀ (diag p − p pᵀ) J`` (the Fisher information of the state).
The direction that buys the most log-odds per unit of KL is ``F⁺ g``; far from the state the
first order breaks down, so the directions ``(F + λ I)⁻¹ g`` are measured over a ridge grid
(λ relative to the mean eigenvalue of F; λ → ∞ is ``g`` itself). F and g come from the
training contrast pairs; every ratio is measured like the demo's (held-out balanced set, 20
equal-norm random controls at equal KL, seed 0), against the difference of means of the demo.

    PYTHONPATH=src python benchmarks/lm_steer_gradient.py [--out FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import finish_report  # noqa: E402
from _lm import header  # noqa: E402

SITE = "blocks.3.hook_resid_post"
RIDGES = (0.01, 0.1, 1.0, 10.0, float("inf"))
KLS = (0.5, 0.25, 3.0)


def fisher_and_gradient(lm, states, token_a: int, token_b: int):
    """(F, g) of the logits in the last block's state, averaged over ``states`` (float64)."""
    import torch

    model = lm.model.double()
    try:
        def logits(x):
            return model.lm_head(model.transformer.ln_f(x))

        d = states.shape[1]
        fisher, grad = torch.zeros(d, d, dtype=torch.float64), torch.zeros(d, dtype=torch.float64)
        for row in states:
            jac = torch.autograd.functional.jacobian(logits, row)  # vocab × d
            p = torch.softmax(logits(row), -1).detach()
            fisher += jac.T @ (torch.diag(p) - torch.outer(p, p)) @ jac
            grad += jac[token_b] - jac[token_a]
        return fisher / len(states), grad / len(states)
    finally:
        model.float()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    import torch

    from napkit.lm.capture import capture
    from napkit.lm.corpus import OUTCOME
    from napkit.lm.models import load_tiny
    from napkit.lm.regime_steering import SELECT_SEED, contrast_pair_prompts, regime_vector
    from napkit.lm.steering import steering_effect
    from napkit.lm.tokenizer import known_token_id

    torch.set_num_threads(1)
    lines = header("Steering at the last block: the difference of means against the KL-aware gradient",
                   "PYTHONPATH=src python benchmarks/lm_steer_gradient.py")
    lm = load_tiny()
    ia, ib = (known_token_id(lm.tokenizer, t) for t in OUTCOME)
    train = contrast_pair_prompts(25, SELECT_SEED)
    held = contrast_pair_prompts(50)
    states = torch.from_numpy(capture(lm, train, [SITE], [-1]).acts[SITE]).double()
    fisher, grad = fisher_and_gradient(lm, states, ia, ib)
    v = regime_vector(lm, SITE, "differing", 200)
    scale = float(torch.trace(fisher)) / fisher.shape[0]
    rows = [("difference of means (the demo's)", v)]
    for lam in RIDGES:
        if lam == float("inf"):
            d = grad
        else:
            d = torch.linalg.solve(fisher + lam * scale * torch.eye(fisher.shape[0], dtype=torch.float64), grad)
        rows.append((f"(F + {lam:g}·mean eig · I)⁻¹ g" if lam != float("inf") else "g (the gradient)",
                     (d / d.norm() * v.norm()).float()))
    lines += [f"F and g from {len(train)} training prompts at `{SITE}` (last position); ratios on "
              f"{len(held)} held-out prompts, 20 random controls (seed 0), added at every position.", "",
              "| direction | cosine to the difference of means | " + " | ".join(
                  f"KL {k:g}: effect, ratio" for k in KLS) + " |",
              "|---|---|" + "---|" * len(KLS)]
    for name, vec in rows:
        cells = []
        for kl in KLS:
            r = steering_effect(lm, held, SITE, vec, OUTCOME[0], OUTCOME[1], kl, n_random=20)
            cells.append(f"{r.effect:+.2f}, **{r.ratio:.2f}**")
        cos = float(torch.nn.functional.cosine_similarity(vec, v, dim=0))
        lines.append(f"| {name} | {cos:.3f} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    finish_report(lines, args.out)


if __name__ == "__main__":
    main()
