# dlbench: the verbs. `make demo` and `make test` work on a fresh Debian/Python 3.11 machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SPEC ?= quick
# Study folder; empty: dlbench's default, runs/<the spec's name> (runs/quick for SPEC=quick).
OUT ?=
STORE ?= runs/pipeline
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
FASHION_DIR := /usr/share/datasets/fashion-mnist
PIP_QUIET := --quiet --disable-pip-version-check
LINT_PATHS := src tests components pipelines stores bench
# Test processes (pytest-xdist), given a module at a time (--dist loadscope): a module's fixtures (a trained
# run, a whole pipeline, the built image) run once. Modules go out in the order tests/conftest.py sorts them
# (the long poles first), not xdist's largest-first (--no-loadscope-reorder).
WORKERS ?= 2
XDIST = -n $(WORKERS) --dist loadscope --no-loadscope-reorder
# One compute thread per test process (torch, OpenMP, BLAS): two workers with two threads each on two cores
# slowed every training 3-4x (the reference smoke study: 3 min 18 s alone, 13 min 36 s beside the other
# worker). The tests' results do not depend on it (tests/train compares in float64).
TEST_THREADS ?= 1
TEST_ENV = OMP_NUM_THREADS=$(TEST_THREADS) MKL_NUM_THREADS=$(TEST_THREADS) OPENBLAS_NUM_THREADS=$(TEST_THREADS)
# `make test` ends with its slowest tests (pytest --durations): where the suite spends its time
DURATIONS ?= 15

.PHONY: help setup data browser demo study test check lint compile bench clean clean-runs podman

help:  ## list the verbs
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 12

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_QUIET) --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/pip install $(PIP_QUIET) -e '.[kfp,dev]' 2>&1 | grep -v "^WARNING: Location"; test $${PIPESTATUS[0]} -eq 0
	touch $@

setup: $(BIN)/.installed  ## create .venv and install dlbench with its dependencies

data: $(FASHION_DIR)/train-images-idx3-ubyte.gz  ## install Fashion-MNIST (Debian's dataset-fashion-mnist)

$(FASHION_DIR)/train-images-idx3-ubyte.gz:
	$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist >/dev/null

browser: /usr/bin/chromium  ## install headless Chromium (Debian's chromium), the report's browser test

/usr/bin/chromium:
	$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null

demo: setup data  ## run the quick study through the KFP pipeline on this machine (kfp.local)
	$(BIN)/dlbench run --local --spec $(SPEC) --store $(STORE)
	@echo "every run: $(BIN)/dlbench runs $(STORE)   (dlbench fetch RUN --store $(STORE) --to DIR copies one)"

study: setup data  ## run the quick study in this process, without KFP, into runs/quick (again: skips finished runs)
	$(BIN)/dlbench study --spec $(SPEC) $(if $(OUT),--out $(OUT)) --resume

# The whole suite (no PYTEST_ARGS) starts the container image build (images/ci-build.sh cpu) in the
# background first, once every apt install is done, so it overlaps the venv's set-up and the other tests;
# tests/images/test_container.py waits for it (.cache/container-build.{log,pid,rc}).
IMAGE_BUILD := .cache/container-build
test: data browser registry podman  ## the whole test suite, as CI runs it (container build and smoke study included)
	$(if $(PYTEST_ARGS),,@mkdir -p .cache && rm -f $(IMAGE_BUILD).rc && \
	  { (images/ci-build.sh cpu > $(IMAGE_BUILD).log 2>&1; echo $$? > $(IMAGE_BUILD).rc) & echo $$! > $(IMAGE_BUILD).pid; } && \
	  echo "container image build started in the background: $(IMAGE_BUILD).log")
	@$(MAKE) --no-print-directory setup
	$(if $(PYTEST_ARGS),,DLBENCH_TEST_IMAGE_BUILD=$(IMAGE_BUILD)) $(TEST_ENV) $(BIN)/python -m pytest -q $(XDIST) --durations=$(DURATIONS) $(PYTEST_ARGS)

podman:  ## install podman and debootstrap and apply this host's podman settings (images/podman-host.sh)
	images/podman-host.sh

check: setup data  ## after each edit: ruff, then the fast tests (no container, no training past a few steps)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(TEST_ENV) $(BIN)/python -m pytest -q $(XDIST) -m "not slow and not container" $(PYTEST_ARGS)

lint: setup  ## ruff (lint and format check)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

compile: setup  ## compile the quick study's pipeline to pipelines/study_pipeline.yaml (kept in the repo)
	env -u DLBENCH_REGISTRY -u DLBENCH_IMAGE_TAG $(BIN)/dlbench compile --spec quick --out pipelines/study_pipeline.yaml

# Images: names from components/images.py, engine docker or podman (whichever answers; ENGINE=... to choose).
# REGISTRY=host[:port]/namespace and TAG=... name them (as DLBENCH_REGISTRY / DLBENCH_IMAGE_TAG, which
# dlbench compile and submit read).
.PHONY: images image-cpu image-cuda image-rapids push registry container-test
KINDS ?= cpu cuda rapids
ifdef REGISTRY
export DLBENCH_REGISTRY := $(REGISTRY)
endif
ifdef TAG
export DLBENCH_IMAGE_TAG := $(TAG)
endif
images: image-cpu image-cuda image-rapids  ## build the cpu, cuda and rapids images

image-cpu:  ## build one image (also image-cuda, image-rapids; BASE_IMAGE=... optional)
	images/build.sh cpu

image-cuda image-rapids:
	images/build.sh $(@:image-%=%)

push:  ## build if needed and push the images: REGISTRY=host[:port]/ns [TAG=..] [KINDS=cpu] [INSECURE=1]
	INSECURE=$(INSECURE) images/push.sh $(KINDS)

registry: /usr/bin/docker-registry  ## install Debian's docker-registry (the tests run one on loopback)

/usr/bin/docker-registry:
	$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null

container-test: setup data  ## build the cpu image offline (podman, local Debian base) and run the docker steps of docs/containers.md in it
	$(BIN)/python -m pytest -q -s tests/images/test_container.py

clean:  ## remove the virtualenv and caches (run outputs in runs/ stay; see clean-runs)
	rm -rf $(VENV) .pytest_cache

clean-runs:  ## delete every study, pipeline run and kfp.local output under runs/
	rm -rf runs
