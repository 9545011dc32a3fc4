"""Interventions: each op on known tensors, bitwise no-ops, hook hygiene, files, firings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napkit.errors import NapkitError
from napkit.lm.capture import capture
from napkit.lm.interventions import Intervention, applied
from napkit.lm.models import LanguageModel, random_init_like

TEXTS = ["alice lives in paris .", "the big cat sees a dog near the river ."]
SITE = "blocks.1.hook_resid_post"


def _logits(lm, interventions=()):
    enc = lm.tokenizer(TEXTS, return_tensors="pt", padding=True)
    with applied(lm, interventions), torch.no_grad():
        return lm.model(**enc).logits


def _hooks(model) -> list:
    """Every forward (pre-)hook on the model (transformers may keep some of its own)."""
    return [(n, k) for n, m in model.named_modules() for k in (*m._forward_hooks, *m._forward_pre_hooks)]


def test_each_op_changes_the_tensor_as_documented():
    h = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])
    v = torch.tensor([1.0, 0.0])
    assert torch.equal(Intervention("m", "add", v, 2.0).apply(h)[0, :, 0], torch.tensor([3.0, 5.0, 7.0]))
    assert torch.equal(Intervention("m", "replace", v, positions=[1]).apply(h)[0, 1], v)
    assert torch.equal(Intervention("m", "project_out", v).apply(h)[0, :, 0], torch.zeros(3))
    assert torch.equal(Intervention("m", "ablate", positions=[-1]).apply(h)[0, 2], torch.zeros(2))
    deltas = torch.tensor([[1.0, 1.0], [2.0, 2.0]])
    got = Intervention("m", "add", deltas, 1.0, positions=[0, 2]).apply(h)
    assert torch.equal(got[0], torch.tensor([[2.0, 3.0], [3.0, 4.0], [7.0, 8.0]]))
    assert Intervention("m", "add", v, 0.0).apply(h) is None  # α = 0 leaves the pass alone


def test_alpha_zero_and_zero_vectors_are_bitwise_no_ops(tiny):
    base = _logits(tiny)
    width = tiny.model.config.n_embd
    assert torch.equal(_logits(tiny, [Intervention(SITE, "add", torch.randn(width), 0.0)]), base)
    assert torch.equal(_logits(tiny, [Intervention(SITE, "add", torch.zeros(width), 3.0)]), base)
    assert not torch.equal(_logits(tiny, [Intervention(SITE, "add", torch.randn(width), 3.0)]), base)


def test_ablating_a_site_changes_what_capture_reads_downstream(tiny):
    iv = Intervention("blocks.2.hook_resid_pre", "ablate")
    with applied(tiny, [iv]) as fired:
        got = capture(tiny, TEXTS, ["blocks.2.hook_resid_pre"])
    assert np.all(got.acts["blocks.2.hook_resid_pre"] == 0) and fired[0] >= 1


def test_hooks_are_removed_after_an_exception_and_baseline_returns(tiny):
    base, before = _logits(tiny), _hooks(tiny.model)
    with pytest.raises(RuntimeError, match="boom"):
        with applied(tiny, [Intervention(SITE, "add", torch.ones(tiny.model.config.n_embd), 5.0)]):
            _logits(tiny)
            raise RuntimeError("boom")
    assert _hooks(tiny.model) == before
    assert torch.equal(_logits(tiny), base)


def test_firings_are_counted_and_one_that_never_fired_is_an_error(tiny):
    iv = Intervention(SITE, "add", torch.ones(tiny.model.config.n_embd), 1.0)
    before = _hooks(tiny.model)
    with applied(tiny, [iv]) as fired:
        _logits(tiny)
        _logits(tiny)
    assert fired == {0: 2}
    with pytest.raises(NapkitError, match="never fired"):
        with applied(tiny, [iv]):
            pass
    assert _hooks(tiny.model) == before


def test_bad_vectors_are_refused(tiny):
    before = _hooks(tiny.model)
    with pytest.raises(NapkitError, match="NaN or infinity"):
        Intervention(SITE, "add", torch.tensor([1.0, float("nan")]))
    with pytest.raises(NapkitError, match="alpha must be finite"):
        Intervention(SITE, "add", torch.ones(2), float("inf"))
    with pytest.raises(NapkitError, match="vector width 3 does not match"):
        _logits(tiny, [Intervention(SITE, "add", torch.ones(3), 1.0)])
    assert _hooks(tiny.model) == before
    with pytest.raises(NapkitError, match="unknown module or alias"):
        _logits(tiny, [Intervention("blocks.1.hook_resid_pots", "add", torch.ones(3), 1.0)])


def test_files_round_trip_and_refuse_another_model(tiny, tmp_path):
    v = torch.randn(tiny.model.config.n_embd)
    iv = Intervention(SITE, "add", v, 2.5, positions=[-1])
    path = iv.save(tmp_path / "steer.json", tiny)
    back = Intervention.load(path, tiny)
    assert (back.module, back.op, back.alpha, back.positions) == (SITE, "add", 2.5, [-1])
    assert torch.equal(back.vector, v)
    assert torch.equal(_logits(tiny, [back]), _logits(tiny, [iv]))
    with pytest.raises(NapkitError, match="another model"):
        Intervention.load(path, random_init_like(tiny, seed=3))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(NapkitError, match="cannot read intervention"):
        Intervention.load(tmp_path / "bad.json", tiny)


def _ids_logits(lm, ids, interventions=()):
    with applied(lm, interventions), torch.no_grad():
        return lm.model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_a_write_at_resid_mid_changes_the_residual_stream_not_only_the_mlp_input(tiny, make_llama, arch):
    """resid_mid = resid_pre + attention output, so adding v there is adding v to the attention
    output (TransformerLens semantics); a hook on the MLP's norm alone would miss the residual."""
    lm = tiny if arch == "gpt2" else LanguageModel(make_llama(), None)
    width = lm.model.config.hidden_size
    ids = torch.randint(1, 40, (2, 7), generator=torch.Generator().manual_seed(1))
    v = torch.randn(width, generator=torch.Generator().manual_seed(2))
    mid = _ids_logits(lm, ids, [Intervention("blocks.1.hook_resid_mid", "add", v, 2.0, positions=[3])])
    attn = _ids_logits(lm, ids, [Intervention("blocks.1.hook_attn_out", "add", v, 2.0, positions=[3])])
    base = _ids_logits(lm, ids)
    assert not torch.allclose(mid, base, atol=1e-3)
    torch.testing.assert_close(mid, attn, atol=1e-5, rtol=1e-5)


