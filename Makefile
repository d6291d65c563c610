# One reference model, trained in PyTorch and TensorFlow, shipped to every deployment target.
# `make` lists the targets; the README explains them.

.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3.11
# The targets a command works on: names or groups (`make targets` lists them), e.g.
# `make deploy-all TARGETS="onnx-fp32 tflite-fp32"` or `make test TARGETS=edge`; empty: every target.
# setup, deploy-all, deploy-build, serve, parity, deploy-table and test read it.
TARGETS ?= $(DIGITS_TARGETS)
export DIGITS_TARGETS := $(TARGETS)
VENV := .venv
PY := $(VENV)/bin/python
# Keep TensorFlow's C++ start-up chatter out of every command's output.
export TF_CPP_MIN_LOG_LEVEL ?= 2
# uv installs packages without their bytecode, so a machine that asks Python not to write any
# (PYTHONDONTWRITEBYTECODE) would compile torch and TensorFlow from source in every process (about
# 10 s each). The project's commands write it, once, beside each module (__pycache__ is gitignored).
unexport PYTHONDONTWRITEBYTECODE
# Training flags, e.g. `make train TRAIN_ARGS="--epochs 5 --width 2"`.
TRAIN_ARGS ?=
# Your own data instead of the digits (`make deploy-all DATA=mine.npz`: x (N, H, W[, C]), y, optional
# labels and name; see README "Bring your own model"), and the network (`ARCH=resnet`): passed to training.
DATA ?=
ARCH ?=
# DATA's absolute path, whole even with spaces in it (abspath would split it into words), quoted for the
# shell-like split of --train-args. Quote characters, or spaces in a row (make's word functions fold
# them), cannot be passed on that way: such a path is refused here, before anything runs.
space := $(subst ,, )
ifneq ($(findstring ',$(DATA))$(findstring ",$(DATA))$(findstring $(space)$(space),$(DATA)),)
$(error DATA=$(DATA): a path with quote characters or spaces in a row cannot be passed on; rename or move the file)
endif
DATA_PATH = $(if $(filter /%,$(firstword $(DATA))),$(strip $(DATA)),$(CURDIR)/$(strip $(DATA)))
TRAIN_FLAGS = $(strip $(TRAIN_ARGS) $(if $(DATA),--data '$(DATA_PATH)') $(if $(ARCH),--arch $(ARCH)))
# The build graph (deploy/local/build.py): every artifact from one declared step, only when stale.
BUILD := $(PY) -m deploy.local.build
# Test flags, e.g. `make test PYTEST_ARGS="-k twin"`.
PYTEST_ARGS ?=
# Lint flags, e.g. `make lint LINT_ARGS=--fix`.
LINT_ARGS ?=
# Where `make demo` serves the browser demo.
DEMO_HOST ?= 127.0.0.1
DEMO_PORT ?= 8000
# Server settings for `make serve` / `make deploy-all` (local): default (the checked-in configs), or a
# profile measured by `make tune` (deploy/local/profiles.json): latency or throughput.
PROFILE ?= default
# Benchmark flags, e.g. `make bench-serving BENCH_ARGS="--seconds 5"`, `make bench TOOL=scale BENCH_ARGS="--seconds 5"`.
BENCH_ARGS ?=
# Flags of bench-serving's many-in-flight step, e.g. CONCURRENT_ARGS="--concurrency 16 64 --settings default throughput".
CONCURRENT_ARGS ?=

# Where `make deploy-all` / `make down` run the servers: local (processes on this machine), docker
# (containers through the Docker SDK), compose (deploy/docker-compose.yml) or k8s (deploy/k8s/).
DEPLOY ?= local
CONTAINER_MODULE_docker := deploy.containers.launch
CONTAINER_MODULE_compose := deploy.containers.compose
CONTAINER_MODULE_k8s := deploy.containers.k8s

# The measuring tool `make bench` runs: a name `python -m benchmarks --help` lists, e.g. TOOL=burst.
TOOL ?=
# What `make update` does to the running servers: publish (the next model version), rollback or status.
ACTION ?= publish

# `make help` prints the lines marked `## <Section>: ...`, grouped by section in this order; a target
# without such a line is a step the others run (e.g. containers-up, export-edge), not listed.
HELP_SECTIONS := Start Template Serve Measure Deploy Develop

.PHONY: help setup lock targets train test faults test-fast lint clean deploy-all
.PHONY: export export-web demo bench-web
.PHONY: setup-main setup-bench export-serving serve stop bench-serving bench

help:
	@for section in $(HELP_SECTIONS); do \
		echo "$$section:"; \
		grep -hE "^[a-zA-Z_-]+:.*## $$section: " $(MAKEFILE_LIST) \
			| sed -E "s/^([a-zA-Z_-]+):.*## $$section: (.*)/\1\t\2/" \
			| awk -F'\t' '{printf "  %-18s %s\n", $$1, $$2}'; \
	done

setup: ## Start: install what the picked targets need (TARGETS=..., default: all)
	@$(PYTHON) -m deploy.local.setup

lock: ## Develop: compile each environment's lock from requirements/*.in (uv, hashes)
	@$(PYTHON) -m deploy.local.lock

targets: ## Start: the targets, the groups TARGETS= takes, and what each needs installed
	@$(PYTHON) -m core.selection

# Only the main environment (what the tools and tests run in): for targets that need nothing else.
setup-main:
	@$(PYTHON) -m deploy.local.setup --only main

# The benchmarks' native load generator (NVIDIA perf_analyzer) and the library it links.
setup-bench: setup-main
	@$(PYTHON) -m deploy.local.setup --only perf libb64
	@$(PY) -m benchmarks native --check

train: setup-main ## Template: train both frameworks (DATA=mine.npz, ARCH=resnet), the twin check
	$(BUILD) --force train --train-args="$(TRAIN_FLAGS)"

test: setup lint ## Develop: the whole test suite (what CI runs); sets up and lints first
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup-main ## Develop: ruff, and the layers of import-linter (pyproject.toml); LINT_ARGS=--fix
	$(VENV)/bin/ruff check $(LINT_ARGS) .
	$(VENV)/bin/lint-imports

faults: setup ## Develop: the fault tests and heavy batteries in full (make test runs them reduced)
	$(PY) -m benchmarks faults $(BENCH_ARGS)

test-fast: setup-main ## Develop: unit and contract tests only (under a minute): while editing
	$(PY) -m pytest tests/unit tests/deploy -m "not slow" $(PYTEST_ARGS)

export: export-web export-edge export-serving ## Template: build every deployment artifact from the models
	@echo "export: done; see artifacts/manifest.json"

# The offline page (TF.js graph model, ONNX and batch-1 .tflite for onnxruntime-web and LiteRT.js) and its
# test fixtures -> artifacts/web.
export-web: setup
	$(BUILD) --force export-web

demo: export-web ## Start: serve the page: TF.js, onnxruntime-web, LiteRT.js side by side (DEMO_PORT=)
	$(PY) -m web.tfjs.serve --host $(DEMO_HOST) --port $(DEMO_PORT)

bench-web: export-web ## Measure: the page's runtimes in Chromium: cold start, warm p50/p99, page weight
	$(PY) -m benchmarks web $(BENCH_ARGS)

clean: ## Develop: delete everything generated (artifacts/, caches); the environments stay
	rm -rf artifacts .pytest_cache .hypothesis
	find . -name __pycache__ -type d -not -path './.venv*' -prune -exec rm -rf {} +

deploy-all: setup deploy-preflight ## Deploy: set up, train, export, serve, one image through every target
	@# A step that fails stops only what reads it: the rest is built, served and answers, and the table
	@# ends with what failed or was not built, and why (deploy.smoke exits non-zero if a target failed).
	@# Locally the servers start as soon as what they serve is built, while the other exports build.
	@# DEPLOY=local|docker|compose|k8s; PROFILE=latency|throughput: measured server settings.
	@if [ "$(DEPLOY)" = local ]; then \
		$(PY) -m deploy.local.up --settings $(PROFILE) $(if $(TRAIN_FLAGS),--train-args="$(TRAIN_FLAGS)") \
		&& $(MAKE) --no-print-directory deploy-table; \
	else $(BUILD) --keep-going $(if $(TRAIN_FLAGS),--train-args="$(TRAIN_FLAGS)") \
		&& $(MAKE) --no-print-directory containers-up DEPLOY=$(DEPLOY); fi
	@echo "deploy-all: done; metrics in artifacts/metrics.json; 'make parity' checks every target; 'make down' stops what started"

# ---- edge targets: TFLite, ExecuTorch, ONNX (edge/) ----
.PHONY: export-edge bench-edge

# TFLite fp32/int8, ExecuTorch XNNPACK fp32/int8 and portable, ONNX fp32/int8 and litert-torch's .tflite
# (PyTorch model) under artifacts/, in the manifest.
export-edge:
	$(BUILD) --force export-edge

bench-edge: ## Measure: latency p50/p99 (runtime and runner) and size of every edge artifact
	$(PY) -m benchmarks edge $(BENCH_ARGS)

# ---- servers: TorchServe and TF Serving (serving/, deploy/local/) ----
# The TorchServe archive (.mar) and the next TF Serving SavedModel version.
export-serving:
	$(BUILD) --force export-torchserve export-tfserving

serve: ## Serve: start the servers and the page in the background (PROFILE=latency|throughput)
	$(PY) -m deploy.local.runner start --settings $(PROFILE)

stop: ## Serve: stop the servers (and the demo page) `make serve` started
	$(PY) -m deploy.local.runner stop

# One client's latency on every served endpoint and in-process (serving.json); then 64 requests in flight on
# the TF server's gRPC and TorchServe's REST, per profile, by perf_analyzer (concurrent.json).
bench-serving: serve setup-bench ## Measure: one client's latency per endpoint; 64 in flight per profile
	$(PY) -m benchmarks serving $(BENCH_ARGS)
	$(PY) -m benchmarks concurrent $(CONCURRENT_ARGS)

# KServe's breakdown runs in KServe's own environment; every other tool in the main one.
bench: setup ## Measure: any tool `python -m benchmarks --help` lists: TOOL=burst BENCH_ARGS=...
	$(if $(TOOL),,$(error TOOL=<name> is needed: `$(PY) -m benchmarks --help` lists them))
	$(if $(filter kserve-breakdown,$(TOOL)),.venv-kserve/bin/python,$(PY)) -m benchmarks $(TOOL) $(BENCH_ARGS)

# ---- containers: Docker SDK, Compose, Kubernetes (deploy/) ----
# DEPLOY=docker|compose|k8s: stop early, naming what is missing (engine, plugin, kubectl, cluster).
deploy-preflight:
	@if [ "$(DEPLOY)" != local ]; then $(PY) -m deploy.containers.preflight --require $(DEPLOY); fi

# Start the serving containers for DEPLOY=docker|compose|k8s, wait until healthy, print endpoints.
containers-up:
	$(if $(CONTAINER_MODULE_$(DEPLOY)),,$(error DEPLOY=$(DEPLOY): choose local, docker, compose or k8s))
	$(PY) -m $(CONTAINER_MODULE_$(DEPLOY)) up

down: ## Deploy: stop what deploy-all started (local servers, or the containers of DEPLOY=)
	@# (the check is the shell's: make would expand an $$(error) in this recipe even for DEPLOY=local)
	@if [ "$(DEPLOY)" = local ]; then $(PY) -m deploy.local.runner stop; \
	elif [ -n "$(CONTAINER_MODULE_$(DEPLOY))" ]; then $(PY) -m $(CONTAINER_MODULE_$(DEPLOY)) down; \
	else echo "DEPLOY=$(DEPLOY): choose local, docker, compose or k8s" >&2; exit 2; fi

# ---- every target together: build-if-needed, the deploy-all table, the parity matrix (deploy/) ----
.PHONY: deploy-build deploy-table parity check-network

# Build what is missing or stale: train (again for new TRAIN_ARGS/DATA/ARCH), each export.
deploy-build:
	$(BUILD) $(if $(TRAIN_FLAGS),--train-args="$(TRAIN_FLAGS)")

deploy-table: ## Deploy: one test image through every target: where it answers, label, latency
	$(PY) -m deploy.smoke

check-network: setup ## Template: which targets take your network (ARCH=, DATA=), on a tiny run
	$(PY) -m deploy.check_network $(if $(ARCH),--arch $(ARCH)) $(if $(DATA),--data '$(DATA_PATH)')

parity: ## Deploy: every target on the test split against its source framework (after serve)
	$(PY) -m deploy.parity

# ---- load tests, benchmarks and the report (benchmarks/) ----
.PHONY: loadtest loadtest-sweep tune bench-all report
# `make loadtest LOAD_TARGET=tfserving-grpc LOAD_USERS=20 LOAD_DURATION=30` (Locust users), or with
# `LOAD_RATE=200` instead: the open-loop engine at that many requests/s.
LOAD_TARGET ?= torchserve-grpc
LOAD_USERS ?= 10
LOAD_RATE ?=
LOAD_DURATION ?= 20
# Flags of the capacity sweep, e.g. SWEEP_ARGS="--seconds 5 --pin on".
SWEEP_ARGS ?=
# Flags of the settings search, e.g. SEARCH_ARGS="--grid full", SEARCH_ARGS="--servers torchserve".
SEARCH_ARGS ?=

loadtest: ## Measure: Locust users on LOAD_TARGET, or LOAD_RATE req/s open loop (after serve)
	@if [ -n "$(LOAD_RATE)" ]; then $(PY) -m benchmarks openloop --target $(LOAD_TARGET) --rate $(LOAD_RATE) --seconds $(LOAD_DURATION); \
	else $(PY) -m benchmarks locust --target $(LOAD_TARGET) --users $(LOAD_USERS) --seconds $(LOAD_DURATION); fi

loadtest-sweep: ## Measure: capacity (p99 <= 50 ms) of every endpoint, default against the profiles
	$(PY) -m benchmarks sweep $(SWEEP_ARGS)

# The settings search, then the container configs from the profiles it wrote (commit both); without
# touching the profiles: `make bench TOOL=search`.
tune: ## Measure: the settings search; writes the latency/throughput profiles (commit them)
	$(PY) -m benchmarks search --write-profiles $(SEARCH_ARGS)
	$(PY) -m deploy.containers.configs

bench-all: setup-bench ## Measure: every measurement the report needs, servers on free ports
	$(PY) -m benchmarks all

report: ## Measure: REPORT.md and report/*.png from the JSON results
	$(PY) -m benchmarks report

# ---- hardening: fuzzing and model updates (deploy/local/update.py, tests/integration/) ----
.PHONY: fuzz update
# Fuzz cases per endpoint for `make fuzz` (`make test` runs 75).
FUZZ_EXAMPLES ?= 2500

fuzz: ## Develop: property-based fuzzing: FUZZ_EXAMPLES (2500) bodies per endpoint
	DIGITS_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) DIGITS_FUZZ_REPORT=$(CURDIR)/artifacts/bench/fuzz.json \
		$(PY) -m pytest tests/integration/test_fuzz.py -q -s

update: ## Serve: publish the next model version to running servers (ACTION=rollback|status)
	$(PY) -m deploy.local.update $(ACTION)

# ---- data-parallel training (training/distributed.py) ----
.PHONY: train-distributed
# Worker processes per framework for `make train-distributed`, e.g. WORKERS=4.
WORKERS ?= 2

train-distributed: ## Template: WORKERS processes per framework: PyTorch DDP, TF MultiWorkerMirrored
	$(PY) -m training.distributed --workers $(WORKERS) $(TRAIN_ARGS)
