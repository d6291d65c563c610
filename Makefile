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
# Benchmark flags, e.g. `make bench-serving BENCH_ARGS="--seconds 5"`, `make bench-edge BENCH_ARGS="--iterations 1000"`.
BENCH_ARGS ?=
# Flags of bench-serving's many-in-flight step, e.g. CONCURRENT_ARGS="--concurrency 16 64 --settings default throughput".
CONCURRENT_ARGS ?=

# Where `make deploy-all` / `make down` run the servers: local (processes on this machine), docker
# (containers through the Docker SDK), compose (deploy/docker-compose.yml) or k8s (deploy/k8s/).
DEPLOY ?= local
CONTAINER_MODULE_docker := deploy.containers.launch
CONTAINER_MODULE_compose := deploy.containers.compose
CONTAINER_MODULE_k8s := deploy.containers.k8s

.PHONY: help setup lock targets train test test-fast lint clean deploy-all
.PHONY: export export-web demo bench-web
.PHONY: setup-main setup-bench export-serving serve stop bench-serving bench-torchserve bench-scale bench-kserve

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-22s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: ## install what the picked targets need (TARGETS=..., default all): system programs, environments (uv), npm packages, stubs
	@$(PYTHON) -m deploy.local.setup

lock: ## compile every environment's lock from requirements/*.in and the targets' folders (uv, with hashes); commit them
	@$(PYTHON) -m deploy.local.lock

targets: ## the targets, the groups TARGETS= takes, and what each needs installed
	@$(PYTHON) -m core.selection

# Only the main environment (what the tools and tests run in): for targets that need nothing else.
setup-main:
	@$(PYTHON) -m deploy.local.setup --only main

# The benchmarks' native load generator (NVIDIA perf_analyzer) and the library it links.
setup-bench: setup-main
	@$(PYTHON) -m deploy.local.setup --only perf libb64
	@$(PY) -m benchmarks.native --check

train: setup-main ## train both frameworks (DATA=mine.npz: your own data, ARCH=resnet), run the twin check, write artifacts/metrics.json
	$(BUILD) --force train --train-args="$(TRAIN_FLAGS)"

test: setup lint ## the whole test suite (what CI runs); sets up and lints first (seconds when nothing changed)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup-main ## ruff over the project's Python (rules in pyproject.toml); `make lint LINT_ARGS=--fix` mends what it can
	$(VENV)/bin/ruff check $(LINT_ARGS) .

test-fast: setup-main ## unit and contract tests only (under a minute, nothing trained or started): while editing
	$(PY) -m pytest tests/unit tests/deploy -m "not slow" $(PYTEST_ARGS)

export: export-web export-edge export-serving ## build every deployment artifact from the trained models
	@echo "export: done; see artifacts/manifest.json"

export-web: setup ## the offline page (TF.js graph model, ONNX and batch-1 .tflite for onnxruntime-web and LiteRT.js) + its test fixtures -> artifacts/web
	$(BUILD) --force export-web

demo: export-web ## build and serve the page: TF.js, onnxruntime-web and LiteRT.js (Keras and litert-torch files) answer side by side (draw a digit or upload a picture; 127.0.0.1:8000; DEMO_HOST, DEMO_PORT)
	$(PY) -m web.tfjs.serve --host $(DEMO_HOST) --port $(DEMO_PORT)

bench-web: export-web ## cold start, warm p50/p99 and page weight per runtime and TF.js backend in headless Chromium -> artifacts/bench/web.json
	$(PY) -m web.tfjs.bench $(BENCH_ARGS)

clean: ## delete everything generated (artifacts/, caches); the environments stay
	rm -rf artifacts .pytest_cache .hypothesis
	find . -name __pycache__ -type d -not -path './.venv*' -prune -exec rm -rf {} +