def test_replacing_resid_mid_sets_the_state_the_mlp_adds_to(tiny):
    """After ``replace`` with u at resid_mid, the block's output is u + MLP(ln_2(u)) there."""
    width = tiny.model.config.n_embd
    u = torch.randn(width, generator=torch.Generator().manual_seed(3))
    iv = Intervention("blocks.2.hook_resid_mid", "replace", u, positions=[-1])
    with applied(tiny, [iv]) as fired:
        got = capture(tiny, TEXTS[:1], ["blocks.2.hook_resid_post"], positions=-1)
    block = tiny.model.transformer.h[2]
    with torch.no_grad():
        want = u + block.mlp(block.ln_2(u[None, None]))[0, 0]
    assert fired[0] == 1
    np.testing.assert_allclose(got.acts["blocks.2.hook_resid_post"][0], want.numpy(), atol=1e-5)


def test_a_resid_mid_write_commutes_with_mlp_out_interventions_and_captures(tiny):
    """As in TransformerLens, adding v at resid_mid is adding it to the attention output,
    whatever else runs at the MLP's output and in which order; the MLP's output captured
    meanwhile is the MLP's own (of the changed state), without v."""
    ids = torch.randint(1, 40, (2, 7), generator=torch.Generator().manual_seed(4))
    v = torch.randn(tiny.model.config.n_embd, generator=torch.Generator().manual_seed(5))
    mid = Intervention("blocks.1.hook_resid_mid", "add", v, 3.0)
    attn = Intervention("blocks.1.hook_attn_out", "add", v, 3.0)
    for other in (Intervention("blocks.1.hook_mlp_out", "ablate"),
                  Intervention("blocks.1.hook_resid_post", "project_out", v)):
        want = _ids_logits(tiny, ids, [attn, other])
        torch.testing.assert_close(_ids_logits(tiny, ids, [mid, other]), want, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(_ids_logits(tiny, ids, [other, mid]), want, atol=1e-5, rtol=1e-5)
    enc = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    sites, got = ["blocks.1.hook_mlp_out", "blocks.1.hook_resid_post"], {}
    for name, iv in (("mid", mid), ("attn", attn)):
        with applied(tiny, [iv]):
            got[name] = capture(tiny, enc, sites, stop_after=False)
    for site in sites:
        np.testing.assert_allclose(got["mid"].acts[site], got["attn"].acts[site], atol=1e-5)


def test_a_pass_stopped_early_leaves_no_change_for_the_next(tiny):
    """A capture that ends the forward pass right after resid_mid was written (``stop_after``)
    must not hand that change to a later pass that writes nothing (one new token, position
    4 absent)."""
    one = torch.tensor([[5]])
    plain = _ids_logits(tiny, one)
    six = torch.randint(1, 40, (2, 6), generator=torch.Generator().manual_seed(6))
    v = torch.randn(tiny.model.config.n_embd, generator=torch.Generator().manual_seed(7))
    iv = Intervention("blocks.0.hook_resid_mid", "add", v, 3.0, positions=[4])
    with applied(tiny, [iv]), torch.no_grad():
        enc = {"input_ids": six, "attention_mask": torch.ones_like(six)}
        capture(tiny, enc, ["blocks.0.hook_resid_mid"], batch_size=1)  # stops each pass early
        after = tiny.model(input_ids=one).logits
    assert torch.equal(after, plain)
