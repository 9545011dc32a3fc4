"""Bad input to the verify room's public functions: one NapkitError naming the problem,
never an IndexError or a numpy broadcasting error from inside, never a silent result."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import random_net
from napkit.errors import NapkitError
from napkit.network import to_onnx
from napkit.verify import (
    InputBox,
    MilpEncoding,
    OutputSpec,
    PatternSearch,
    Property,
    VerifyOptions,
    check_phases,
    check_point,
    cut_share,
    domain_box,
    first_follower,
    follows_phases,
    linf_ball,
    margin_lower,
    merge_phases,
    minimize_nap,
    output_lower,
    pgd_attack,
    propagate,
    read_vnnlib,
    robustness_spec,
    run_batch,
    spec_lower,
    tighten_bounds,
    verify_disjoint,
    verify_property,
    verify_robustness,
    vnnlib_text,
    write_vnnlib,
)

NET = random_net(2)  # 4-8-6-3
OTHER = random_net(1, sizes=(4, 5, 3))
PHASES = [np.r_[np.ones(2), np.zeros(6)], np.zeros(6)]


@pytest.mark.parametrize(("label", "match"), [(1.5, "whole number"), ("0", "whole number"), (True, "whole")])
def test_a_label_that_is_not_a_whole_number_is_named(label, match):
    """1.5 and "0" reached numpy indexing (IndexError)."""
    with pytest.raises(NapkitError, match=match):
        verify_robustness(NET, domain_box(4), label, None, timeout=1)
    with pytest.raises(NapkitError, match=match):
        robustness_spec(label, 3)


def test_a_whole_float_label_is_accepted():
    assert robustness_spec(1.0, 3).label == 1


@pytest.mark.parametrize(
    ("n", "match"), [(-3, "at least 1"), (0, "at least 1"), (2.5, "whole"), ("a", "whole")]
)
def test_domain_box_refuses_sizes_that_are_not_positive_whole_numbers(n, match):
    with pytest.raises(NapkitError, match=match):
        domain_box(n)


@pytest.mark.parametrize(
    "call",
    [
        lambda: InputBox(np.zeros(2) * 1j, np.ones(2)),
        lambda: InputBox(np.array(["a", "b"]), np.ones(2)),
        lambda: linf_ball(np.full(4, 0.5) + 0j, 0.1),
        lambda: linf_ball(np.array(["a"] * 4), 0.1),
        lambda: linf_ball(np.full(4, 0.5), "0.1"),
    ],
)
def test_regions_refuse_complex_and_string_numbers(call):
    """Complex bounds lost their imaginary part silently; strings were a numpy ValueError."""
    with pytest.raises(NapkitError, match="real numbers"):
        call()


def test_output_spec_refuses_a_label_that_is_not_an_output():
    with pytest.raises(NapkitError, match="label 7"):
        OutputSpec(((np.ones((1, 3)), np.zeros(1)),), 3, 7)


def test_phases_that_are_not_a_list_of_layers_are_named():
    with pytest.raises(NapkitError, match="list of one array per hidden layer"):
        check_phases(NET.layer_sizes, 5)
    with pytest.raises(NapkitError, match="rectangular"):
        check_phases(NET.layer_sizes, [[1, [1, 0]], np.zeros(6)])
    with pytest.raises(NapkitError, match="real numbers"):
        check_phases(NET.layer_sizes, [np.full(8, "a"), np.zeros(6)])


def test_merge_and_follows_refuse_phases_of_other_layers():
    with pytest.raises(NapkitError, match="different layers"):
        merge_phases(PHASES, PHASES[:1])
    with pytest.raises(NapkitError, match="different layers"):
        merge_phases(PHASES, [np.zeros(3), np.zeros(6)])
    with pytest.raises(NapkitError, match="do not fit phases"):
        follows_phases([np.zeros((2, 5)), np.zeros((2, 6))], PHASES)


def test_first_follower_checks_its_arguments_against_the_network():
    x = np.random.default_rng(0).uniform(size=(20, 4))
    with pytest.raises(NapkitError, match="batch must be at least 1"):
        first_follower(NET, PHASES, x, batch=0)
    with pytest.raises(NapkitError, match="7 inputs"):
        first_follower(NET, PHASES, x, box=domain_box(7))
    with pytest.raises(NapkitError, match="hidden layers"):
        first_follower(NET, PHASES[:1], x)
    with pytest.raises(NapkitError, match="NaN"):
        first_follower(NET, PHASES, np.full((2, 4), np.nan))


def test_box_of_another_width_is_refused_even_when_the_phases_conflict():
    """Conflicting phases answered 'verified' before the box was looked at."""
    a = [np.ones(8), np.zeros(6)]
    with pytest.raises(NapkitError, match="4 inputs"):
        verify_disjoint(NET, domain_box(3), a, [-np.ones(8), np.zeros(6)], timeout=1)
    with pytest.raises(NapkitError, match="InputBox"):
        verify_robustness(NET, (0, 1), 0, None, timeout=1)


def test_bound_functions_refuse_boxes_phases_labels_and_rows_of_another_network():
    with pytest.raises(NapkitError, match="5 inputs"):
        propagate(NET, domain_box(5))
    with pytest.raises(NapkitError, match="hidden layers"):
        propagate(NET, domain_box(4), PHASES[:1])
    b = propagate(NET, domain_box(4), PHASES)
    with pytest.raises(NapkitError, match="label 9"):
        margin_lower(NET, b, 9)
    with pytest.raises(NapkitError, match="label -1"):  # -1 indexed the last output silently
        margin_lower(NET, b, -1)
    with pytest.raises(NapkitError, match="do not fit 3 outputs"):
        output_lower(NET, b, np.ones((2, 5)))
    with pytest.raises(NapkitError, match="NaN"):
        output_lower(NET, b, np.full((2, 3), np.nan))
    with pytest.raises(NapkitError, match="do not fit 3 outputs"):
        spec_lower(NET, b, robustness_spec(0, 4))
    for call in (
        lambda: margin_lower(OTHER, b, 0),
        lambda: MilpEncoding(OTHER, b),
        lambda: tighten_bounds(OTHER, b, 1e18),
    ):
        with pytest.raises(NapkitError, match="these bounds cover layers"):
            call()


def test_attack_refuses_starts_specs_and_points_that_do_not_fit():
    box, spec = domain_box(4), robustness_spec(0, 3)
    with pytest.raises(NapkitError, match="starts of shape"):
        pgd_attack(NET, box, spec, PHASES, starts=np.ones((2, 5)))
    with pytest.raises(NapkitError, match="NaN"):
        pgd_attack(NET, box, spec, PHASES, starts=np.full((2, 4), np.nan))
    with pytest.raises(NapkitError, match="3 outputs"):
        pgd_attack(NET, box, robustness_spec(0, 4), PHASES)
    with pytest.raises(NapkitError, match="restarts must be >= 0"):
        pgd_attack(NET, box, spec, PHASES, restarts=-1)
    with pytest.raises(NapkitError, match="5 inputs"):
        check_point(NET, box, spec, PHASES, np.ones(5))


def test_minimise_and_pattern_search_check_their_arguments():
    with pytest.raises(NapkitError, match="hidden layers"):
        cut_share(NET, domain_box(4), PHASES[:1])
    with pytest.raises(NapkitError, match="one finite number per hidden neuron"):
        minimize_nap(NET, domain_box(4), 0, PHASES, priority=np.ones(3), timeout=1)
    with pytest.raises(NapkitError, match="4 inputs"):
        PatternSearch(NET, domain_box(5), PHASES)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("quick_attack_share", 2.0, "between 0 and 1"),
        ("attack_share", float("nan"), "finite number"),
        ("attack_cap", -1.0, "finite number"),
        ("bab_batch", 2.5, "whole number"),
        ("bab", "yes", "True or False"),
    ],
)
def test_verify_options_refuse_budgets_that_are_not_numbers_in_range(field, value, match):
    """A NaN or out-of-range share passed silently into every stage's time budget."""
    with pytest.raises(NapkitError, match=match):
        VerifyOptions(**{field: value})


