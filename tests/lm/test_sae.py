"""SAEs: planted dictionaries, metrics, splicing into a model, SAELens folders, bad input."""

from __future__ import annotations

import json

import pytest
import torch

from napkit.errors import NapkitError
from napkit.lm._parts import model_fingerprint
from napkit.lm.feature_steering import steering_grid
from napkit.lm.sae import SparseAutoencoder, _resample_dead, ce_recovered, sae_metrics, train_sae
from napkit.lm.sae_files import load_sae, save_sae


def planted(seed: int, n_atoms=64, d=32, k=3, rows=20000):
    """Rows that are sums of k of n_atoms random unit vectors with positive weights."""
    g = torch.Generator().manual_seed(seed)
    atoms = torch.randn(n_atoms, d, generator=g)
    atoms /= atoms.norm(dim=1, keepdim=True)
    idx = torch.rand(rows, n_atoms, generator=g).topk(k, dim=1).indices
    codes = torch.zeros(rows, n_atoms).scatter(1, idx, torch.rand(rows, k, generator=g) + 0.5)
    return atoms, codes @ atoms


def recovered_fraction(atoms, sae, threshold=0.9) -> float:
    cos = atoms @ sae.W_dec.detach().T
    return float((cos.max(1).values >= threshold).float().mean())


@pytest.mark.parametrize("seed", [0, 1])
def test_topk_recovers_planted_dictionary(seed):
    atoms, x = planted(seed)
    sae, log = train_sae(x, 128, kind="topk", k=3, steps=1500, lr=3e-3, seed=seed)
    assert recovered_fraction(atoms, sae) >= 0.9
    m = sae_metrics(sae, x)
    assert m.l0 <= 3 and m.fvu < 0.1
    assert log.steps == 1500 and log.losses[-1] < log.losses[0]


def zipf_planted(seed: int, n_atoms=64, d=32, k=3, rows=22000, power=2.0):
    """Like ``planted`` but atom j is drawn with weight 1/j**power: the tail atoms are rare."""
    g = torch.Generator().manual_seed(seed)
    atoms = torch.randn(n_atoms, d, generator=g)
    atoms /= atoms.norm(dim=1, keepdim=True)
    weights = 1.0 / torch.arange(1, n_atoms + 1).float() ** power
    idx = torch.multinomial(weights.expand(rows, -1), k, replacement=False, generator=g)
    codes = torch.zeros(rows, n_atoms).scatter(1, idx, torch.rand(rows, k, generator=g) + 0.5)
    return codes @ atoms


@pytest.mark.parametrize("seed", [0, 1])
def test_resampling_rare_features_leaves_fewer_dead_on_held_out_rows(seed):
    """Resampling features that fire on <= 1e-3 of rows (with fresh Adam moments), not only
    never-fired ones, leaves fewer features silent on held-out rows of a Zipf dictionary."""
    x, held = zipf_planted(seed).split([20000, 2000])
    opts = dict(kind="topk", k=3, steps=800, lr=3e-3, seed=seed, resample_every=100)
    never_fired, _ = train_sae(x, 64, resample_below=0.0, reset_adam=False, **opts)
    rare, _ = train_sae(x, 64, **opts)
    old, new = sae_metrics(never_fired, held), sae_metrics(rare, held)
    assert old.dead_frac >= 0.06 and new.dead_frac <= old.dead_frac / 3
    assert new.fvu <= 1.1 * old.fvu


def test_resampling_zeroes_the_adam_moments_of_resampled_features_only():
    _, x = planted(0, rows=512)
    sae = SparseAutoencoder(32, 16, kind="topk", k=3)
    opt = torch.optim.Adam(sae.parameters(), lr=1e-3)
    (sae(x) - x).pow(2).sum().backward()
    opt.step()
    dead = torch.zeros(16, dtype=torch.bool)
    dead[[2, 5]] = True
    _resample_dead(sae, dead, x, (sae(x) - x).pow(2).sum(-1).detach(), opt)
    for param, axis in ((sae.W_dec, 0), (sae.W_enc, 1), (sae.b_enc, 0)):
        for moment in ("exp_avg", "exp_avg_sq"):
            m = opt.state[param][moment].abs()
            per_feature = m.sum(1 - axis) if m.ndim == 2 else m
            assert (per_feature[dead] == 0).all() and (per_feature[~dead] > 0).all()


def test_l1_penalty_trades_sparsity_for_reconstruction():
    atoms, x = planted(2)
    weak, _ = train_sae(x, 64, kind="l1", l1_coeff=0.05, steps=800, lr=3e-3)
    strong, _ = train_sae(x, 64, kind="l1", l1_coeff=0.3, steps=800, lr=3e-3)
    mw, ms = sae_metrics(weak, x), sae_metrics(strong, x)
    assert ms.l0 < mw.l0 and ms.fvu > mw.fvu
    assert recovered_fraction(atoms, strong) > recovered_fraction(atoms, weak)


