package erasure

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/rapport-crm/rapport/store"
)

// log records, in order, every call the fakes receive.
type log []string

type fakeStore struct {
	log      *log
	notReady error
	active   []store.JourneyRef
	started  []store.JourneyRef // enrollments that start between the read and Forget
	forgot   int
}

func (f *fakeStore) ErasureReady() error { return f.notReady }

func (f *fakeStore) ActiveJourneys(_ context.Context, id string) ([]store.JourneyRef, error) {
	*f.log = append(*f.log, "active "+id)
	return f.active, nil
}

func (f *fakeStore) Forget(_ context.Context, r store.ForgetRequest) (store.ForgetResult, error) {
	*f.log = append(*f.log, "forget "+r.CustomerID+" by "+r.RequestedBy)
	f.forgot++
	if f.forgot > 1 {
		return store.ForgetResult{Found: false}, nil
	}
	return store.ForgetResult{Found: true, Active: append(append([]store.JourneyRef{}, f.active...), f.started...)}, nil
}

type fakeJourneys struct {
	log  *log
	fail error
}

func (f *fakeJourneys) End(_ context.Context, workflowID, reason string) error {
	if f.fail != nil {
		return f.fail
	}
	*f.log = append(*f.log, "end "+workflowID+" ("+reason+")")
	return nil
}

// keyRecorder stands for the payload codec's customer keys: it records
// which customers' keys were deleted.
type keyRecorder struct{ log *log }

func (k keyRecorder) DeleteCustomerKey(_ context.Context, id string) error {
	*k.log = append(*k.log, "delete key "+id)
	return nil
}

func newEraser() (*Eraser, *fakeStore, *fakeJourneys, *log) {
	l := &log{}
	st := &fakeStore{log: l, active: []store.JourneyRef{{WorkflowID: "rapport/winback/c1", Playbook: "winback"}}}
	j := &fakeJourneys{log: l}
	return &Eraser{Store: st, Journeys: j, Keys: keyRecorder{l}}, st, j, l
}

// Journeys end before the rows go, a journey that started meanwhile is
// ended after, and the data key goes last.
func TestForgetOrder(t *testing.T) {
	e, st, _, l := newEraser()
	st.started = []store.JourneyRef{{WorkflowID: "rapport/welcome/c1", Playbook: "welcome"}}
	res, err := e.Forget(context.Background(), "c1", "key:k1")
	if err != nil {
		t.Fatal(err)
	}
	want := log{
		"active c1",
		"end rapport/winback/c1 (" + Reason + ")",
		"forget c1 by key:k1",
		"end rapport/welcome/c1 (" + Reason + ")",
		"delete key c1",
	}
	if !reflect.DeepEqual(*l, want) {
		t.Errorf("calls\n %q\nwant\n %q", *l, want)
	}
	if !reflect.DeepEqual(res.JourneysEnded, []string{"winback", "welcome"}) || !res.DataKeyDeleted || !res.Found {
		t.Errorf("result %+v", res)
	}
}

// Temporal unreachable: nothing is erased, the error says so.
func TestForgetStopsWhenJourneysCannotEnd(t *testing.T) {
	e, st, j, l := newEraser()
	j.fail = errors.New("connection refused")
	_, err := e.Forget(context.Background(), "c1", "cli:ops")
	if !errors.Is(err, ErrJourneys) || st.forgot != 0 {
		t.Fatalf("err %v, forgot %d: want ErrJourneys and no erasure", err, st.forgot)
	}
	for _, call := range *l {
		if call == "delete key c1" {
			t.Error("key deleted although the erasure stopped")
		}
	}
}

// Without an erasure secret nothing happens at all, not even the end of
// a journey.
func TestForgetRefusedWithoutSecretEndsNothing(t *testing.T) {
	e, st, _, l := newEraser()
	st.notReady = store.ErrNoErasureSecret
	if _, err := e.Forget(context.Background(), "c1", "cli:ops"); !errors.Is(err, store.ErrNoErasureSecret) {
		t.Fatalf("err %v", err)
	}
	if len(*l) != 0 {
		t.Errorf("calls %q, want none", *l)
	}
}

// Asked again, an erasure still deletes the key (the first attempt may
// have failed there) and reports nothing found.
func TestForgetAgainStillShreds(t *testing.T) {
	e, st, _, l := newEraser()
	ctx := context.Background()
	if _, err := e.Forget(ctx, "c1", "cli:ops"); err != nil {
		t.Fatal(err)
	}
	st.active = nil
	*l = nil
	res, err := e.Forget(ctx, "c1", "cli:ops")
	if err != nil || res.Found || !res.DataKeyDeleted || len(res.JourneysEnded) != 0 {
		t.Fatalf("second erasure %+v %v", res, err)
	}
	if want := (log{"active c1", "forget c1 by cli:ops", "delete key c1"}); !reflect.DeepEqual(*l, want) {
		t.Errorf("calls %q, want %q", *l, want)
	}
}

// KeysOf finds the key eraser of a store that has one, and nil otherwise.
func TestKeysOf(t *testing.T) {
	if KeysOf(keyRecorder{}) == nil {
		t.Error("a KeyEraser not recognised")
	}
	if KeysOf(&fakeStore{}) != nil {
		t.Error("a store without keys taken for a KeyEraser")
	}
}
