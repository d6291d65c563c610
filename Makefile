# One reference model, trained in PyTorch and TensorFlow, shipped to every deployment target.
# `make` lists the targets; the README explains them.

.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
# Keep TensorFlow's C++ start-up chatter out of every command's output.
export TF_CPP_MIN_LOG_LEVEL ?= 2
# Training flags, e.g. `make train TRAIN_ARGS="--epochs 5 --width 2"`.
TRAIN_ARGS ?=
# Test flags, e.g. `make test PYTEST_ARGS="-k twin"`.
PYTEST_ARGS ?=
# Serving benchmark flags, e.g. `make bench-serving BENCH_ARGS="--seconds 5"`.
BENCH_ARGS ?=

.PHONY: help setup setup-system setup-python train test clean deploy-all
.PHONY: setup-serving-stubs export export-serving serve stop bench-serving

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: setup-system setup-python setup-serving-stubs ## prepare this machine: system prerequisites and every Python environment
	@echo "setup: done"

setup-system: ## check (and on Debian as root, install) Java, Node and Chromium
	@echo "setup: system prerequisites"
	@deploy/local/prereqs.sh

setup-python: ## create the main, edge and TF.js-converter environments from the lock files
	@echo "setup: Python environments"
	@PYTHON=$(PYTHON) deploy/local/make_venv.sh $(VENV) requirements/main.txt
	@PYTHON=$(PYTHON) deploy/local/make_venv.sh .venv-edge requirements/edge.txt
	@PYTHON=$(PYTHON) deploy/local/make_venv.sh .venv-tfjs requirements/tfjs.txt

setup-serving-stubs: setup-python ## generate TorchServe's gRPC stubs from the protos inside its jar
	@echo "setup: TorchServe gRPC stubs"
	@$(PY) -m serving.torchserve.gen_stubs

train: ## train both frameworks, run the twin check, write artifacts/metrics.json
	$(PY) -m training.train $(TRAIN_ARGS)

test: ## run the test suite (what CI runs)
	$(PY) -m pytest $(PYTEST_ARGS)

clean: ## delete everything generated (artifacts/, caches); the environments stay
	rm -rf artifacts .pytest_cache .hypothesis
	find . -name __pycache__ -type d -not -path './.venv*' -prune -exec rm -rf {} +

deploy-all: setup train export serve ## from a fresh clone: set up, train, export, serve (more targets join as they land)
	@echo "deploy-all: done; metrics in artifacts/metrics.json"

export: export-serving ## build every deployable artifact from the trained models
	@echo "export: done; see artifacts/manifest.json"

export-serving: ## TorchServe archive (.mar) and the next TF Serving SavedModel version
	$(PY) -m serving.torchserve.archive
	$(PY) -m serving.tfserving.export

serve: ## start TorchServe and TF Serving in the background (logs, pids under artifacts/run/)
	$(PY) -m deploy.local.runner start

stop: ## stop the servers `make serve` started
	$(PY) -m deploy.local.runner stop

bench-serving: serve ## latency/throughput of every served endpoint and in-process: artifacts/bench/serving.json
	$(PY) -m serving.bench $(BENCH_ARGS)
