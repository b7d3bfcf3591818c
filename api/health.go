package api

import (
	"context"
	"net/http"
	"sort"
	"time"
)

// healthTimeout bounds each dependency check of /healthz.
const healthTimeout = 3 * time.Second

// health is the /healthz answer: {"status":"ok","checks":{"db":"ok",…}}.
type health struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// handleHealth runs every check concurrently and answers 200 when all
// pass, 503 otherwise. Failures are logged in full but reported only as
// "unavailable": the endpoint is unauthenticated and must not leak
// addresses or error text.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	names := make([]string, 0, len(s.opts.Checks))
	for name := range s.opts.Checks {
		names = append(names, name)
	}
	sort.Strings(names)
	errs := make([]error, len(names))
	done := make(chan struct{})
	for i, name := range names {
		go func() {
			errs[i] = s.opts.Checks[name](ctx)
			done <- struct{}{}
		}()
	}
	for range names {
		<-done
	}
	h := health{Status: "ok", Checks: make(map[string]string, len(names))}
	for i, name := range names {
		h.Checks[name] = "ok"
		if errs[i] != nil {
			s.opts.Logger.Warn("health check failed", "check", name, "err", errs[i])
			h.Checks[name], h.Status = "unavailable", "unavailable"
		}
	}
	status := http.StatusOK
	if h.Status != "ok" {
		status = http.StatusServiceUnavailable
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, h)
}