deploy-all: setup deploy-preflight ## from a fresh clone: set up, train (DATA=mine.npz: your data), export, start the servers and the demo, one image through every target (DEPLOY=local|docker|compose|k8s; PROFILE=latency|throughput: measured server settings)
	@# A step that fails stops only what reads it: the rest is built, served and answers, and the table
	@# ends with what failed or was not built, and why (deploy.smoke exits non-zero if a target failed).
	@# Locally the servers start as soon as what they serve is built, while the other exports build.
	@if [ "$(DEPLOY)" = local ]; then \
		$(PY) -m deploy.local.up --settings $(PROFILE) $(if $(TRAIN_FLAGS),--train-args="$(TRAIN_FLAGS)") \
		&& $(MAKE) --no-print-directory deploy-table; \
	else $(BUILD) --keep-going $(if $(TRAIN_FLAGS),--train-args="$(TRAIN_FLAGS)") \
		&& $(MAKE) --no-print-directory containers-up DEPLOY=$(DEPLOY); fi
	@echo "deploy-all: done; metrics in artifacts/metrics.json; 'make parity' checks every target; 'make down' stops what started"

# ---- edge targets: TFLite, ExecuTorch, ONNX (edge/) ----
.PHONY: export-edge bench-edge

export-edge: ## TFLite fp32/int8, ExecuTorch XNNPACK fp32/int8 and portable, ONNX fp32/int8 and litert-torch's .tflite (PyTorch model) under artifacts/, in the manifest
	$(BUILD) --force export-edge

bench-edge: ## latency p50/p99 at batch 1 and 32 (runner and runtime alone) and size of every edge artifact + eager baselines -> artifacts/bench/edge.json
	$(PY) -m edge.bench $(BENCH_ARGS)

# ---- servers: TorchServe and TF Serving (serving/, deploy/local/) ----
export-serving: ## TorchServe archive (.mar) and the next TF Serving SavedModel version
	$(BUILD) --force export-torchserve export-tfserving

serve: ## start TorchServe, TF Serving and (when built) the demo page in the background (PROFILE=latency|throughput: measured settings; logs, pids under artifacts/run/)
	$(PY) -m deploy.local.runner start --settings $(PROFILE)

stop: ## stop the servers (and the demo page) `make serve` started
	$(PY) -m deploy.local.runner stop

bench-serving: serve setup-bench ## one client's latency on every served endpoint and in-process (serving.json); 64 requests in flight on the TF server's gRPC and TorchServe's REST, the default, latency and throughput profiles, by perf_analyzer (concurrent.json)
	$(PY) -m serving.bench $(BENCH_ARGS)
	$(PY) -m serving.load.concurrent $(CONCURRENT_ARGS)

bench-scale: setup ## Ray Serve's capacity (p99 <= 50 ms) at 1, 2, 4 replicas, batching on and off, beside KServe and TorchServe, with memory (own servers on free ports) -> artifacts/bench/scale.json
	$(PY) -m benchmarks.scale $(BENCH_ARGS)

bench-kserve: setup ## where KServe's V2 REST latency goes: model, V2 JSON, bare ASGI floor, kserve, its logging, torch threads (own servers on free ports) -> artifacts/bench/kserve-breakdown.json
	.venv-kserve/bin/python -m serving.kserve.breakdown $(BENCH_ARGS)

bench-torchserve: setup ## where TorchServe's REST latency goes (its own counters, the handler's timers) and what can be cut: metrics mode, Netty threads, keep-alive, gRPC (own servers on free ports) -> artifacts/bench/torchserve-breakdown.json
	$(PY) -m serving.torchserve.breakdown $(BENCH_ARGS)

# ---- containers: Docker SDK, Compose, Kubernetes (deploy/) ----
deploy-preflight: ## DEPLOY=docker|compose|k8s: stop early, naming what is missing (engine, plugin, kubectl, cluster)
	@if [ "$(DEPLOY)" != local ]; then $(PY) -m deploy.containers.preflight --require $(DEPLOY); fi

containers-up: ## start the serving containers for DEPLOY=docker|compose|k8s, wait until healthy, print endpoints
	$(if $(CONTAINER_MODULE_$(DEPLOY)),,$(error DEPLOY=$(DEPLOY): choose local, docker, compose or k8s))
	$(PY) -m $(CONTAINER_MODULE_$(DEPLOY)) up

