package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
)

func TestCustomerKeyCreateIsRaceSafe(t *testing.T) {
	t.Parallel()
	st := storetest.New(t)
	ctx := context.Background()
	if _, err := st.CustomerKey(ctx, "ada"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("no key yet: %v, want ErrNotFound", err)
	}
	// Eight processes encrypt Ada's first payload at once, each with a
	// key of its own: all must end up with the same one.
	const n = 8
	got := make([]store.CustomerKey, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = st.CreateCustomerKey(ctx, store.CustomerKey{CustomerID: "ada", Wrapped: []byte(fmt.Sprintf("wrapped-%d", i)), MasterKeyID: "m1"})
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !bytes.Equal(got[i].Wrapped, got[0].Wrapped) || got[i].MasterKeyID != "m1" || got[i].CreatedAt.IsZero() {
			t.Fatalf("creator %d got %+v, creator 0 %+v: not the same key", i, got[i], got[0])
		}
	}
	stored, err := st.CustomerKey(ctx, "ada")
	if err != nil || !bytes.Equal(stored.Wrapped, got[0].Wrapped) {
		t.Fatalf("stored %+v, %v; want the key every creator got", stored, err)
	}
	if _, err := st.CreateCustomerKey(ctx, store.CustomerKey{CustomerID: "ada"}); err == nil {
		t.Error("a key without bytes was accepted")
	}
}

func TestDeleteCustomerKeyErasesOnlyThatCustomer(t *testing.T) {
	t.Parallel()
	st := storetest.New(t)
	ctx := context.Background()
	for _, id := range []string{"ada", "bob"} {
		if _, err := st.CreateCustomerKey(ctx, store.CustomerKey{CustomerID: id, Wrapped: []byte("k-" + id), MasterKeyID: "m1"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.DeleteCustomerKey(ctx, "ada"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CustomerKey(ctx, "ada"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ada after deletion: %v, want ErrNotFound", err)
	}
	if k, err := st.CustomerKey(ctx, "bob"); err != nil || string(k.Wrapped) != "k-bob" {
		t.Errorf("bob: %+v, %v", k, err)
	}
	if err := st.DeleteCustomerKey(ctx, "ada"); err != nil {
		t.Errorf("deleting again: %v, want nil (an erasure may be retried)", err)
	}
	// A customer who comes back gets a new key.
	k, err := st.CreateCustomerKey(ctx, store.CustomerKey{CustomerID: "ada", Wrapped: []byte("new"), MasterKeyID: "m2"})
	if err != nil || string(k.Wrapped) != "new" {
		t.Errorf("recreated: %+v, %v", k, err)
	}
}

func TestRewrapCustomerKeys(t *testing.T) {
	t.Parallel()
	st := storetest.New(t)
	ctx := context.Background()
	for _, id := range []string{"c", "a", "b", "d"} {
		master := "old"
		if id == "d" {
			master = "new"
		}
		if _, err := st.CreateCustomerKey(ctx, store.CustomerKey{CustomerID: id, Wrapped: []byte(id), MasterKeyID: master}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := st.CustomerKeysWrappedBy(ctx, "old", "", 2)
	if err != nil || len(page) != 2 || page[0].CustomerID != "a" || page[1].CustomerID != "b" {
		t.Fatalf("first page %+v, %v; want a, b", page, err)
	}
	page, err = st.CustomerKeysWrappedBy(ctx, "old", "b", 2)
	if err != nil || len(page) != 1 || page[0].CustomerID != "c" {
		t.Fatalf("second page %+v, %v; want c", page, err)
	}
	ok, err := st.RewrapCustomerKey(ctx, "a", "old", []byte("a2"), "new")
	if err != nil || !ok {
		t.Fatalf("rewrap a: %v, %v", ok, err)
	}
	if ok, _ := st.RewrapCustomerKey(ctx, "a", "old", []byte("a3"), "new"); ok {
		t.Error("a key no longer wrapped by old was re-wrapped again")
	}
	if k, _ := st.CustomerKey(ctx, "a"); string(k.Wrapped) != "a2" || k.MasterKeyID != "new" {
		t.Errorf("a after rewrap: %+v", k)
	}
}