def test_vnnlib_phases_must_be_minus_one_zero_one_and_writes_leave_nothing_behind(tmp_path):
    with pytest.raises(NapkitError, match="-1 .* 0 .* \\+1"):
        vnnlib_text(domain_box(4), robustness_spec(0, 3), [np.full(8, 5.0), np.zeros(6)])
    with pytest.raises(NapkitError, match="cannot write"):
        write_vnnlib(tmp_path / "missing" / "q.vnnlib", domain_box(4), robustness_spec(0, 3))
    assert list(tmp_path.iterdir()) == []


def test_verify_property_refuses_a_property_or_onnx_model_that_is_not_one():
    prop = Property(domain_box(4), robustness_spec(0, 3))
    with pytest.raises(NapkitError, match="must be a Property"):
        verify_property(NET, "prop", timeout=1)
    with pytest.raises(NapkitError, match="onnx.ModelProto"):
        verify_property(NET, prop, timeout=1, onnx_model="model.onnx")


def test_an_onnx_model_of_another_network_is_refused():
    """It re-checked counterexamples of NET on other weights, without a word."""
    prop = Property(domain_box(4), robustness_spec(1, 3))
    with pytest.raises(NapkitError, match="other logits"):
        verify_property(NET, prop, timeout=1, onnx_model=to_onnx(random_net(5)))
    with pytest.raises(NapkitError, match="does not run on the network's inputs|do not fit"):
        verify_property(NET, prop, timeout=1, onnx_model=to_onnx(random_net(5, sizes=(5, 8, 3))))


