# kschema: every developer and CI entry point. `make demo` and `make test` install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The builds of `setup` are independent after system-deps (Go compiles, Maven and npm downloads, debootstrap and
# the image builds), so they overlap: a cold setup spends much of its time waiting on the network.
MAKEFLAGS += --jobs=4

.PHONY: setup setup-fast setup-node node-images system-deps controlplane helm clients apicurio argocd node certmanager image demo demo-fast demo-down test test-node lint unit bench cluster-up cluster-down node-up node-down clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

## setup: Python environment, Debian packages (PostgreSQL, redis, containerd, docker.io, ...), the cached
## control-plane, node, cert-manager, helm and Argo CD binaries, the client programs, and Apicurio Registry
## (the third-party source registry of the import tests)
setup: setup-fast setup-node

## setup-fast: what the suite without the node needs; setup-node: what only the node tests need (the node's
## binaries, cert-manager, the images)
setup-fast: $(STAMP) system-deps controlplane helm clients apicurio argocd
setup-node: $(STAMP) system-deps node certmanager node-images

# Every build needs the Debian packages first (Go, Maven, npm); with that order stated, `make -j` is safe.
system-deps:
	bash dev/system-deps.sh

controlplane: system-deps
	bash dev/controlplane/build.sh >/dev/null

helm: system-deps
	bash dev/helm/build.sh >/dev/null

node: controlplane
	bash dev/node/build.sh >/dev/null

certmanager: system-deps
	bash dev/certmanager/build.sh >/dev/null

## clients: the Go and Node Schema Registry client programs the suite drives against the read API
clients: system-deps
	bash dev/clients/build.sh all

apicurio: system-deps
	bash dev/apicurio/setup.sh

## argocd: Argo CD's application controller and repo server for the GitOps tests
argocd: system-deps
	bash dev/argocd/build.sh >/dev/null

## node-images: the images the node tests run (kschema, the test client, PostgreSQL), built ahead so that a
## cold setup builds them while the Go builds run; the node tests rebuild them from the warm layer cache
node-images: $(STAMP) system-deps
	$(BIN)/python -m tests.node.images

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

## test: everything CI runs: lint, the pytest suite against the real control plane and PostgreSQL, then the
## chart on a real one-node cluster (tests/node: the image built, cert-manager, both topologies). What only
## the node tests need is built meanwhile, at a lower CPU priority (on a fresh machine that overlaps most
## of the set-up with the first run). Both runs always happen; either failing (or collecting nothing,
## pytest's exit code 5) fails the target.
test: setup-fast lint
	@nice -n 10 $(MAKE) --no-print-directory setup-node > $(VENV)/setup-node.log 2>&1 & builds=$$!; \
	$(BIN)/pytest tests --ignore=tests/node; fast=$$?; \
	wait $$builds; built=$$?; \
	echo "make test: setup-node (built during the first run) exit $$built; its output:"; \
	cat $(VENV)/setup-node.log; \
	node=1; [ $$built -eq 0 ] && { $(BIN)/pytest tests/node; node=$$?; }; \
	echo "make test: pytest tests --ignore=tests/node exit $$fast; pytest tests/node exit $$node"; \
	if [ $$fast -eq 5 ] || [ $$node -eq 5 ]; then echo "make test: a pytest run collected no tests" >&2; fi; \
	[ $$fast -eq 0 ] && [ $$node -eq 0 ]

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

## bench: speed numbers, each next to a baseline measured in the same run
bench: setup
	$(BIN)/python -m bench

## demo: the real path on a one-node cluster (root): the image built and loaded, cert-manager, the chart
## installed with the quickstart's values, the examples applied, a lookup from a pod. KEEP=1 leaves it running.
demo: $(STAMP) system-deps controlplane node certmanager helm
	$(BIN)/python dev/demo_node.py

## demo-fast: the same story with kschema as a local process beside a control plane (no node, no image)
demo-fast: $(STAMP) system-deps controlplane
	$(BIN)/python dev/demo.py

## test-node: only the chart on a real local node (kubelet, containerd, CoreDNS; root; changes host networking
## and restores it), the second half of `make test`
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
