# dask-slurm-lab: a SLURM cluster in Docker Compose, and the Dask lesson on it.
# `make` lists the targets. Variables go on the command line (make run
# WORKERS=4); the cluster's own settings (NODE_CPUS, NODE_MEMORY, folders,
# ports) in .env, which docker compose reads (see .env.example).

# The variables a user may set. Their values are data, never make or shell
# text: each given one is taken as written (no $(...) expansion), exported,
# checked by bin/preflight before a recipe does anything, and used in recipes
# only as "$$NAME".
USER_VARS := WORKERS SIZE PARTS BACKEND WORKER_TIMEOUT SCHEDULERS KERNELS NODES READY_TIMEOUT \
             REPEAT COLD FORCE STUDY APPTAINER SITE LESSON
GIVEN := $(foreach v,$(USER_VARS),$(if $(filter-out undefined,$(origin $(v))),$(v)))
$(foreach v,$(GIVEN),$(eval override $(v) := $$(value $(v)))$(eval export $(v)))
export NODES ?= 4
export READY_TIMEOUT ?= 180

PYTHON ?= python3
VENV ?= .venv
# The lab's version, named once: the tag of its images (compose.yaml reads it).
export LAB_VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' lab/__init__.py)
# make up APPTAINER=1: login and compute nodes with a real Apptainer, to run
# lab.sif as on a site (slurm-dev/apptainer.yaml over compose.yaml).
# make up SITE=strict: that site as strict as real ones (accounts, a submit
# filter, a reservation, learners in LDAP, two networks: slurm-dev/strict.yaml).
# Every site's compose files (the strict site's are all of them): make clean
# deletes the volumes of each, whichever runs now.
EVERY_SITE := compose.yaml:slurm-dev/apptainer.yaml:slurm-dev/strict.yaml
ifeq ($(SITE),strict)
export COMPOSE_FILE := $(EVERY_SITE)
NODE_IMAGES := slurm-apptainer node-apptainer ldap
else ifeq ($(APPTAINER),1)
export COMPOSE_FILE := compose.yaml:slurm-dev/apptainer.yaml
NODE_IMAGES := slurm-apptainer node-apptainer
endif
IMAGES := $(foreach name,lab worker slurm $(or $(NODE_IMAGES),node) db,dask-slurm-lab/$(name):$(LAB_VERSION))

COMPOSE := docker compose
# A terminal for interactive commands (Ctrl-C reaches the run and cancels its
# jobs); none when make runs without one (CI, scripts).
TTY := $(shell test -t 0 || echo -T)
# `lab` flags for the given variables only, so an empty value is an error.
flag = $(if $(filter $(1),$(GIVEN)),$(2) "$$$(1)")
RUN_FLAGS = $(call flag,WORKERS,--workers) $(call flag,SIZE,--size) $(call flag,PARTS,--parts) \
            $(call flag,BACKEND,--backend) $(call flag,WORKER_TIMEOUT,--worker-timeout)
# A sweep takes lists: make study WORKERS="1 2 4 8" SCHEDULERS="threads slurm"
# (bin/preflight allows only digits, lower-case letters and spaces in them).
list = $(if $(filter $(1),$(GIVEN)),$(2) $$$(1))
SWEEP_FLAGS = $(call list,WORKERS,--workers) $(call flag,SIZE,--size) $(call flag,PARTS,--parts) \
              $(call list,SCHEDULERS,--schedulers) $(call list,KERNELS,--kernels) $(call flag,REPEAT,--repeat)
# Bring the cluster up when it is down.
ENSURE_UP = $(COMPOSE) exec -T login true 2>/dev/null || $(MAKE) --no-print-directory up

.DEFAULT_GOAL := help
.PHONY: help up run study lesson shell down clean status logs build images base-image wheelhouse def sif bench \
        test test-unit test-cluster venv lock docker-engine figures

# A value make decides, for the tests and tools to read (not by parsing this file): make print-NODES
print-%:
	@echo '$($*)'

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

