# kschema: every developer and CI entry point. `make demo` and `make test` install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup system-deps controlplane helm clients apicurio argocd node certmanager image demo demo-node demo-down test test-node lint unit bench cluster-up cluster-down node-up node-down clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

## setup: Python environment, Debian packages (PostgreSQL, redis), the cached control-plane, helm and Argo CD
## binaries, the client programs, and Apicurio Registry (the third-party source registry of the import tests)
setup: $(STAMP) system-deps controlplane helm clients apicurio argocd

system-deps:
	bash dev/system-deps.sh

controlplane:
	bash dev/controlplane/build.sh >/dev/null

helm:
	bash dev/helm/build.sh >/dev/null

node: controlplane
	bash dev/node/build.sh >/dev/null

certmanager:
	bash dev/certmanager/build.sh >/dev/null

## clients: the Go and Node Schema Registry client programs the suite drives against the read API
clients:
	bash dev/clients/build.sh all

apicurio:
	bash dev/apicurio/setup.sh

## argocd: Argo CD's application controller and repo server for the GitOps tests
argocd:
	bash dev/argocd/build.sh >/dev/null

## image: the project's image built by a dockerd of its own (base from debootstrap), loaded into a running node
image: $(STAMP) system-deps
	$(BIN)/python -m kschema.devcluster.image

## lint: ruff, mypy --strict, import-linter layering contracts, hadolint
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

## test: everything CI runs: lint, then the whole pytest suite against the real control plane and PostgreSQL
test: setup lint
	$(BIN)/pytest tests --ignore=tests/node; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

## bench: speed numbers, each next to a baseline measured in the same run
bench: setup
	$(BIN)/python -m bench

## demo: control plane up, kschema running, examples applied, lookups shown
demo: $(STAMP) system-deps controlplane
	$(BIN)/python dev/demo.py

## demo-node: the same on a one-node cluster (root): the image built and loaded, the chart installed, a lookup
## from a pod. Not yet part of the tested path (see test-node).
demo-node: $(STAMP) system-deps controlplane node certmanager helm
	$(BIN)/python dev/demo_node.py

## test-node: the chart on a real local node (kubelet, containerd, CoreDNS; root; changes host networking and
## restores it). Not yet part of `make test`: the chart tests on the node have not passed end to end yet.
test-node: $(STAMP) system-deps controlplane node certmanager helm
	$(BIN)/pytest tests/node

demo-down: $(STAMP)
	$(BIN)/python dev/demo_node.py down
	$(BIN)/python dev/demo.py down

cluster-up: setup
	$(BIN)/kschema dev up

cluster-down: $(STAMP)
	$(BIN)/kschema dev down

## node-up: a one-node cluster that runs pods (root): containerd, kubelet, kube-proxy, scheduler, CoreDNS
node-up: setup
	$(BIN)/kschema dev up --node

node-down: $(STAMP)
	$(BIN)/kschema dev down

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
