# The project's commands (see ../shared/CONTRACT.md): up, down, clean, test, bench.
# Each creates the virtualenv first if needed; PostgreSQL and RabbitMQ are
# provided by deploy/local/infra.py (private instances, or Docker where an
# engine answers).

SHELL  := /bin/bash
PY     := .venv/bin/python
RUN    := .run
# Inside the venv, so that a deleted venv also forgets it was installed.
STAMP  := .venv/.nimbus-installed

.PHONY: up up-real down clean test faults bench bench-quick venv peer-rally peer-gophercloud images images-clean cluster-up cluster-down cluster-clean load smoke cluster-test kube-play kube-down kube-clean kube-test

venv: $(STAMP)

# Re-runs when pyproject.toml is newer than the stamp (new dependencies).
$(STAMP): pyproject.toml
	@if [ ! -x $(PY) ]; then \
	  python3 -c 'import ensurepip, venv' 2>/dev/null || python3 -m deploy.local.infra ensure-venv; \
	  rm -rf .venv && python3 -m venv .venv; \
	fi
	python3 -m deploy.local.hypervisor ensure
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

up: venv
	python3 -m deploy.local.infra up --root $(RUN)
	$(PY) -m deploy.local.supervisor up --run $(RUN)

# The same cloud, its servers real QEMU virtual machines (libvirt driver, TCG).
up-real:
	NIMBUS_COMPUTE_DRIVER=libvirt $(MAKE) up

down:
	@if [ -x $(PY) ]; then $(PY) -m deploy.local.supervisor down --run $(RUN); \
	 else python3 -m deploy.local.supervisor down --run $(RUN); fi

clean: down
	python3 -m deploy.local.infra clean --root $(RUN)

test: venv
	python3 -m deploy.local.infra ensure
	$(PY) -m pytest -q

# The fault suite at the issue's scale (make test runs it short): 10 s outages of
# PostgreSQL and RabbitMQ, killed agents, scheduler and network service, under load.
faults: venv
	python3 -m deploy.local.infra ensure
	NIMBUS_FAULTS_SCALE=full $(PY) -m pytest -q -p no:warnings tests/faults

# The bench's chart needs matplotlib (pyproject's bench extra), installed only here.
BENCH_STAMP := .venv/.nimbus-bench-installed
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[test,bench]'
	@touch $(BENCH_STAMP)

# Nimbus beside this machine's ceilings (benchmarks/test_bench.py): the table is
# printed and written with its JSON and chart under build/bench/<UTC time>/
# (build/bench/latest). BENCH_SERVERS=N sets the big population (default 100000,
# the longest part of the run); bench-quick is the subset of a couple of minutes.
bench: $(BENCH_STAMP)
	python3 -m deploy.local.infra ensure
	$(PY) -m pytest -q -s -p no:warnings benchmarks

bench-quick: $(BENCH_STAMP)
	python3 -m deploy.local.infra ensure
	BENCH_SCALE=quick $(PY) -m pytest -q -s -p no:warnings benchmarks/test_bench.py

# Peer suites: public test suites run against a running stack (`make up`, or any
# cloud the OS_* variables name). Not part of `make test`: they download their
# tools and take minutes. See deploy/peers/.
peer-rally:
	deploy/peers/rally/run.sh

# Start the stack for it with Nova's status codes and slower fake reboots:
#   NIMBUS_API_STATUS_CODES=nova NIMBUS_FAKE_REBOOT_DELAY_S=2.5 NIMBUS_FAKE_SPAWN_DELAY_S=2.5 make up
peer-gophercloud:
	deploy/peers/gophercloud/run.sh

# Container images (podman, or CONTAINER_ENGINE=docker), built from Debian's
# packages without a registry: see deploy/images/build.sh.
images:
	deploy/images/build.sh build

images-clean:
	deploy/images/build.sh clean

# The whole cloud in containers from those images (deploy/compose/compose.yaml,
# podman-compose or CONTAINER_ENGINE=docker). cluster-down keeps the data
# volumes; cluster-clean removes them too.
cluster-up:
	deploy/compose/cluster.sh up

cluster-down:
	deploy/compose/cluster.sh down

cluster-clean:
	deploy/compose/cluster.sh clean

# The smoke subset (tests/smoke: identity, a boot in each zone, actions, lists,
# delete) against a running cloud, as a user: NIMBUS_SMOKE_AUTH_URL, else
# OS_AUTH_URL, else make up's and the compose cluster's identity endpoint.
# (make test runs the same suite against a cloud it starts itself.)
SMOKE_AUTH_URL := $(or $(NIMBUS_SMOKE_AUTH_URL),$(OS_AUTH_URL),http://127.0.0.1:5000/v3)
smoke: venv
	NIMBUS_SMOKE_AUTH_URL=$(SMOKE_AUTH_URL) $(PY) -m pytest -q -p no:cacheprovider tests/smoke

# The compose cluster end to end: images, up, the smoke subset against it, down
# (even when the smoke fails), and cluster-down's own check that no container of
# it is left. Needs the contract ports free (no make up running).
cluster-test:
	$(MAKE) images
	$(MAKE) cluster-up
	@status=0; \
	 $(MAKE) smoke NIMBUS_SMOKE_AUTH_URL=http://127.0.0.1:5000/v3 || status=$$?; \
	 $(MAKE) cluster-down || status=$$?; \
	 exit $$status

# A load test through the gateway (locust, in its own venv .venv-load made on
# demand) against a running cloud: `make up`'s, a cluster's, or any that the OS_*
# variables name. Headless, about a minute with the defaults; LOAD_UI=1 for
# locust's web UI. Report and chart under build/load/. See deploy/load/run.sh.
load:
	deploy/load/run.sh

# The Kubernetes manifests (deploy/kubernetes) run with `podman kube play`, from
# their podman overlay (KUBE_OVERLAY=podman-dev: the same on host ports +10000).
# kube-down keeps the volumes; kube-clean removes them too.
kube-play: venv
	$(PY) -m deploy.kubernetes.kube_play up

kube-down: venv
	$(PY) -m deploy.kubernetes.kube_play down

kube-clean: venv
	$(PY) -m deploy.kubernetes.kube_play clean

# The Kubernetes manifests end to end with podman: images, kube-play, the smoke
# subset (tests/smoke, `make smoke`) against it, kube-down even when the smoke
# fails (it fails itself when a pod is left). Needs the overlay's host ports free.
KUBE_AUTH_URL := $(if $(filter podman-dev,$(KUBE_OVERLAY)),http://127.0.0.1:15000/v3,http://127.0.0.1:5000/v3)
kube-test:
	$(MAKE) images
	$(MAKE) kube-play
	@status=0; \
	 $(MAKE) smoke NIMBUS_SMOKE_AUTH_URL=$(KUBE_AUTH_URL) || status=$$?; \
	 $(MAKE) kube-down || status=$$?; \
	 exit $$status
