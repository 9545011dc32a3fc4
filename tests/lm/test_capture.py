"""Sequence capture: exactness against output_hidden_states, rows and positions, aliases, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from napkit.capture import ActivationStore
from napkit.errors import NapkitError
from napkit.lm.capture import capture, capture_to_store, iter_capture
from napkit.lm.corpus import GRAMMAR
from napkit.lm.models import LanguageModel
from napkit.lm.targets import resolve


@pytest.fixture(scope="module")
def texts():
    return [s.text for s in GRAMMAR.corpus(24, seed=0)]


def _hidden(lm, texts):
    enc = lm.tokenizer(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = lm.model(**enc, output_hidden_states=True)
    return out, enc["attention_mask"].bool()


@pytest.mark.parametrize("batch_size", [5, 24])
def test_capture_equals_output_hidden_states_bitwise(tiny, texts, batch_size):
    out, mask = _hidden(tiny, texts)
    n = tiny.model.config.n_layer
    names = [f"blocks.{i}.hook_resid_pre" for i in range(n)] + [
        f"blocks.{i}.hook_resid_post" for i in range(n - 1)
    ]
    got = capture(tiny, texts, names, batch_size=batch_size)
    for i in range(n):
        assert torch.equal(
            torch.from_numpy(got.acts[f"blocks.{i}.hook_resid_pre"]), out.hidden_states[i][mask]
        )
    for i in range(n - 1):
        assert torch.equal(
            torch.from_numpy(got.acts[f"blocks.{i}.hook_resid_post"]), out.hidden_states[i + 1][mask]
        )
    # the final norm alias is TL's: the last block's output normalised, before the norm's affine
    # part; with it, the last hidden state HF reports (and the module name gives that one bitwise)
    names = ["ln_final.hook_normalized", f"blocks.{n - 1}.hook_resid_post", "transformer.ln_f"]
    last = capture(tiny, texts, names, batch_size=batch_size)
    normed = torch.from_numpy(last.acts["ln_final.hook_normalized"])
    resid = torch.from_numpy(last.acts[f"blocks.{n - 1}.hook_resid_post"])
    ln_f = tiny.model.transformer.ln_f
    want = torch.nn.functional.layer_norm(resid, (resid.shape[1],), eps=ln_f.eps)
    torch.testing.assert_close(normed, want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        normed * ln_f.weight + ln_f.bias, out.hidden_states[n][mask], atol=1e-5, rtol=1e-5
    )
    assert torch.equal(torch.from_numpy(last.acts["transformer.ln_f"]), out.hidden_states[n][mask])


def test_rows_carry_sequence_position_token_and_next_token(tiny, texts):
    enc = tiny.tokenizer(texts, padding=True)
    got = capture(tiny, texts, ["blocks.0.mlp.hook_post"], stop_after=False)
    lengths = [sum(m) for m in enc["attention_mask"]]
    assert len(got.sequence) == sum(lengths) and got.acts["blocks.0.mlp.hook_post"].shape[1] == 512
    for r in np.random.default_rng(0).choice(len(got.sequence), 40, replace=False):
        s, p = got.sequence[r], got.position[r]
        assert got.token[r] == enc["input_ids"][s][p]
        assert got.next_token[r] == (enc["input_ids"][s][p + 1] if p + 1 < lengths[s] else -1)
    assert (got.prediction >= 0).all()  # a full forward pass gives predictions
    out, mask = _hidden(tiny, texts)
    np.testing.assert_array_equal(got.prediction, out.logits[mask].argmax(-1).numpy())
    stopped = capture(tiny, texts[:6], ["blocks.0.hook_resid_pre"], batch_size=3)
    assert (stopped.prediction[stopped.sequence >= 3] == -1).all()  # stopped early after the first batch


def test_chosen_positions_match_full_capture(tiny, texts):
    full = capture(tiny, texts, ["blocks.2.hook_resid_post"])
    last = capture(tiny, texts, ["blocks.2.hook_resid_post"], positions=-1)
    ends = np.flatnonzero(np.r_[full.sequence[1:] != full.sequence[:-1], True])
    np.testing.assert_array_equal(
        last.acts["blocks.2.hook_resid_post"], full.acts["blocks.2.hook_resid_post"][ends]
    )
    two = capture(tiny, texts[:2], ["blocks.2.hook_resid_post"], positions=[[0, 2], [1]])
    assert two.sequence.tolist() == [0, 0, 1] and two.position.tolist() == [0, 2, 1]


def test_aliases_read_the_documented_tensors(tiny, texts):
    got = capture(
        tiny, texts[:4], ["blocks.1.attn.hook_pattern", "blocks.1.attn.hook_z", "blocks.1.mlp.hook_pre"]
    )
    heads = tiny.model.config.n_head
    pattern = got.acts["blocks.1.attn.hook_pattern"].reshape(len(got.sequence), heads, -1)
    np.testing.assert_allclose(pattern.sum(-1), 1.0, atol=1e-5)  # each query's weights sum to one
    for r in range(len(got.position)):  # causal: nothing after the query position
        assert (pattern[r, :, got.position[r] + 1 :] == 0).all()
    assert got.acts["blocks.1.attn.hook_z"].shape[1] == tiny.model.config.n_embd
    relu = capture(tiny, texts[:4], ["blocks.1.mlp.hook_pre", "blocks.1.mlp.hook_post"])
    np.testing.assert_array_equal(
        relu.acts["blocks.1.mlp.hook_post"], np.maximum(relu.acts["blocks.1.mlp.hook_pre"], 0)
    )
    assert tiny.model.config._attn_implementation == "sdpa"  # restored after reading patterns


def test_capture_streams_into_an_activation_store(tiny, texts, tmp_path):
    store = capture_to_store(tiny, texts, ["blocks.3.hook_resid_mid"], tmp_path / "s", batch_size=7)
    full = capture(tiny, texts, ["blocks.3.hook_resid_mid"], stop_after=False)
    again = ActivationStore.open(tmp_path / "s", fingerprint=tiny.fingerprint)
    assert again.complete and again.n_total == len(full.sequence)
    np.testing.assert_array_equal(
        again.layer("blocks.3.hook_resid_mid"), full.acts["blocks.3.hook_resid_mid"]
    )
    np.testing.assert_array_equal(again.labels(), full.next_token)
    np.testing.assert_array_equal(np.asarray(store.group["position"][:]), full.position)


def test_unknown_names_are_refused_with_the_nearest(tiny):
    with pytest.raises(NapkitError, match="nearest: blocks.1.hook_resid_post"):
        resolve(tiny.model, "blocks.1.hook_resid_pots")
    with pytest.raises(NapkitError, match="transformer.h.0.mlp"):
        resolve(tiny.model, "transformer.h.0.mpl")
    with pytest.raises(NapkitError, match="unknown module or alias"):
        resolve(tiny.model, "blocks.9.hook_resid_post")  # only 4 layers


@pytest.mark.parametrize(
    ("positions", "message"),
    [
        (40, "outside sequence 0"),
        (-30, "outside sequence 0"),
        ([[1], [4]], "position 4 of sequence 1 is padding"),
    ],
)
def test_positions_outside_or_in_padding_are_refused(tiny, positions, message):
    with pytest.raises(NapkitError, match=message):
        capture(
            tiny, ["alice lives in paris .", "bob lives"], ["blocks.0.hook_resid_pre"], positions=positions
        )


class _Twice(nn.Module):
    """A model whose layer runs twice per forward pass."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.layer = nn.Linear(4, 4)
        self.tuple_out = _TupleOut()

    def forward(self, input_ids, attention_mask=None, use_cache=None):
        h = self.layer(self.layer(self.emb(input_ids)))
        h = self.tuple_out(h)[1]
        return type("Out", (), {"logits": h})()


class _TupleOut(nn.Module):
    def forward(self, h):
        return h.mean(), h


def test_a_module_running_twice_or_an_ambiguous_tuple_is_refused():
    lm = LanguageModel(_Twice(), None)
    enc = {"input_ids": torch.tensor([[1, 2, 3]]), "attention_mask": torch.ones(1, 3)}
    with pytest.raises(NapkitError, match="more than once"):
        capture(lm, enc, ["layer"])
    with pytest.raises(NapkitError, match="ambiguous output at tuple_out"):
        capture(lm, enc, ["tuple_out"])
    for m in lm.model.modules():  # hooks are gone after the errors
        assert not m._forward_hooks and not m._forward_pre_hooks


def test_left_padded_masks_are_refused(tiny):
    enc = {"input_ids": torch.tensor([[0, 2, 5]]), "attention_mask": torch.tensor([[0, 1, 1]])}
    with pytest.raises(NapkitError, match="right-padded"):
        next(iter_capture(tiny, enc, ["blocks.0.hook_resid_pre"]))