def test_the_onnx_model_of_the_network_itself_is_accepted():
    centre = np.full(4, 0.5)
    prop = Property(linf_ball(centre, 0.01), robustness_spec(int(NET.predict(centre)[0]), 3))
    assert verify_property(NET, prop, timeout=5, onnx_model=to_onnx(NET)).verdict in ("verified", "falsified")


def test_run_batch_refuses_zero_workers_and_jobs_that_are_not_jobs(tmp_path):
    with pytest.raises(NapkitError, match="workers"):
        run_batch([], tmp_path / "r.jsonl", workers=0, progress=False)
    with pytest.raises(NapkitError, match="BatchJob"):
        run_batch(["job"], tmp_path / "r.jsonl", progress=False)


def test_read_vnnlib_given_text_points_to_read_vnnlib_text():
    """The text was taken as a file name ("File name too long")."""
    text = vnnlib_text(domain_box(4), robustness_spec(0, 3))
    with pytest.raises(NapkitError, match="read_vnnlib_text"):
        read_vnnlib(text)


def test_valid_inputs_of_other_types_are_accepted(tmp_path):
    """The boundary checks take what users pass: 0-d arrays and tensors as labels, phases as
    one 2-D array (equal widths), numpy integers as worker counts."""
    import torch

    net = random_net(5, sizes=(4, 6, 6, 3))
    assert robustness_spec(np.array(2), 3).label == robustness_spec(torch.tensor(2), 3).label == 2
    phases = np.zeros((2, 6), np.int8)
    phases[0, 1], phases[1, 2] = 1, -1
    as_list = check_phases(net.layer_sizes, [phases[0], phases[1]])
    as_rows = check_phases(net.layer_sizes, phases)
    assert all(np.array_equal(a, b) for a, b in zip(as_rows, as_list, strict=True))
    assert run_batch([], tmp_path / "r.jsonl", workers=np.int64(2), progress=False) == {}
    with pytest.raises(NapkitError, match="workers"):
        run_batch([], tmp_path / "r.jsonl", workers=np.int64(0), progress=False)
