"""The grammar: classes, kinds, fixed facts, seeded sampling, contrast pairs, the tokenizer."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from napkit.errors import NapkitError
from napkit.lm.corpus import GRAMMAR, KINDS, LEXICON, NEGATIVE, POSITIVE
from napkit.lm.tokenizer import build_tokenizer


def test_every_word_has_one_class_and_sentences_carry_them():
    for s in GRAMMAR.corpus(300, seed=1):
        assert len(s.words) == len(s.classes)
        assert all(GRAMMAR.word_class[w] == c for w, c in zip(s.words, s.classes, strict=True))
        assert s.kind in KINDS


def test_corpus_is_seeded_and_follows_the_mix():
    a, b = GRAMMAR.corpus(2000, seed=3), GRAMMAR.corpus(2000, seed=3)
    assert [s.text for s in a] == [s.text for s in b]
    assert [s.text for s in a] != [s.text for s in GRAMMAR.corpus(2000, seed=4)]
    counts = collections.Counter(s.kind for s in GRAMMAR.corpus(4000, seed=0, mix={"fact": 1, "binding": 3}))
    assert set(counts) == {"fact", "binding"}
    assert 0.7 < counts["binding"] / 4000 < 0.8


def test_facts_are_fixed_and_balanced():
    assert set(GRAMMAR.facts) == set(LEXICON["NAME"])
    per_city = collections.Counter(GRAMMAR.facts.values())
    assert set(per_city.values()) == {len(LEXICON["NAME"]) // len(LEXICON["CITY"])}
    s = GRAMMAR.fact(np.random.default_rng(0), "alice")
    assert s.words == ("alice", "lives", "in", GRAMMAR.facts["alice"], ".") and s.answer == s.words[3]


def test_relfact_answer_is_the_city_of_the_subject_not_of_the_other_name():
    for s in GRAMMAR.sample("relfact", 200, seed=7):
        name = s.meta["name"]
        assert s.answer == GRAMMAR.facts[name]
        assert s.words[s.answer_index - 2 :] == ("lives", "in", s.answer, ".")
        subject_first = s.words[0] == name and s.words[s.answer_index - 3] == "and"
        assert subject_first or s.words[s.answer_index - 3] == name
        others = [w for w in s.words if GRAMMAR.word_class[w] == "NAME" and w != name]
        assert all(GRAMMAR.facts[o] != s.answer for o in others) and len(others) <= 1


def test_appositive_puts_the_city_right_after_its_name():
    for s in GRAMMAR.sample("appositive", 100, seed=8):
        i = s.words.index(s.meta["name"])
        assert s.answer_index == i + 1 and s.answer == GRAMMAR.facts[s.meta["name"]]


def test_binding_answer_is_the_color_bound_to_the_queried_name():
    for s in GRAMMAR.sample("binding", 200, seed=5):
        names, colors = s.meta["names"], s.meta["colors"]
        q = s.words[8]
        assert set(names) <= {"A", "B", "C"}
        assert s.answer == colors[names.index(q)] and names[0] != names[1] and colors[0] != colors[1]
        assert s.prompt.split() == list(s.words[:10])


def test_choice_answer_letter_points_at_the_right_city():
    for s in GRAMMAR.sample("choice", 200, seed=6):
        options = s.meta["options"]
        letter = s.answer
        assert options["ABC".index(letter)] == GRAMMAR.facts[s.meta["name"]]
        assert len(set(options)) == 3


def test_contrast_pairs_differ_only_in_cue_and_outcome():
    rng = np.random.default_rng(0)
    for _ in range(50):
        s0, s1 = GRAMMAR.contrast_pair(rng)
        diff = [i for i, (a, b) in enumerate(zip(s0.words, s1.words, strict=True)) if a != b]
        assert diff == [1, s0.answer_index]
        assert s0.words[1] in POSITIVE and s1.words[1] in NEGATIVE
        assert (s0.answer, s1.answer) == ("good", "bad") and (s0.meta["regime"], s1.meta["regime"]) == (0, 1)


def test_unknown_kind_and_bad_mix_are_refused():
    with pytest.raises(NapkitError, match="unknown sentence kind"):
        GRAMMAR.sample("poem", 3, seed=0)
    with pytest.raises(NapkitError, match="mix"):
        GRAMMAR.corpus(3, seed=0, mix={"fact": -1.0})


def test_tokenizer_is_one_token_per_word_with_bos_and_a_mask():
    tok = build_tokenizer()
    sentences = GRAMMAR.corpus(100, seed=2)
    enc = tok([s.text for s in sentences], padding=True)
    for s, ids, mask in zip(sentences, enc["input_ids"], enc["attention_mask"], strict=True):
        n = sum(mask)
        assert n == len(s.words) + 1 and ids[0] == tok.bos_token_id
        assert tok.convert_ids_to_tokens(ids[1:n]) == list(s.words)
        assert all(i == tok.pad_token_id for i in ids[n:])
    assert tok("zebra", add_special_tokens=False)["input_ids"] == [tok.unk_token_id]
