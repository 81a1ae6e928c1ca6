# dask-slurm-lab: a SLURM cluster in Docker Compose, and the Dask lesson on it.
# `make` lists the targets. Variables can be set on the command line or in .env.

NODES ?= 4
READY_TIMEOUT ?= 180
# The pinned base image, named once: in containers/lab.Dockerfile.
BASE_IMAGE := $(shell awk '/^FROM/ {print $$2; exit}' containers/lab.Dockerfile)
PYTHON ?= python3
VENV ?= .venv

COMPOSE := docker compose
# A terminal for interactive commands (Ctrl-C reaches the run and cancels its
# jobs); none when make runs without one (CI, scripts).
TTY := $(shell test -t 0 || echo -T)
# Pass a lab flag only when its variable was given, so an empty value is an error.
given = $(if $(filter-out undefined,$(origin $(1))),$(2) '$($(1))')
RUN_FLAGS = $(call given,WORKERS,--workers) $(call given,SIZE,--size) $(call given,PARTS,--parts) \
            $(call given,BACKEND,--backend) $(call given,WORKER_TIMEOUT,--worker-timeout)

.DEFAULT_GOAL := help
.PHONY: help up check-nodes run study lesson shell down clean status logs build images wheelhouse base-image def sif bench \
        test test-unit test-cluster venv lock docker-engine

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

up: check-nodes build ## start the cluster (NODES=4) and return when a test job has run
	@mkdir -p $${LAB_WORKDIR:-work} $${LAB_RESULTS:-results}
	@$(COMPOSE) up -d --wait --remove-orphans --scale compute=$(NODES) \
	    || { $(COMPOSE) ps -a; $(COMPOSE) logs --tail=40; echo "error: the cluster did not start; logs above" >&2; exit 1; }
	@$(COMPOSE) exec -T login cluster-ready $(NODES) $(READY_TIMEOUT) \
	    || { $(COMPOSE) logs --tail=40 slurmctld compute; exit 1; }

# Bad NODES is a one-line error before anything starts (MaxNodeCount is 64).
check-nodes:
	@case '$(NODES)' in ''|*[!0-9]*) echo "make up: error: NODES must be a whole number from 1 to 64 (got '$(NODES)')" >&2; exit 2;; esac; \
	 if [ '$(NODES)' -lt 1 ] || [ '$(NODES)' -gt 64 ]; then \
	    echo "make up: error: NODES must be a whole number from 1 to 64 (got '$(NODES)')" >&2; exit 2; fi

run: ## run the lesson's study on WORKERS Slurm worker jobs (SIZE, PARTS, BACKEND too)
	@$(COMPOSE) exec -T login true 2>/dev/null || $(MAKE) --no-print-directory up
	@$(COMPOSE) exec $(TTY) -u learner login lab run $(RUN_FLAGS)

# A sweep takes a list: make study WORKERS="1 2 4 8" SCHEDULERS="threads slurm".
SWEEP_FLAGS = $(if $(filter-out undefined,$(origin WORKERS)),--workers $(WORKERS)) \
              $(call given,SIZE,--size) $(call given,PARTS,--parts) \
              $(if $(SCHEDULERS),--schedulers $(SCHEDULERS)) $(if $(KERNELS),--kernels $(KERNELS))

study: ## sweep schedulers x kernels x WORKERS="1 2 4 8"; results/<run-id>/ with table and plot
	@$(COMPOSE) exec -T login true 2>/dev/null || $(MAKE) --no-print-directory up
	@$(COMPOSE) exec $(TTY) -u learner login lab study $(SWEEP_FLAGS)

lesson: ## the lesson's output blocks from this cluster, as Markdown in results/lesson-<id>/
	@$(COMPOSE) exec -T login true 2>/dev/null || $(MAKE) --no-print-directory up
	@$(COMPOSE) exec $(TTY) -u learner login lab prep $(call given,SIZE,--size) \
	    $(if $(filter-out undefined,$(origin WORKERS)),--workers $(WORKERS))