down: ## stop what deploy-all started (DEPLOY=local: the local servers; docker, compose, k8s: the containers)
	@# (the check is the shell's: make would expand an $$(error) in this recipe even for DEPLOY=local)
	@if [ "$(DEPLOY)" = local ]; then $(PY) -m deploy.local.runner stop; \
	elif [ -n "$(CONTAINER_MODULE_$(DEPLOY))" ]; then $(PY) -m $(CONTAINER_MODULE_$(DEPLOY)) down; \
	else echo "DEPLOY=$(DEPLOY): choose local, docker, compose or k8s" >&2; exit 2; fi

# ---- every target together: build-if-needed, the deploy-all table, the parity matrix (deploy/) ----
.PHONY: deploy-build deploy-table parity check-network

deploy-build: ## build what is missing or stale: train (again for new TRAIN_ARGS/DATA/ARCH), each export (deploy-all runs it)
	$(BUILD) $(if $(TRAIN_FLAGS),--train-args="$(TRAIN_FLAGS)")

deploy-table: ## one test image through every target: where it answers, label, latency -> artifacts/deploy-all.json
	$(PY) -m deploy.smoke

check-network: setup ## which targets take your network (ARCH=, DATA=): exports / runs / matches per target on a tiny run, servers judged by what they would serve -> artifacts/check-network.json
	$(PY) -m deploy.check_network $(if $(ARCH),--arch $(ARCH)) $(if $(DATA),--data '$(DATA_PATH)')

parity: ## every target on the test split vs its source framework -> artifacts/parity.json, artifacts/parity.md (needs `make serve`, web built)
	$(PY) -m deploy.parity

# ---- load tests, benchmarks and the report (serving/load/, benchmarks/) ----
.PHONY: loadtest loadtest-open loadtest-sweep loadtest-burst tune bench-search bench-widths bench-all report
# `make loadtest LOAD_TARGET=tfserving-grpc LOAD_USERS=20 LOAD_DURATION=30` (Locust users), or with
# `LOAD_RATE=200` instead: an open loop at that many requests/s (the same as `make loadtest-open`).
LOAD_TARGET ?= torchserve-grpc
LOAD_USERS ?= 10
LOAD_RATE ?=
LOAD_DURATION ?= 20
# Flags of the capacity sweep and the width sweep, e.g. SWEEP_ARGS="--seconds 5 --pin on", WIDTH_ARGS="--widths 1 8".
SWEEP_ARGS ?=
# Flags of the settings search, e.g. SEARCH_ARGS="--grid full", SEARCH_ARGS="--servers torchserve".
SEARCH_ARGS ?=
WIDTH_ARGS ?=
# Flags of the burst, e.g. BURST_ARGS="--connections 64 256 --targets tfserving-rest" (--running: against make serve).
BURST_ARGS ?=

loadtest: ## Locust headless on LOAD_TARGET, LOAD_USERS users (or LOAD_RATE req/s open loop), LOAD_DURATION s; needs make serve
	@if [ -n "$(LOAD_RATE)" ]; then $(PY) -m benchmarks.openloop --target $(LOAD_TARGET) --rate $(LOAD_RATE) --seconds $(LOAD_DURATION); \
	else $(PY) -m serving.load.locust_run --target $(LOAD_TARGET) --users $(LOAD_USERS) --seconds $(LOAD_DURATION); fi

loadtest-open: ## open loop: Poisson arrivals at LOAD_RATE req/s (default 100) on LOAD_TARGET for LOAD_DURATION s (needs make serve)
	$(PY) -m benchmarks.openloop --target $(LOAD_TARGET) --rate $(or $(LOAD_RATE),100) --seconds $(LOAD_DURATION)

loadtest-sweep: ## capacity (p99 <= 50 ms, all answered) of every endpoint, default vs the committed latency and throughput profiles, generator and servers pinned apart and not, servers on free ports -> artifacts/bench/load-*.json, *.png
	$(PY) -m serving.load.sweep $(SWEEP_ARGS)

