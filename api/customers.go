package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/rapport-crm/rapport/erasure"
	"github.com/rapport-crm/rapport/store"
)

// Forgetter erases a customer (the right to be forgotten);
// *erasure.Eraser implements it.
type Forgetter interface {
	Forget(ctx context.Context, customerID, requestedBy string) (erasure.Result, error)
}

// CustomerExporter reads everything held about a customer (an access
// request); store.Store implements it, answering an unknown customer
// with an error wrapping store.ErrNotFound.
type CustomerExporter interface {
	CustomerExport(ctx context.Context, id string) (store.CustomerExport, error)
}

// handleCustomerExport answers GET /v1/customers/{id} (customers:read)
// with store.CustomerExport as JSON, the same record `rapport customer ID
// --json` prints.
func (s *Server) handleCustomerExport(w http.ResponseWriter, r *http.Request) {
	if s.opts.Customers == nil {
		http.NotFound(w, r)
		return
	}
	x, err := s.opts.Customers.CustomerExport(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "no customer with this id")
	case err != nil:
		s.opts.Logger.Error("customer export failed", "err", err)
		s.writeUnavailable(w, "the customer could not be read; retry")
	default:
		writeJSON(w, http.StatusOK, x)
	}
}

// handleForget answers POST /v1/customers/{id}/forget (admin): it erases
// the customer (erasure.Eraser.Forget) and answers what was done. The
// audit row names the API key that asked. Asking again is safe: found is
// then false and nothing more is deleted.
func (s *Server) handleForget(w http.ResponseWriter, r *http.Request) {
	if s.opts.Forgetter == nil {
		http.NotFound(w, r)
		return
	}
	k, _ := KeyFrom(r.Context())
	res, err := s.opts.Forgetter.Forget(r.Context(), r.PathValue("id"), "key:"+k.ID)
	switch {
	case errors.Is(err, store.ErrNoErasureSecret):
		writeError(w, http.StatusServiceUnavailable, "erasure is not configured on this server: "+err.Error())
	case err != nil:
		// Temporal or PostgreSQL failed; every step is idempotent, so
		// the same call again finishes the job.
		s.opts.Logger.Error("erasure failed", "err", err)
		s.writeUnavailable(w, "the erasure did not finish; send the same call again")
	default:
		// The audit row has this too; the log names no one (a keyed hash).
		s.opts.Logger.Info("customer erased", "customer_hash", res.CustomerHash, "found", res.Found,
			"by", "key:"+k.ID, "journeys_ended", len(res.JourneysEnded), "data_key_deleted", res.DataKeyDeleted)
		writeJSON(w, http.StatusOK, res)
	}
}
