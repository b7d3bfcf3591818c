GO ?= go
PKGS := ./...

.PHONY: all build test test-short bench demo fuzz vet

all: build

build:
	$(GO) build -o bin/rapport ./cmd/rapport

vet:
	$(GO) vet $(PKGS)

# The whole suite: unit, workflow (SDK test environment), PostgreSQL and
# end-to-end tests against a real Temporal dev server, then the sample
# playbooks' own tests (playbooks/tests, `rapport test`; go test runs them
# too, in cmd/rapport's TestSamplePlaybookTests, this shows each file).
test: vet
	$(GO) test -count=1 -timeout 40m $(PKGS)
	$(GO) run ./cmd/rapport test playbooks

# Only the playbook tests: what a pull request changing a playbook runs.
.PHONY: test-playbooks
test-playbooks:
	$(GO) run ./cmd/rapport test playbooks

test-short:
	$(GO) test -short $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./rules ./engine

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzCompile -fuzztime 60s ./engine

demo: build
	./bin/rapport dev

.PHONY: test-faults soak

# Fault injection (faults/): worker SIGKILLs, Temporal and PostgreSQL
# restarts with 1,000 customers. Restarts the machine's PostgreSQL cluster:
# do not run next to other database tests.
test-faults:
	RAPPORT_FAULTS=full $(GO) test -count=1 -timeout 60m -v -run 'Crash|Channel|Outage' ./faults

# Ten minutes of event load through the API on loopback (soak/).
soak:
	$(GO) run ./soak -duration 10m

# What operators see in the Temporal Web UI, checked in headless Chromium
# against a real dev server and PostgreSQL; refreshes the screenshots in
# docs/. Needs the temporal CLI, chromium and PostgreSQL. Not part of
# `go test ./...` (build tag uitest) nor of CI.
.PHONY: test-ui
test-ui:
	$(GO) test -tags uitest -count=1 -timeout 10m -v ./uitest/

.PHONY: fuzz-input

# The bad-input fuzzers beside FuzzCompile: template rendering and the
# event API's JSON bodies (found inputs go to GOCACHE; copy new ones to
# testdata/fuzz to keep them).
fuzz-input:
	$(GO) test -run '^$$' -fuzz FuzzRenderMessage -fuzztime 60s ./engine
	$(GO) test -run '^$$' -fuzz FuzzAPIBodies -fuzztime 60s ./api

.PHONY: peers

# The npm peers the tests check Rapport against (peers/: ajv for the JSON
# Schema), installed from the lockfile; CI runs the same in .ci/run.
peers:
	npm ci --prefix peers --no-audit --no-fund
