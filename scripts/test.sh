#!/usr/bin/env bash
# Runs the whole test suite: vet, the service packages under the race
# detector, the engine packages without it (their numeric tests are heavy),
# against SQLite and PostgreSQL, with the PyTorch and JavaScript references
# required rather than skipped; then `gantry demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-test-deps.sh

export GANTRY_TEST_POSTGRES="${GANTRY_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
export GANTRY_REQUIRE_REFERENCES=1

test -z "$(gofmt -l cmd internal)" || { gofmt -l cmd internal; echo "gofmt: files above need formatting"; exit 1; }
go vet ./...

service='/internal/(api|auth|store|objectstore|jobs|core|server|client)(/|$)'
race_pkgs=$(go list ./... | grep -E "$service" || true)
other_pkgs=$(go list ./... | grep -vE "$service")
status=0
if [ -n "$race_pkgs" ]; then
	go test -race -count=1 -timeout 20m $race_pkgs || status=1
fi
go test -count=1 -timeout 25m $other_pkgs || status=1

# The README's first command, end to end, offline, from this checkout.
echo "--- gantry demo"
go run ./cmd/gantry demo || status=1
exit $status
