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
# Where `make deploy-all` / `make down` run the servers: local (processes on this machine), docker
# (containers through the Docker SDK), compose (deploy/docker-compose.yml) or k8s (deploy/k8s/).
DEPLOY ?= local
CONTAINER_MODULE_docker := deploy.containers.launch
CONTAINER_MODULE_compose := deploy.containers.compose
CONTAINER_MODULE_k8s := deploy.containers.k8s

.PHONY: help setup setup-system setup-python train test clean deploy-all
.PHONY: deploy-preflight containers-up down

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

train: ## train both frameworks, run the twin check, write artifacts/metrics.json
	$(PY) -m training.train $(TRAIN_ARGS)

test: ## run the test suite (what CI runs)
	$(PY) -m pytest $(PYTEST_ARGS)

clean: ## delete everything generated (artifacts/, caches); the environments stay
	rm -rf artifacts .pytest_cache .hypothesis
	find . -name __pycache__ -type d -not -path './.venv*' -prune -exec rm -rf {} +

deploy-all: setup deploy-preflight train ## from a fresh clone: set up, train (more targets join as they land); DEPLOY=docker|compose|k8s: containers
	@if [ "$(DEPLOY)" != local ]; then $(MAKE) --no-print-directory containers-up DEPLOY=$(DEPLOY); fi
	@echo "deploy-all: done; metrics in artifacts/metrics.json"

deploy-preflight: ## DEPLOY=docker|compose|k8s: stop early, naming what is missing (engine, plugin, kubectl, cluster)
	@if [ "$(DEPLOY)" != local ]; then $(PY) -m deploy.containers.preflight --require $(DEPLOY); fi

containers-up: ## start the serving containers for DEPLOY=docker|compose|k8s, wait until healthy, print endpoints
	$(if $(CONTAINER_MODULE_$(DEPLOY)),,$(error DEPLOY=$(DEPLOY): choose local, docker, compose or k8s))
	$(PY) -m $(CONTAINER_MODULE_$(DEPLOY)) up

down: ## stop what deploy-all started (DEPLOY=local: the local servers; docker, compose, k8s: the containers)
	@if [ "$(DEPLOY)" = local ]; then $(PY) -m deploy.local.runner stop; \
	else $(PY) -m $(or $(CONTAINER_MODULE_$(DEPLOY)),$(error DEPLOY=$(DEPLOY): choose local, docker, compose or k8s)) down; fi
