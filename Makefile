GO ?= go
PKGS := ./...

.PHONY: all build test test-short bench demo fuzz vet

all: build

build:
	$(GO) build -o bin/rapport ./cmd/rapport

vet:
	$(GO) vet $(PKGS)

# The whole suite: unit, workflow (SDK test environment), PostgreSQL and
# end-to-end tests against a real Temporal dev server.
test: vet
	$(GO) test -count=1 -timeout 40m $(PKGS)

test-short:
	$(GO) test -short $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./rules ./engine

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzCompile -fuzztime 60s ./engine

demo: build
	./bin/rapport dev