shell: ## a login shell on the cluster, as the unprivileged user
	@$(COMPOSE) exec -u learner login bash -l

status: ## the cluster's containers and Slurm nodes
	@$(COMPOSE) ps -a
	@$(COMPOSE) exec -T login sinfo -N -l 2>/dev/null || true

logs: ## the last lines of every service's log
	@$(COMPOSE) logs --tail=60

down: ## stop the cluster; home, results and accounting stay on volumes
	@$(COMPOSE) down --remove-orphans

clean: ## stop the cluster and delete its volumes (asks, or FORCE=1)
	@if [ "$(FORCE)" != 1 ]; then \
	    printf 'Delete the cluster volumes (home, accounting, munge key)? [y/N] '; \
	    read answer && [ "$$answer" = y ] || { echo "nothing deleted"; exit 1; }; fi
	@$(COMPOSE) down --remove-orphans --volumes

build: images ## build the images (from the pinned base image and the wheelhouse)

images: base-image wheelhouse
	@$(COMPOSE) build -q lab 2>&1 | grep -v 'configured to build using Bake' || true
	@$(COMPOSE) build -q 2>&1 | grep -v 'configured to build using Bake' || true
	@docker image inspect dask-slurm-lab/lab:0.1.0 dask-slurm-lab/slurm:0.1.0 dask-slurm-lab/db:0.1.0 >/dev/null

base-image:
	@containers/base-image.sh $(BASE_IMAGE)

wheelhouse:
	@containers/wheelhouse.sh requirements.lock wheelhouse

venv: $(VENV)/.done
$(VENV)/.done: requirements-dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --require-hashes -r requirements-dev.lock
	$(VENV)/bin/pip install -q --no-deps --no-build-isolation -e .
	@touch $@

test: venv ## all tests: unit tests, then the cluster tests (brings the cluster up)
	$(VENV)/bin/pytest

test-unit: venv ## unit tests only (seconds, no Docker)
	$(VENV)/bin/pytest -m 'not cluster'

test-cluster: venv ## cluster tests only
	$(VENV)/bin/pytest -m cluster

def: venv ## regenerate containers/lab.def (Apptainer) from containers/lab.Dockerfile
	$(VENV)/bin/python containers/make_def.py

sif: images ## build lab.sif with apptainer, from the built lab image
	@command -v apptainer >/dev/null || { echo "error: apptainer is not installed here; install it \
	(https://apptainer.org/docs/admin/main/installation.html), or on a machine that has it run \
	'make wheelhouse && apptainer build lab.sif containers/lab.def'" >&2; exit 1; }
	@mkdir -p build
	docker save dask-slurm-lab/lab:0.1.0 -o build/lab-image.tar
	apptainer build --force lab.sif docker-archive:build/lab-image.tar
	@rm -f build/lab-image.tar

bench: venv ## measure the lab's speed and cost (COLD=1 also times cold starts); bench/results.*
	$(VENV)/bin/python bench/bench.py $(if $(filter 1,$(COLD)),--cold) $(if $(REPEAT),--repeat $(REPEAT))

lock: venv ## re-resolve the pinned Python packages (requirements*.lock)
	$(VENV)/bin/pip install -q uv==0.9.30
	$(VENV)/bin/uv pip compile pyproject.toml containers/build-requirements.in --universal \
	    --python-version 3.11 --generate-hashes -o requirements.lock
	$(VENV)/bin/uv pip compile pyproject.toml containers/build-requirements.in --extra test --universal \
	    --python-version 3.11 --generate-hashes -o requirements-dev.lock
	sed -i "s/lock-sha256=\"[0-9a-f]*\"/lock-sha256=\"$$(sha256sum requirements.lock | cut -c1-64)\"/" \
	    containers/lab.Dockerfile
	$(VENV)/bin/python containers/make_def.py

docker-engine: ## Debian/Ubuntu host without Docker: install and start an engine + Compose v2
	@containers/install-docker.sh
