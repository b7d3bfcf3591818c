// Package uitest checks what operators see of Rapport in the real Temporal
// Web UI: it runs sample enrollments against a Temporal dev server (with
// its UI) and PostgreSQL, opens the filtered workflow list and a run in
// headless Chromium, checks the text the pages show, and saves the
// screenshots in docs/. The test is behind the uitest build tag, so
// `go test ./...` never starts a browser; run it with `make test-ui`.
//
// Needs: the temporal CLI (PATH or $(go env GOPATH)/bin), chromium
// (apt-get install -y chromium, or $CHROMIUM) and PostgreSQL
// (DATABASE_URL). UITEST_DUMP=<dir> also writes each page's DOM there.
package uitest