up: ## start the cluster (NODES=4) and return when a test job has run
	@plan=$$(bin/preflight up) && ids=$$(bin/learner-ids) || exit $$?; echo "$$plan" >&2; \
	 export LAB_UID=$${ids% *} LAB_GID=$${ids#* }; \
	 $(MAKE) --no-print-directory images || exit $$?; \
	 bin/switch-site && bin/drop-nodes-above "$$NODES" || exit $$?; \
	 $(COMPOSE) up -d --remove-orphans --scale compute="$$NODES" \
	    || { $(COMPOSE) ps -a; $(COMPOSE) logs --tail=40; echo "error: the cluster did not start; logs above" >&2; exit 1; }
	@bin/wait-ready "$$NODES" "$$READY_TIMEOUT"

run: ## run the lesson's study on WORKERS Slurm worker jobs (SIZE, PARTS, BACKEND too)
	@bin/preflight run
	@$(ENSURE_UP)
	@$(COMPOSE) exec $(TTY) -u learner login lab run $(RUN_FLAGS)

study: ## sweep schedulers x kernels x WORKERS="1 2 4 8" (REPEAT=3 each); results/<run-id>/ with table and plot
	@bin/preflight study
	@$(ENSURE_UP)
	@$(COMPOSE) exec $(TTY) -u learner login lab study $(SWEEP_FLAGS)

lesson: ## the distributed page's output blocks from this cluster (results/lesson-<id>/); LESSON=work/<lesson>: a dry run of a whole lesson
	@bin/preflight lesson
	@$(ENSURE_UP)
	@if [ -n "$${LESSON:-}" ]; then $(COMPOSE) exec $(TTY) -u learner login lab lesson "$$LESSON"; \
	 else $(COMPOSE) exec $(TTY) -u learner login lab prep $(call flag,SIZE,--size) $(call list,WORKERS,--workers); fi

shell: ## a login shell on the cluster, as the unprivileged user
	@bin/preflight shell
	@$(COMPOSE) exec -u learner login bash -l

status: ## the cluster's containers and Slurm nodes
	@bin/preflight status
	@$(COMPOSE) ps -a
	@$(COMPOSE) exec -T login sinfo -N -l 2>/dev/null || true

logs: ## the last lines of every service's log
	@bin/preflight logs
	@$(COMPOSE) logs --tail=60

down: ## cancel the cluster's jobs, then stop it (as whichever site it runs); home, results and accounting stay on volumes
	@bin/preflight down
	@$(COMPOSE) exec -T login cancel-jobs "make down" 2>/dev/null || true
	@files=$$(bin/running-files); COMPOSE_FILE=$${files:-$${COMPOSE_FILE:-compose.yaml}} $(COMPOSE) down --remove-orphans

clean: ## stop the cluster and delete its volumes, every site's (asks, or FORCE=1)
	@bin/preflight clean
	@if [ "$${FORCE:-}" != 1 ]; then \
	    printf 'Delete the cluster volumes (home, accounting, munge key, the strict site'"'"'s /project and /scratch)? [y/N] '; \
	    read answer && [ "$$answer" = y ] || { echo "nothing deleted"; exit 1; }; fi
	@$(COMPOSE) exec -T login cancel-jobs "make clean" 2>/dev/null || true
	@files=$$(bin/running-files); COMPOSE_FILE=$${files:-$${COMPOSE_FILE:-compose.yaml}} \
	    $(COMPOSE) down --remove-orphans --volumes
	@COMPOSE_FILE=$(EVERY_SITE) $(COMPOSE) --progress quiet down --volumes

build: images ## build the images (from the pinned base image and the wheelhouse)

# A failed build fails make, with the build's own error. Nothing is built when
# the images are those of the last good build of these very sources
# (build/images.stamp, from containers/images-stamp): even a cached build of
# three images costs every `make up` seconds.
images: base-image wheelhouse
	@stamp=$$(containers/images-stamp $(IMAGES)) && [ -n "$$stamp" ] \
	    && [ "$$stamp" = "$$(cat build/images.stamp 2>/dev/null)" ] || { \
	    rm -f build/images.stamp; \
	    $(COMPOSE) build -q lab worker && $(COMPOSE) build -q && docker image inspect $(IMAGES) >/dev/null \
	    && mkdir -p build && containers/images-stamp $(IMAGES) >build/images.stamp; }

# The pinned base image (named once, in containers/lab.Dockerfile): pulled,
# or made with debootstrap where no registry answers.
base-image:
	@bin/preflight images
	@containers/base-image.sh "$$(awk '/^FROM/ {print $$2; exit}' containers/lab.Dockerfile)"

# The images' wheels, and the lesson's (the cluster's pip serves them).
wheelhouse:
	@containers/wheelhouse.sh requirements.lock wheelhouse
	@containers/wheelhouse.sh requirements-lesson.lock wheelhouse-lesson

venv: $(VENV)/.done
$(VENV)/.done: requirements-dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --require-hashes -r requirements-dev.lock
	$(VENV)/bin/pip install -q --no-deps --no-build-isolation -e .
	@touch $@

test: venv ## all tests: unit tests, then the cluster tests (brings the cluster up)
	@bin/preflight test
	$(VENV)/bin/pytest

test-unit: venv ## unit tests only (seconds, no Docker, no network)
	$(VENV)/bin/pytest -m 'not cluster and not docker and not network'

test-cluster: venv ## cluster tests only
	@bin/preflight test-cluster
	$(VENV)/bin/pytest -m cluster

def: venv ## regenerate containers/lab.def (Apptainer) from containers/lab.Dockerfile
	$(VENV)/bin/python containers/make_def.py

sif: ## build lab.sif for a real cluster (apptainer where installed; else in a container)
	@bin/preflight sif
	@$(MAKE) --no-print-directory images
	@containers/make-sif.sh lab.sif

bench: venv ## measure the lab on a cluster of its own (COLD=1: no build cache; REPEAT=n); bench/results.*, bench/apptainer.*, bench/classroom.*
	@bin/preflight bench
	$(VENV)/bin/python -m bench.bench $$([ "$${COLD:-0}" = 1 ] && echo --cold) $(call flag,REPEAT,--repeat)
	$(VENV)/bin/python -m bench.apptainer
	$(VENV)/bin/python -m bench.classroom

# requirements.lock is for the images' Python (its pin in lab.Dockerfile),
# requirements-dev.lock for this host's venv (Python 3.11 and newer).
lock: venv ## re-resolve the pinned Python packages (requirements*.lock, the lesson's too)
	$(VENV)/bin/pip install -q uv==0.9.30
	$(VENV)/bin/uv pip compile pyproject.toml containers/build-requirements.in --universal \
	    --python-version "$$(containers/image-python)" --generate-hashes -o requirements.lock
	$(VENV)/bin/uv pip compile pyproject.toml containers/build-requirements.in --extra test --universal \
	    --python-version 3.11 --generate-hashes -o requirements-dev.lock
	$(VENV)/bin/uv pip compile containers/lesson-requirements.in -c requirements.lock --universal \
	    --python-version "$$(containers/image-python)" --generate-hashes -o requirements-lesson.lock
	sed -i "s/lock-sha256=\"[0-9a-f]*\"/lock-sha256=\"$$(sha256sum requirements.lock | cut -c1-64)\"/" \
	    containers/lab.Dockerfile
	$(VENV)/bin/python containers/make_def.py

docker-engine: ## Debian/Ubuntu host without Docker: install and start an engine + Compose v2
	@containers/install-docker.sh

figures: ## write docs/figures.md's measured tables from the last test and bench runs' files (STUDY=results/<id>: its study)
	@bin/preflight figures
	$(PYTHON) -m tools.figures $${STUDY:+--study "$$STUDY"}