def test_metrics_on_a_hand_built_sae():
    sae = SparseAutoencoder(2, 3, kind="l1")
    with torch.no_grad():
        sae.W_enc.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
        sae.W_dec.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    x = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    m = sae_metrics(sae, x)
    assert m.fvu == 0.0 and m.l0 == 1.5 and m.dead_frac == pytest.approx(1 / 3)
    x_neg = torch.tensor([[-1.0, 2.0]])  # the ReLU drops the negative part: FVU counts it
    assert sae_metrics(sae, torch.cat([x, x_neg])).fvu > 0


def test_iterator_training_and_nan_refused():
    _, x = planted(0, rows=2000)
    sae, log = train_sae(iter(x.split(200)), 64, kind="topk", k=3, steps=100)
    assert log.steps == 10 and log.rows == 2000
    bad = x[:400].clone()
    bad[7, 3] = float("nan")
    with pytest.raises(NapkitError, match="NaN"):
        train_sae(bad, 16, kind="topk", k=2, steps=5)
    with pytest.raises(NapkitError, match="NaN"):
        sae_metrics(sae, bad)


@pytest.mark.parametrize("below", [-0.1, 1.0, float("nan")])
def test_resample_fraction_out_of_range_refused(below):
    x = torch.randn(300, 8)
    with pytest.raises(NapkitError, match="resample_below"):
        train_sae(x, 16, kind="topk", k=2, steps=5, resample_below=below)


@pytest.mark.parametrize("k", [16, 17, 0])
def test_k_at_least_d_sae_refused(k):
    with pytest.raises(NapkitError, match="k"):
        SparseAutoencoder(8, 16, kind="topk", k=k)


def test_ce_recovered_splice(tiny_gpt2):
    ids = torch.randint(0, 40, (8, 12), generator=torch.Generator().manual_seed(0))
    module = "transformer.h.0.mlp"
    acts = []
    handle = tiny_gpt2.get_submodule(module).register_forward_hook(lambda m, i, o: acts.append(o.detach()))
    with torch.no_grad():
        clean_logits = tiny_gpt2(ids).logits
    handle.remove()
    x = acts[0].reshape(-1, 32)
    identity = SparseAutoencoder(32, 64, kind="l1")  # an exact identity: f = [relu(x), relu(-x)]
    with torch.no_grad():
        identity.W_enc.copy_(torch.cat([torch.eye(32), -torch.eye(32)], 1))
        identity.W_dec.copy_(torch.cat([torch.eye(32), -torch.eye(32)], 0))
        identity.b_enc.zero_()
        identity.b_dec.zero_()
    r = ce_recovered(tiny_gpt2, identity, module, ids)
    assert r["ce_sae"] == pytest.approx(r["ce_clean"], abs=1e-5)
    assert r["ce_recovered"] == pytest.approx(1, abs=1e-3)
    sae, _ = train_sae(x, 64, kind="topk", k=8, steps=300)
    r = ce_recovered(tiny_gpt2, sae, module, ids)
    assert r["ce_zero"] != r["ce_clean"] and r["ce_recovered"] < 1
    with torch.no_grad():  # the hook came off
        assert torch.equal(tiny_gpt2(ids).logits, clean_logits)
    with pytest.raises(NapkitError, match="width"):
        ce_recovered(tiny_gpt2, SparseAutoencoder(7, 14, kind="l1"), module, ids)


def test_saelens_folder_round_trip_and_other_model_refused(tmp_path, tiny_gpt2, other_gpt2):
    _, x = planted(0, d=32, rows=1000)
    fingerprint = model_fingerprint(tiny_gpt2)
    sae, _ = train_sae(
        x, 64, kind="topk", k=3, steps=20, hook_name="transformer.h.0", model_fingerprint=fingerprint
    )
    folder = save_sae(sae, tmp_path / "sae")
    cfg = json.loads((folder / "cfg.json").read_text())
    assert cfg["architecture"] == "topk" and cfg["k"] == 3 and cfg["d_in"] == 32 and cfg["d_sae"] == 64
    from safetensors.torch import load_file

    shapes = {k: tuple(v.shape) for k, v in load_file(folder / "sae_weights.safetensors").items()}
    assert shapes == {"W_enc": (32, 64), "W_dec": (64, 32), "b_enc": (64,), "b_dec": (32,)}
    back = load_sae(folder, tiny_gpt2)
    assert torch.equal(back(x[:50]), sae(x[:50])) and back.hook_name == "transformer.h.0"
    with pytest.raises(NapkitError, match="another model"):
        load_sae(folder, other_gpt2)
    from napkit.lm.models import LanguageModel

    assert torch.equal(load_sae(folder, LanguageModel(tiny_gpt2, None))(x[:5]), sae(x[:5]))
    with pytest.raises(NapkitError, match="another model"):
        load_sae(folder, LanguageModel(other_gpt2, None))
    with pytest.raises(NapkitError, match="language model or a torch module"):
        load_sae(folder, "gpt2")
    (folder / "sae_weights.safetensors").write_bytes(b"garbage")
    with pytest.raises(NapkitError, match="safetensors"):
        load_sae(folder)
    with pytest.raises(NapkitError, match="cfg.json"):
        load_sae(tmp_path / "nowhere")


