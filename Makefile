# zkref — the two commands the README promises, and the steps they are made of.
#   make run   [CFG=path/to/zoo.cfg]  installs what the server needs, then runs `python -m zkref [CFG]`
#   make test                         installs everything, then runs every check CI runs
SHELL := /bin/bash
# The interpreter the venv is made from: the distribution's /usr/bin/python3.11 when it can make a venv
# (Debian: package python3.11-venv), else python3 on PATH; `make PYTHON=/path/to/python3.11 ...` chooses.
# Debian builds its python3.11 with profile-guided and link-time optimisation and links libpython into the
# executable; a python3 built from source without --enable-optimizations (pyenv's default) executes 11-13 %
# more instructions per request in zkref (site/benchmarks.md, "Which python3").
ifeq ($(origin PYTHON),undefined)
PYTHON := $(or $(shell /usr/bin/python3.11 -c 'import ensurepip' >/dev/null 2>&1 && echo /usr/bin/python3.11),python3)
endif
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp
APT_PACKAGES := zookeeper zookeeper-bin graphviz
CFG ?=

.PHONY: run test apt venv venv-dev export check-export nbtest pytest docs docs-serve notebooks clean

run: venv
	$(PY) -m zkref $(CFG)

test: apt venv-dev check-export nbtest pytest docs
	@echo "make test: all checks passed"

## --- installation -----------------------------------------------------------------------------
# Debian packages the tests need: the real ZooKeeper 3.8 (Java server, zkCli.sh, zkTxnLogToolkit),
# the C client cli_mt, and graphviz's `dot` for the diagrams. policy-rc.d keeps the zookeeper
# package from starting a system-wide server on port 2181 while it installs.
apt:
	@if dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then echo "apt: $(APT_PACKAGES) present"; else \
	  if [ "$$(id -u)" != 0 ]; then echo "apt: need root to install $(APT_PACKAGES)"; exit 1; fi; \
	  made_policy=0; if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES); rc=$$?; \
	  [ $$made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d; exit $$rc; fi

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(STAMP).run: $(PY) settings.ini setup.py
	$(PY) -m pip install -q -e .
	@touch $@

$(STAMP).dev: $(PY) settings.ini setup.py
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $@

venv: $(STAMP).run
venv-dev: $(STAMP).dev

## --- the checks -------------------------------------------------------------------------------
# zkref/ is generated from nbs/: export into a scratch copy and compare with what is committed.
check-export: venv-dev
	$(PY) tools/check_export.py

# The notebooks are tests too. `slow` cells are skipped by a plain nbdev_test; CI runs them.
nbtest: venv-dev
	$(VENV)/bin/nbdev_test --flags slow --n_workers 2

pytest: venv-dev
	$(PY) -m pytest tests

# Render notebooks + site/ into build/docs, then build the site into build/site.
docs: export NO_MKDOCS_2_WARNING=1
docs: venv-dev
	$(PY) tools/build_docs.py
	$(VENV)/bin/mkdocs build --strict -q -f build/mkdocs.yml

docs-serve: export NO_MKDOCS_2_WARNING=1
docs-serve: venv-dev
	$(PY) tools/build_docs.py
	$(VENV)/bin/mkdocs serve -f build/mkdocs.yml -a 127.0.0.1:8000

## --- authoring --------------------------------------------------------------------------------
export: venv-dev
	$(VENV)/bin/nbdev_export

# Re-run notebooks and save their outputs: make notebooks NB=nbs/02_config.ipynb (default: all)
notebooks: venv-dev
	$(PY) tools/nb.py run $(or $(NB),nbs/*.ipynb)

clean:
	rm -rf build _docs _proc .pytest_cache
