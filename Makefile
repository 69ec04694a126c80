# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install typecheck bench clean schemas docs dist

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Re-install only when the dependency list changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $(STAMP)

# The order check's hot path compiled with mypyc (engine/native.py), again whenever its
# sources change; without a C compiler it says so and the same modules run as Python.
NATIVE     := $(VENV)/.native
NATIVE_SRC := engine/native.py $(wildcard engine/authority/*.py engine/authority/controls/*.py)
$(NATIVE): $(STAMP) $(NATIVE_SRC)
	@$(BIN)/python -m bastion.engine.native build || echo "make: the order check runs as Python"
	@touch $(NATIVE)

install: $(STAMP) $(NATIVE)

## run: the main job — lint the shipped policies, then `bastion serve` on the built-in
## simulated feed at 60x (one market minute a second): within a minute you see breakers
## trip, a roll decision and an escalation. Ctrl-C stops it. Metrics: http://127.0.0.1:9108/metrics
run: $(STAMP) $(NATIVE)
	$(BIN)/bastion lint policies/
	$(BIN)/bastion serve --adapter sim --speed 60

## test: style, types and the whole test suite
test: $(STAMP) $(NATIVE)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(MAKE) --no-print-directory typecheck
	$(BIN)/pytest -q

## typecheck: mypy --strict over the bastion.* packages
PACKAGES := engine adapters service cli
typecheck: $(STAMP)
	@mkdir -p build/typecheck/bastion
	@for p in $(PACKAGES); do ln -sfn "$(CURDIR)/$$p" build/typecheck/bastion/$$p; done
	$(BIN)/mypy $(addprefix -p bastion.,$(PACKAGES))

## schemas: regenerate schemas/*.json from the Python sources
schemas: $(STAMP)
	$(BIN)/bastion schema --out schemas/

## docs: regenerate docs/lint-codes.md from the code catalogue
docs: $(STAMP)
	$(BIN)/python -m bastion.engine.lint.codes_doc > docs/lint-codes.md

## dist: a wheel and an sdist of bastion-risk in dist/, built from this checkout with the
## venv's setuptools (no download): `pip install dist/bastion_risk-*.whl` installs it
dist: $(STAMP)
	rm -rf dist build/lib build/bdist.*
	$(BIN)/python -m build --no-isolation --outdir dist/ .
	@ls -1 dist/

## bench: every benchmark under bench/
bench: $(STAMP) $(NATIVE)
	@for b in bench/*/run.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	find engine -name '*.so' -delete; rm -f engine/authority/_native.json
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist *.egg-info
