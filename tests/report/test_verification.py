"""The report's verification: verdicts re-checked by exact forward passes, the query limit honoured."""

import numpy as np
import pytest

from napkit.errors import NapkitError
from napkit.patterns import syntactic_disjoint
from napkit.report.verification import verdict_counts, verification_json, verify_for_report
from napkit.verify import follows_phases

TIMEOUT = 1.0


@pytest.fixture(scope="module")
def ver(tiny):
    return verify_for_report(tiny.net, tiny.naps, tiny.x_test, tiny.y_test, timeout=TIMEOUT, eps=0.05)


def _phases(tiny, c):
    return tiny.naps.phases(c, tiny.net.layer_names, tiny.net.layer_sizes)


def test_centres_are_correct_followers_of_their_nap(tiny, ver):
    net = tiny.net
    for r in ver["classes"]:
        i, c = r["centre"], r["label"]
        assert i is not None, f"class {c}: some test input follows its NAP at δ = 0.95"
        x = tiny.x_test[i : i + 1].astype(np.float64)
        _, pre = net.forward(x)
        assert tiny.y_test[i] == c and net.predict(x)[0] == c
        assert follows_phases(pre, _phases(tiny, c), strict=True)[0]
        # the first such row: no earlier row qualifies
        earlier = np.flatnonzero((tiny.y_test[:i] == c) & (net.predict(tiny.x_test[:i]) == c))
        if len(earlier):
            _, pre_e = net.forward(tiny.x_test[earlier].astype(np.float64))
            assert not follows_phases(pre_e, _phases(tiny, c), strict=True).any()


def test_counterexamples_are_real(tiny, ver):
    net = tiny.net
    seen = 0
    for r in ver["classes"]:
        c = r["label"]
        for q in (r["domain"], r["local"]):
            if q.verdict != "falsified":
                assert q.counterexample is None
                continue
            seen += 1
            logits, pre = net.forward(q.counterexample[None])
            assert follows_phases(pre, _phases(tiny, c))[0]
            others = np.delete(logits[0], c)
            assert others.max() >= logits[0, c]
            assert q.predicted == int(logits[0].argmax())
            assert ((q.counterexample >= 0) & (q.counterexample <= 1)).all()
    labels = ver["labels"]
    for (a, b), q in ver["pairs"].items():
        if q.verdict == "falsified":
            seen += 1
            _, pre = net.forward(q.counterexample[None])
            assert follows_phases(pre, _phases(tiny, labels[a]))[0]
            assert follows_phases(pre, _phases(tiny, labels[b]))[0]
    assert seen, "the tiny model's δ = 0.95 NAPs have some falsified query"


def test_syntactic_pairs_need_no_solver(tiny, ver):
    syn = syntactic_disjoint(tiny.naps)
    n = len(ver["labels"])
    assert len(ver["pairs"]) == n * (n - 1) // 2
    for (a, b), q in ver["pairs"].items():
        assert (q.reason == "disjoint by syntax") == bool(syn[a, b])
        if syn[a, b]:
            assert q.verdict == "verified" and q.seconds == 0.0
    solver_pairs = int((~syn[np.triu_indices(n, 1)]).sum())
    assert ver["queries"] == 2 * n + solver_pairs


def test_query_limit_leaves_the_rest_skipped(tiny):
    ver = verify_for_report(tiny.net, tiny.naps, tiny.x_test, tiny.y_test, timeout=TIMEOUT, max_queries=3)
    counts = verdict_counts(ver)
    ran = sum(sum(v for k, v in c.items() if k != "skipped") for c in counts.values())
    syn = int(np.triu(syntactic_disjoint(tiny.naps), 1).sum())
    assert ver["queries"] == 3
    assert ran == 3 + syn
    assert [r["domain"].verdict != "skipped" for r in ver["classes"]][:2] == [True, True]
    as_json = verification_json(ver)
    assert as_json["max_queries"] == 3 and as_json["queries"] == 3


def test_zero_queries_still_reports_syntax(tiny):
    ver = verify_for_report(tiny.net, tiny.naps, tiny.x_test, tiny.y_test, timeout=TIMEOUT, max_queries=0)
    counts = verdict_counts(ver)
    assert counts["domain"]["skipped"] == counts["local"]["skipped"] == 10
    assert counts["pairs"]["verified"] == int(np.triu(syntactic_disjoint(tiny.naps), 1).sum())


@pytest.mark.parametrize("kw", [{"timeout": 0}, {"timeout": -1}, {"eps": 0}, {"max_queries": -2}])
def test_bad_options_are_refused(tiny, kw):
    with pytest.raises(NapkitError):
        verify_for_report(tiny.net, tiny.naps, tiny.x_test, tiny.y_test, **kw)


def test_centres_do_not_depend_on_the_batch_size(tiny, ver):
    from napkit.report.verification import _centres
    from napkit.verify import domain_box

    labels = tiny.naps.labels.tolist()
    phases_of = {c: _phases(tiny, c) for c in labels}
    box = domain_box(tiny.net.n_inputs)
    small = _centres(tiny.net, phases_of, labels, tiny.x_test, tiny.y_test, box, batch=7)
    assert small == {r["label"]: r["centre"] for r in ver["classes"]}
