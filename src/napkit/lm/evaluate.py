"""Task accuracies of a causal LM on the grammar: does the argmax next token equal the answer?"""

from __future__ import annotations

import numpy as np
import torch

from napkit.errors import NapkitError
from napkit.lm.corpus import GRAMMAR, LEXICON, Grammar, Sentence
from napkit.lm.tokenizer import known_token_id

# What the training gate demands of the tiny model, per task kind.
GATE = {"fact": 0.98, "binding": 0.95, "choice": 0.90}
EVAL_SEED = 10_007  # sentences drawn for evaluation, apart from any training seed
EVAL_SIZE = 400


def answer_ids(tokenizer, sentences: list[Sentence]) -> torch.Tensor:
    """The id of each sentence's answer word; refuses an answer that is not exactly one token."""
    ids = []
    for s in sentences:
        if s.answer is None:
            raise NapkitError(f"a {s.kind} sentence has no answer word")
        ids.append(known_token_id(tokenizer, s.answer, "answer word"))
    return torch.tensor(ids)


@torch.no_grad()
def next_token_logits(model, tokenizer, prompts: list[str], batch_size: int = 256) -> torch.Tensor:
    """Logits of the token after each prompt (its last real position), shape (n, vocab)."""
    out = []
    for lo in range(0, len(prompts), batch_size):
        enc = tokenizer(prompts[lo : lo + batch_size], return_tensors="pt", padding=True)
        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
        last = enc["attention_mask"].sum(1) - 1
        out.append(logits[torch.arange(len(last)), last].float())
    return torch.cat(out)


def answer_accuracy(model, tokenizer, sentences: list[Sentence]) -> float:
    """Fraction of sentences whose argmax next token after the prompt is the answer."""
    if not sentences:
        raise NapkitError("no sentences to evaluate")
    logits = next_token_logits(model, tokenizer, [s.prompt for s in sentences])
    return float((logits.argmax(1) == answer_ids(tokenizer, sentences)).float().mean())


def task_sentences(kind: str, grammar: Grammar = GRAMMAR, n: int = EVAL_SIZE, seed: int = EVAL_SEED):
    """The evaluation set of a task: every fact once; ``n`` seeded sentences otherwise."""
    if kind == "fact":
        rng = np.random.default_rng(seed)
        return [grammar.fact(rng, name) for name in LEXICON["NAME"]]
    return grammar.sample(kind, n, seed)


def task_accuracies(model, tokenizer, grammar: Grammar = GRAMMAR, n: int = EVAL_SIZE) -> dict[str, float]:
    """Accuracy on facts, bindings, multiple choice and the contrast outcome."""
    kinds = ("fact", "binding", "choice", "contrast")
    return {k: answer_accuracy(model, tokenizer, task_sentences(k, grammar, n)) for k in kinds}


def gate_failures(accuracies: dict[str, float], gate: dict[str, float] = GATE) -> list[str]:
    """The tasks below their gate, as ``kind 0.931 < 0.95`` strings (empty when it passes)."""
    return [f"{k} {accuracies[k]:.3f} < {v}" for k, v in gate.items() if accuracies[k] < v]