tune: ## settings search: a grid per server (one-client p50/p99, capacity), writes the latency/throughput profiles to deploy/local/profiles.json and the container configs (commit both) -> artifacts/bench/search.json
	$(PY) -m serving.load.search --write-profiles $(SEARCH_ARGS)
	$(PY) -m deploy.containers.configs

bench-search: ## the settings search without touching the committed profiles (bench-all's step) -> artifacts/bench/search.json
	$(PY) -m serving.load.search $(SEARCH_ARGS)

loadtest-burst: ## 16, 64, 256, 1,000 connections at once x 5 requests on every endpoint (servers on free ports): answered/refused/reset, p50/p99 -> artifacts/bench/burst.json, burst.png
	$(PY) -m serving.load.burst $(BURST_ARGS)

bench-widths: ## latency of every target at width 1, 2, 4, 8 (brief training into artifacts/width/) -> artifacts/bench/widths.json
	$(PY) -m benchmarks.widths $(WIDTH_ARGS)

bench-all: setup-bench ## every measurement the report needs, servers on free ports; then make report
	$(PY) -m benchmarks.all

report: ## REPORT.md and report/*.png from the JSON results (a missing one is named, with its command)
	$(PY) -m benchmarks.report

# ---- hardening: fuzzing, model updates, soak (serving/update.py, serving/soak.py, tests/integration/) ----
.PHONY: fuzz faults update-publish update-rollback update-status soak
# Fuzz cases per endpoint for `make fuzz` (`make test` runs 75).
FUZZ_EXAMPLES ?= 2500
# Soak flags, e.g. `make soak SOAK_ARGS="--seconds 60 --rate 30"`.
SOAK_ARGS ?=

fuzz: ## property-based fuzzing, FUZZ_EXAMPLES (2500) bodies per endpoint on fresh servers -> artifacts/bench/fuzz.json
	DIGITS_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) DIGITS_FUZZ_REPORT=$(CURDIR)/artifacts/bench/fuzz.json \
		$(PY) -m pytest tests/integration/test_fuzz.py -q -s

faults: setup ## the fault-injection tests (killed and stopped workers, expiring keys, restarts and versions under load, floods, interrupted builds), each fault's counts -> artifacts/bench/faults.json, REPORT's reliability section
	$(PY) -m benchmarks.faults

update-publish: ## export the next model version and switch every running server to it (TorchServe, TF Serving, KServe, Ray Serve), without downtime
	$(PY) -m serving.update publish

update-rollback: ## switch every running server back to the previous model version
	$(PY) -m serving.update rollback

update-status: ## the model versions each running server holds, and which one answers
	$(PY) -m serving.update status

soak: serve ## every endpoint at half its capacity for 10 minutes: errors, memory growth -> artifacts/bench/soak.json
	$(PY) -m serving.soak $(SOAK_ARGS)

# ---- training cost and data-parallel training (benchmarks/training.py, training/distributed.py) ----
.PHONY: train-distributed bench-training bench-distributed bench-handwriting
# Worker processes per framework for `make train-distributed`, e.g. WORKERS=4.
WORKERS ?= 2

train-distributed: ## WORKERS processes per framework on 127.0.0.1: PyTorch DDP (gloo, torchrun), TF MultiWorkerMirroredStrategy; a normal trained model
	$(PY) -m training.distributed --workers $(WORKERS) $(TRAIN_ARGS)

bench-training: ## peak RSS and time per epoch of training, per framework, width 1..8, eager and compiled -> artifacts/bench/training.json
	$(PY) -m benchmarks.training $(BENCH_ARGS)

bench-handwriting: ## held-out drawn and printed digits per digit, trained with and without augmentation -> artifacts/bench/handwriting.json
	$(PY) -m benchmarks.handwriting $(BENCH_ARGS)

bench-distributed: ## time per epoch, samples/s and scaling efficiency at 1 and 2 workers per framework -> artifacts/bench/distributed.json
	$(PY) -m benchmarks.distributed $(BENCH_ARGS)
