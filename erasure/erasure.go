// Package erasure carries out the right to be forgotten: it ends a
// customer's running journeys in Temporal, erases their rows in
// PostgreSQL (store.Forget: everything deleted, the addresses kept only
// as keyed hashes on the suppression list, one audit row), and deletes
// their data key, which leaves the payloads of their workflow histories
// unreadable (crypto-shredding). `rapport forget` and POST
// /v1/customers/{id}/forget both run Eraser.Forget.
//
// The order is what makes a crash or an outage harmless: journeys end
// first, so none sends while the rows go; the rows go in one
// transaction; the key goes last. Every step is idempotent, so an
// erasure that failed half-way is simply asked again.
package erasure

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/rapport-crm/rapport/store"
)

// Store is what an erasure needs of the database; *store.Store
// implements it.
type Store interface {
	// ErasureReady fails when Forget cannot run (no erasure secret), so
	// that nothing is ended for an erasure that would be refused.
	ErasureReady() error
	ActiveJourneys(ctx context.Context, customerID string) ([]store.JourneyRef, error)
	Forget(ctx context.Context, r store.ForgetRequest) (store.ForgetResult, error)
}

// Journeys ends running journeys; Temporal implements it. Ending one
// that has already closed, or that Temporal does not know, is not an
// error.
type Journeys interface {
	End(ctx context.Context, workflowID, reason string) error
}

// KeyEraser deletes a customer's data key (the per-customer key the
// payload codec wraps their payloads' key with): without it the
// customer's payloads in Temporal histories cannot be decrypted. Deleting
// a key that does not exist is not an error.
type KeyEraser interface {
	DeleteCustomerKey(ctx context.Context, customerID string) error
}

// KeysOf is st's KeyEraser when st keeps customer data keys (the store
// does once the payload codec's keys are in it), else nil.
func KeysOf(st any) KeyEraser {
	k, _ := st.(KeyEraser)
	return k
}

// KeyCache is a process's cache of customer data keys: the payload codec
// (payloadcrypt.Codec.Forget).
type KeyCache interface {
	Forget(customerID string)
}

// KeysAndCache deletes a customer's data key with keys and then drops it
// from cache, so that the process that erased the customer (rapport
// serve, whose codec endpoint decodes for the Web UI) stops decrypting
// their payloads at once rather than when its cached copy expires. Other
// processes' caches expire on their own (payloadcrypt.DefaultKeyTTL).
// keys nil is nil: there is no key to delete.
func KeysAndCache(keys KeyEraser, cache KeyCache) KeyEraser {
	if keys == nil || cache == nil {
		return keys
	}
	return cachedKeys{keys, cache}
}

type cachedKeys struct {
	KeyEraser
	cache KeyCache
}

func (k cachedKeys) DeleteCustomerKey(ctx context.Context, customerID string) error {
	if err := k.KeyEraser.DeleteCustomerKey(ctx, customerID); err != nil {
		return err
	}
	k.cache.Forget(customerID)
	return nil
}

// Reason is the termination reason of a journey ended by an erasure, as
// Temporal shows it. It names no one.
const Reason = "customer erased (right to be forgotten)"

// Eraser forgets customers.
type Eraser struct {
	Store    Store
	Journeys Journeys
	// Keys deletes the customer's data key; nil when payloads are not
	// encrypted per customer (then histories keep the payloads readable
	// until the namespace's retention removes them).
	Keys KeyEraser
}

// Result is what an erasure did, for the CLI's and the API's answer.
type Result struct {
	store.ForgetResult
	// JourneysEnded are the playbooks whose running journey of the
	// customer was ended.
	JourneysEnded []string `json:"journeys_ended"`
	// DataKeyDeleted: the customer's data key was deleted (Keys set).
	DataKeyDeleted bool `json:"data_key_deleted"`
}

// ErrJourneys wraps a failure to end a journey: Temporal was not
// reachable, and nothing was erased. Ask again.
var ErrJourneys = errors.New("could not end the customer's journeys")

// Forget erases customerID on behalf of requestedBy (an API key id,
// "cli:<user>"; recorded in the audit row):
//
//  1. refuses without an erasure secret (store.ErrNoErasureSecret),
//     before anything changes;
//  2. ends every journey of the customer still active (Temporal
//     terminate, reason Reason);
//  3. erases the rows (store.Forget), and ends any journey that started
//     between 2 and 3;
//  4. deletes the customer's data key.
func (e *Eraser) Forget(ctx context.Context, customerID, requestedBy string) (Result, error) {
	if e.Store == nil || e.Journeys == nil {
		return Result{}, errors.New("erasure: Store and Journeys are required")
	}
	if customerID == "" {
		return Result{}, errors.New("erasure: the customer id is empty")
	}
	if err := e.Store.ErasureReady(); err != nil {
		return Result{}, err
	}
	active, err := e.Store.ActiveJourneys(ctx, customerID)
	if err != nil {
		return Result{}, err
	}
	var res Result
	ended := map[string]bool{}
	end := func(js []store.JourneyRef) error {
		for _, j := range js {
			if ended[j.WorkflowID] {
				continue
			}
			if err := e.Journeys.End(ctx, j.WorkflowID, Reason); err != nil {
				return fmt.Errorf("%w: %s: %w", ErrJourneys, j.Playbook, err)
			}
			ended[j.WorkflowID] = true
			res.JourneysEnded = append(res.JourneysEnded, j.Playbook)
		}
		return nil
	}
	if err := end(active); err != nil {
		return Result{}, err
	}
	res.ForgetResult, err = e.Store.Forget(ctx, store.ForgetRequest{CustomerID: customerID, RequestedBy: requestedBy})
	if err != nil {
		return Result{}, err
	}
	if err := end(res.Active); err != nil {
		return res, fmt.Errorf("rows erased, but %w (run the erasure again)", err)
	}
	if res.JourneysEnded == nil {
		res.JourneysEnded = []string{}
	}
	if e.Keys != nil {
		if err := e.Keys.DeleteCustomerKey(ctx, customerID); err != nil {
			return res, fmt.Errorf("rows erased, but deleting the customer's data key failed (run the erasure again): %w", err)
		}
		res.DataKeyDeleted = true
	}
	return res, nil
}

// Temporal ends journeys on a Temporal server.
type Temporal struct {
	Client client.Client
}

// End implements Journeys with TerminateWorkflow on the workflow's
// current run (a journey's workflow id names one customer in one
// playbook, so every run of it is theirs). A workflow already closed or
// unknown is fine: there is nothing left to end.
func (t Temporal) End(ctx context.Context, workflowID, reason string) error {
	err := t.Client.TerminateWorkflow(ctx, workflowID, "", reason)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return nil
	}
	return err
}
