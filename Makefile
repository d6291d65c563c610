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

.PHONY: help setup setup-system setup-python train test clean deploy-all

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: setup-system setup-python ## prepare this machine: system prerequisites and every Python environment
	@echo "setup: done"

setup-system: ## check (and on Debian as root, install) Java, Node and Chromium
	@echo "setup: system prerequisites"
	@deploy/local/prereqs.sh

setup-python: ## create the main, edge and TF.js-converter environments from the lock files
	@echo "setup: Python environments"
	@PYTHON=$(PYTHON) deploy/local/make_venv.sh $(VENV) requirements/main.txt
	@PYTHON=$(PYTHON) deploy/local/make_venv.sh .venv-edge requirements/edge.txt
	@PYTHON=$(PYTHON) deploy/local/make_venv.sh .venv-tfjs requirements/tfjs.txt
	@PYTHON=$(PYTHON) deploy/local/make_venv.sh .venv-tflite requirements/tflite-runtime.txt

train: ## train both frameworks, run the twin check, write artifacts/metrics.json
	$(PY) -m training.train $(TRAIN_ARGS)

test: ## run the test suite (what CI runs)
	$(PY) -m pytest $(PYTEST_ARGS)

clean: ## delete everything generated (artifacts/, caches); the environments stay
	rm -rf artifacts .pytest_cache .hypothesis
	find . -name __pycache__ -type d -not -path './.venv*' -prune -exec rm -rf {} +

deploy-all: setup train export ## from a fresh clone: set up, train, export (more targets join as they land)
	@echo "deploy-all: done; metrics in artifacts/metrics.json"

# ---- edge targets: TFLite, ExecuTorch, ONNX (edge/) ----
# Benchmark flags, e.g. `make bench-edge BENCH_ARGS="--iterations 1000"`.
BENCH_ARGS ?=

.PHONY: export export-edge bench-edge setup-tflite-runtime

export: export-edge ## build every deployable artifact from the trained models (needs `make train`)

export-edge: ## TFLite fp32/int8, ExecuTorch XNNPACK/portable and ONNX files under artifacts/, in the manifest
	$(PY) -m edge.export

bench-edge: ## latency p50/p99 at batch 1 and 32 and size of every edge artifact + eager baselines -> artifacts/bench/edge.json
	$(PY) -m edge.bench $(BENCH_ARGS)

setup-tflite-runtime: ## only .venv-tflite (part of setup-python): with the legacy tflite-runtime 2.14 (numpy<2) for `edge.tflite.run --runtime tflite-runtime`
	@PYTHON=$(PYTHON) deploy/local/make_venv.sh .venv-tflite requirements/tflite-runtime.txt