def test_a_saved_sae_folder_gets_the_permissions_mkdir_gives(tmp_path):
    """Staged in a private temporary folder, the SAE folder still ends up as ``mkdir`` makes
    folders (0755 under umask 022), readable by the user's group as any other output."""
    import os

    sae, _ = train_sae(torch.randn(200, 8), 16, kind="topk", k=2, steps=2)
    mask = os.umask(0o022)
    try:
        folder = save_sae(sae, tmp_path / "sae")
        (tmp_path / "plain").mkdir()
    finally:
        os.umask(mask)
    assert folder.stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777 == 0o755


def test_steering_grid(tiny_gpt2):
    ids = torch.randint(0, 40, (3, 10), generator=torch.Generator().manual_seed(1))
    v = torch.randn(32)
    grid = steering_grid(tiny_gpt2, v, ["transformer.h.0", "transformer.h.1"], [0.0, 2.0, -2.0], ids, 5)
    assert grid.delta_logprob.shape == (2, 3, 3) and grid.kl.shape == (2, 3, 3)
    assert (grid.delta_logprob[:, 0] == 0).all() and (grid.kl[:, 0] == 0).all()
    assert (grid.kl[:, 1:] > 0).all()
    with pytest.raises(NapkitError, match="width"):
        steering_grid(tiny_gpt2, torch.randn(31), ["transformer.h.0"], [1.0], ids, 5)
    with pytest.raises(NapkitError, match="finite"):
        steering_grid(tiny_gpt2, v, ["transformer.h.0"], [float("nan")], ids, 5)
    with pytest.raises(NapkitError, match="no module"):
        steering_grid(tiny_gpt2, v, ["transformer.h.9"], [1.0], ids, 5)


def test_saelens_reads_the_folder(tmp_path):
    sae_lens = pytest.importorskip("sae_lens", reason="SAELens is in the bench-lm extra, not installed here")
    _, x = planted(0, d=32, rows=1000)
    sae, _ = train_sae(x, 64, kind="topk", k=3, steps=20, hook_name="blocks.0.hook_resid_post")
    folder = save_sae(sae, tmp_path / "sae")
    theirs = sae_lens.SAE.load_from_disk(str(folder), device="cpu")
    with torch.no_grad():
        torch.testing.assert_close(theirs(x[:20]), sae(x[:20]), rtol=1e-5, atol=1e-5)


def _small_sae():
    return train_sae(torch.randn(200, 8), 16, kind="topk", k=2, steps=2)[0]


@pytest.mark.parametrize("where", ["current_folder", "other_folder"])
def test_save_sae_never_replaces_a_folder_of_other_files(tmp_path, monkeypatch, where):
    """``lm sae --out . --force`` reached ``shutil.rmtree('.')``: every file of the current
    folder was deleted before the rename failed; ``--out PROJECT --force`` replaced a project."""
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    out = folder
    if where == "current_folder":
        monkeypatch.chdir(folder)
        out = "."
    with pytest.raises(NapkitError, match="other files than an SAE"):
        save_sae(_small_sae(), out)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("form", ["current_folder", "symlink"])
def test_save_sae_fills_the_current_folder_or_a_linked_one_and_replaces_its_own_sae(
    tmp_path, existing_out_folder, form
):
    real, out = existing_out_folder(tmp_path, form)
    first, second = _small_sae(), train_sae(torch.randn(200, 8), 24, kind="topk", k=2, steps=2)[0]
    save_sae(first, out)
    save_sae(second, out)  # an SAE folder is replaced (what --force asks for)
    assert sorted(p.name for p in real.iterdir()) == ["cfg.json", "sae_weights.safetensors"]
    assert json.loads((real / "cfg.json").read_text())["d_sae"] == 24
    links = [] if form == "current_folder" else ["link"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["real", *links])
    assert form == "current_folder" or (tmp_path / "link").is_symlink()
