# Two commands: `make demo` and `make test`. Each creates .venv first when it is missing.
PYTHON ?= python3
VENV ?= .venv
# torch is pinned before the package is installed so pip never resolves a CUDA build.
TORCH_SPEC ?= torch==2.13.0
export MUJOCO_GL ?= egl

STAMP := $(VENV)/.installed

.PHONY: demo test venv

venv: $(STAMP)

$(STAMP): setup.py setup.cfg
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet "$(TORCH_SPEC)"
	$(VENV)/bin/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/inhand demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q tests
