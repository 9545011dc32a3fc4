"""When does the tiny model's bindings circuit form? Bindings alone, one seed, one config.

    PYTHONPATH=src .venv/bin/python benchmarks/lm_bindings_phase.py SEED '{"lr": 0.001, ...}' [--constant]

The JSON holds ``TinyConfig`` changes (``lr``, ``bindings_steps``, ``answer_weight``,
``weight_decay``, ``batch_size``, ``warmup``). The phase runs ``bindings_steps`` steps on
bindings only, at ``lr`` on the trainer's warm-up and cosine or, with ``--constant``, at
``lr`` after the warm-up; every 250 steps it prints the binding accuracy on 200 held-out
prompts. Prints one JSON line. Results: benchmarks/results/lm_train.md (stop 19).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import torch

import napkit.lm.train as T
from napkit.lm.corpus import GRAMMAR
from napkit.lm.evaluate import answer_accuracy, task_sentences

EVERY = 250  # steps between evaluations
N_EVAL = 200  # held-out binding prompts per evaluation


def main(argv=None) -> int:
    from transformers import GPT2LMHeadModel

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("seed", type=int)
    ap.add_argument("changes", nargs="?", default="{}")
    ap.add_argument("--constant", action="store_true", help="constant rate after the warm-up")
    args = ap.parse_args(argv)
    cfg = replace(T.TinyConfig(), **json.loads(args.changes))
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    tok = T.build_tokenizer(GRAMMAR)
    model = GPT2LMHeadModel(T.gpt2_config(len(tok), cfg, tok))
    opt = T._adamw(model, cfg.lr, cfg)
    bs = cfg.batch_size
    sents = GRAMMAR.corpus(cfg.bindings_steps * bs, args.seed, mix={"binding": 1.0})
    data, weights = T.encode_corpus(sents, tok, cfg.context, cfg.answer_weight)
    held_out = task_sentences("binding", GRAMMAR, N_EVAL)
    n = len(sents) // bs
    curve, t0 = [], time.perf_counter()
    model.train()
    for step in range(n):
        if args.constant:
            lr = cfg.lr * min(1.0, (step + 1) / cfg.warmup)
        else:
            lr = T._lr_at(step, n, cfg.lr, cfg.warmup)
        rows = slice(step * bs, (step + 1) * bs)
        T._step(model, opt, data[rows], weights[rows], lr)
        if (step + 1) % EVERY == 0:
            model.eval()
            curve.append(round(answer_accuracy(model, tok, held_out), 3))
            model.train()
    print(
        json.dumps(
            {
                "seed": args.seed,
                "changes": json.loads(args.changes),
                "constant": args.constant,
                "binding_accuracy_every_250": curve,
                "seconds": round(time.perf_counter() - t0),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
