"""A seeded word-level grammar whose tokens carry their class and whose sentences carry their kind.

It is the ground truth the LM methods are checked against: every word has one class
(DET, ADJ, NOUN, VERB, PREP, NAME, CITY, COLOR, FUNC), and every sentence one kind:

- ``plain``: clauses such as ``the big cat sees a dog near the river .``;
- ``fact``: ``NAME lives in CITY .`` with one fixed city per name (recall);
- ``binding``: ``A is red and C is blue so A is red .`` (in-context reasoning: two of the
  variables A, B, C bound to two colours, one queried);
- ``choice``: ``where does NAME live ? A ) x B ) y C ) z answer : B .`` (multiple choice over
  the fact table);
- ``contrast``: two regimes that differ only in a cue adjective, positive (regime 0, ends
  ``so it was good``) or negative (regime 1, ends ``so it was bad``).
- ``appositive``: a clause whose NAME is followed by its city (``alice paris sees a dog .``):
  a name's attribute predicted right after the name, as real text does;
- ``relfact``: a fact after a clause with another name (``peggy sees ben and lives in
  lima .``, ``peggy sees a dog and ben lives in paris .``): which name the city belongs to
  follows from the clause, so the answer position cannot find the subject by its token or
  a fixed offset.

The last two are not in :data:`DEFAULT_MIX`. Relfacts are in the reference model's later
training phases (``napkit.lm.train.REFERENCE_MIX``): with them the model reads the fact from
the subject's position after its first layer, as issue 11 §5 asks (subject-position patching
recovers 1.0; the earlier reference, trained on :data:`DEFAULT_MIX`, copied the name to the
last position in layer 0 and recovered 0.039). Appositives alone did not do it (the name →
city lookup they teach works at any position); results in ``benchmarks/results/lm_patching.md``.

The lexicon and the fact table are fixed (``WORLD_SEED``), so every model trained on this
grammar shares one tokenizer and one set of facts; the sampling seed varies only the
sentences drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from napkit.errors import NapkitError

WORLD_SEED = 0
KINDS = ("plain", "fact", "binding", "choice", "contrast", "appositive", "relfact")
# The corpus share of each kind in a default corpus (and in the earlier reference's training):
# bindings need their own large share (a trial with few of them stayed at chance while facts
# reached 1.0); the reference's shares are napkit.lm.train.REFERENCE_MIX.
DEFAULT_MIX = {"plain": 0.20, "fact": 0.12, "binding": 0.35, "choice": 0.23, "contrast": 0.10}

LEXICON: dict[str, tuple[str, ...]] = {
    "DET": ("the", "a", "every", "some"),
    "ADJ": (
        "big", "small", "old", "young", "tall", "round",
        "happy", "kind", "bright", "warm", "gentle", "calm", "brave", "sweet",
        "sad", "cruel", "dark", "cold", "angry", "rude", "grim", "bitter",
        "good", "bad",
    ),
    "NOUN": (
        "cat", "dog", "bird", "horse", "child", "farmer", "king", "teacher",
        "river", "tree", "house", "boat", "book", "garden", "lamp", "stone",
    ),
    "VERB": ("sees", "likes", "finds", "holds", "follows", "watches", "helps", "carries"),
    "PREP": ("near", "behind", "under", "above", "beside", "with"),
    "NAME": (
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
        "ivan", "judy", "karl", "laura", "mike", "nina", "oscar", "peggy",
        "quinn", "rita", "sam", "tina", "uma", "victor", "wendy", "xavier",
        "yara", "zack", "amy", "ben", "cleo", "dan", "eva", "fred",
    ),
    "CITY": ("paris", "rome", "tokyo", "cairo", "lima", "oslo", "delhi", "sydney"),
    "COLOR": ("red", "blue", "green", "yellow", "white", "black", "pink", "brown"),
    "FUNC": (
        "lives", "in", "is", "and", "so", "it", "was", "where", "does", "live", "answer",
        "A", "B", "C", ":", ")", "?", ".",
    ),
}  # fmt: skip
POSITIVE = ("happy", "kind", "bright", "warm", "gentle", "calm", "brave", "sweet")
NEGATIVE = ("sad", "cruel", "dark", "cold", "angry", "rude", "grim", "bitter")
NEUTRAL_ADJ = ("big", "small", "old", "young", "tall", "round")
OUTCOME = ("good", "bad")  # what regime 0 and regime 1 end with
LETTERS = ("A", "B", "C")
VARIABLES = LETTERS  # what bindings bind colours to: "A is red and B is blue so A is red"
SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>")


@dataclass(frozen=True)
class Sentence:
    """Words with their classes, the sentence kind and, for tasks, the word to predict."""

    words: tuple[str, ...]
    classes: tuple[str, ...]
    kind: str
    answer_index: int | None = None  # index in ``words`` of the word a task asks for
    meta: dict = field(default_factory=dict, compare=False)

    @property
    def text(self) -> str:
        return " ".join(self.words)

    @property
    def prompt(self) -> str:
        """The words before the answer (the whole text when there is none)."""
        return " ".join(self.words[: self.answer_index]) if self.answer_index is not None else self.text

    @property
    def answer(self) -> str | None:
        return None if self.answer_index is None else self.words[self.answer_index]


class Grammar:
    """The lexicon, the fixed fact table and samplers for each sentence kind."""

    def __init__(self) -> None:
        self.word_class: dict[str, str] = {w: c for c, ws in LEXICON.items() for w in ws}
        if len(self.word_class) != sum(len(ws) for ws in LEXICON.values()):
            raise AssertionError("a word appears in two classes")
        self.classes: tuple[str, ...] = tuple(LEXICON)
        self.vocabulary: tuple[str, ...] = SPECIAL_TOKENS + tuple(w for ws in LEXICON.values() for w in ws)
        world = np.random.default_rng(WORLD_SEED)
        cities = LEXICON["CITY"]
        # every city gets the same number of names, in a seeded order
        order = world.permutation(len(LEXICON["NAME"]))
        self.facts: dict[str, str] = {
            LEXICON["NAME"][i]: cities[k % len(cities)] for k, i in enumerate(order)
        }

    # ---- one sentence of each kind -------------------------------------------------------
    def _make(self, words: list[str], kind: str, answer_index: int | None = None, **meta) -> Sentence:
        return Sentence(tuple(words), tuple(self.word_class[w] for w in words), kind, answer_index, meta)

    @staticmethod
    def _pick(rng: np.random.Generator, words, k: int | None = None):
        if k is None:
            return words[int(rng.integers(len(words)))]
        return [words[i] for i in rng.choice(len(words), size=k, replace=False)]

    def _noun_phrase(self, rng: np.random.Generator, adjective: bool | None = None) -> list[str]:
        adj = bool(rng.integers(2)) if adjective is None else adjective
        det = self._pick(rng, LEXICON["DET"])
        head = [det, self._pick(rng, NEUTRAL_ADJ + POSITIVE + NEGATIVE)] if adj else [det]
        return head + [self._pick(rng, LEXICON["NOUN"])]

    def _clause(self, rng: np.random.Generator) -> list[str]:
        form = int(rng.integers(4))
        verb = self._pick(rng, LEXICON["VERB"])
        if form == 0:  # NP VERB NP
            return self._noun_phrase(rng) + [verb] + self._noun_phrase(rng)
        if form == 1:  # NP VERB NP PREP NP
            prep = self._pick(rng, LEXICON["PREP"])
            return self._noun_phrase(rng) + [verb] + self._noun_phrase(rng) + [prep] + self._noun_phrase(rng)
        if form == 2:  # NAME VERB NP
            return [self._pick(rng, LEXICON["NAME"]), verb] + self._noun_phrase(rng)
        prep = self._pick(rng, LEXICON["PREP"])  # NP is PREP NP
        return self._noun_phrase(rng) + ["is", prep] + self._noun_phrase(rng)

    def plain(self, rng: np.random.Generator) -> Sentence:
        words = self._clause(rng)
        if rng.random() < 0.4:
            words += ["and"] + self._clause(rng)
        return self._make(words + ["."], "plain")

    def fact(self, rng: np.random.Generator, name: str | None = None) -> Sentence:
        name = name or self._pick(rng, LEXICON["NAME"])
        return self._make([name, "lives", "in", self.facts[name], "."], "fact", 3, name=name)

    def appositive(self, rng: np.random.Generator, name: str | None = None) -> Sentence:
        """A clause whose NAME is followed by its city (``the dog sees alice paris .``)."""
        name = name or self._pick(rng, LEXICON["NAME"])
        city, verb = self.facts[name], self._pick(rng, LEXICON["VERB"])
        if rng.integers(2):  # subject
            words = [name, city, verb] + self._noun_phrase(rng) + ["."]
        else:  # object
            words = self._noun_phrase(rng) + [verb, name, city, "."]
        return self._make(words, "appositive", words.index(city), name=name)

    def relfact(self, rng: np.random.Generator, name: str | None = None) -> Sentence:
        """A fact after a clause with another name: ``bob sees alice and lives in rome .``.

        The subject is either the first name (``NAME VERB NAME2 and lives in``) or the name
        right before ``lives`` (``NAME2 VERB NP and NAME lives in``); the other name lives
        elsewhere. Which name the city belongs to depends on the clause structure, not on
        the names' tokens or fixed positions.
        """
        name = name or self._pick(rng, LEXICON["NAME"])
        city, verb = self.facts[name], self._pick(rng, LEXICON["VERB"])
        other = self._pick(rng, tuple(n for n in LEXICON["NAME"] if self.facts[n] != city))
        obj = [other] if rng.integers(2) else self._noun_phrase(rng)
        if rng.integers(2):  # the subject first, another name or a noun phrase nearer
            words = [name, verb] + obj + ["and", "lives", "in", city, "."]
        else:  # another name (or noun phrase) first, the subject right before "lives"
            first = [other] if len(obj) > 1 else self._noun_phrase(rng)
            words = first + [verb] + self._noun_phrase(rng) + ["and", name, "lives", "in", city, "."]
        return self._make(words, "relfact", len(words) - 2, name=name)

    def binding(self, rng: np.random.Generator) -> Sentence:
        n1, n2 = self._pick(rng, VARIABLES, 2)
        c1, c2 = self._pick(rng, LEXICON["COLOR"], 2)
        first = bool(rng.integers(2))
        q, a = (n1, c1) if first else (n2, c2)
        words = [n1, "is", c1, "and", n2, "is", c2, "so", q, "is", a, "."]
        return self._make(words, "binding", 10, query_first=first, names=(n1, n2), colors=(c1, c2))

    def choice(self, rng: np.random.Generator) -> Sentence:
        name = self._pick(rng, LEXICON["NAME"])
        city = self.facts[name]
        others = self._pick(rng, tuple(c for c in LEXICON["CITY"] if c != city), 2)
        slot = int(rng.integers(3))
        options = others[:slot] + [city] + others[slot:]
        words = ["where", "does", name, "live", "?"]
        for letter, option in zip(LETTERS, options, strict=True):
            words += [letter, ")", option]
        words += ["answer", ":", LETTERS[slot], "."]
        return self._make(words, "choice", len(words) - 2, name=name, options=tuple(options), correct=slot)

    def contrast(self, rng: np.random.Generator, regime: int | None = None) -> Sentence:
        """A clause whose cue adjective sets the regime, which sets the outcome word."""
        regime = int(rng.integers(2)) if regime is None else regime
        cue = self._pick(rng, (POSITIVE, NEGATIVE)[regime])
        det = self._pick(rng, LEXICON["DET"])
        words = [det, cue, self._pick(rng, LEXICON["NOUN"]), self._pick(rng, LEXICON["VERB"])]
        words += self._noun_phrase(rng, adjective=False) + ["so", "it", "was", OUTCOME[regime], "."]
        return self._make(words, "contrast", len(words) - 2, regime=regime, cue_index=1)

    def contrast_pair(self, rng: np.random.Generator) -> tuple[Sentence, Sentence]:
        """The same contrast sentence in regime 0 and in regime 1 (only cue and outcome differ)."""
        s0 = self.contrast(rng, regime=0)
        cue1 = NEGATIVE[POSITIVE.index(s0.words[1])]
        words = list(s0.words)
        words[1], words[s0.answer_index] = cue1, OUTCOME[1]
        return s0, self._make(words, "contrast", s0.answer_index, regime=1, cue_index=1)

    # ---- many sentences ------------------------------------------------------------------
    def sample(self, kind: str, n: int, seed: int) -> list[Sentence]:
        """``n`` sentences of one kind, reproducible from ``seed``."""
        if kind not in KINDS:
            raise NapkitError(f"unknown sentence kind {kind!r}; kinds are {', '.join(KINDS)}")
        rng = np.random.default_rng(seed)
        make = getattr(self, kind)
        return [make(rng) for _ in range(n)]

    def corpus(self, n: int, seed: int, mix: dict[str, float] | None = None) -> list[Sentence]:
        """``n`` sentences drawn by kind with the shares of ``mix`` (default :data:`DEFAULT_MIX`)."""
        mix = dict(DEFAULT_MIX if mix is None else mix)
        unknown = set(mix) - set(KINDS)
        if unknown or not mix or min(mix.values()) < 0 or sum(mix.values()) <= 0:
            raise NapkitError(f"a corpus mix needs non-negative shares of {KINDS}, got {mix}")
        kinds = list(mix)
        p = np.array([mix[k] for k in kinds], dtype=float)
        rng = np.random.default_rng(seed)
        picks = rng.choice(len(kinds), size=n, p=p / p.sum())
        return [getattr(self, kinds[i])(rng) for i in picks]


GRAMMAR = Grammar()
