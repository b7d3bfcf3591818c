package api

import (
	"net/http"
	"testing"

	"github.com/rapport-crm/rapport/rules"
)

// FuzzAPIBodies posts arbitrary bodies to every JSON endpoint. Bad input
// must never be a server error (the fakes never fail, so any 5xx is the
// handler's own), and a call that is refused must have written and
// dispatched nothing: no half-written batch.
func FuzzAPIBodies(f *testing.F) {
	paths := []string{"/v1/identify", "/v1/track", "/v1/batch", "/v1/enroll"}
	seeds := []string{
		`{"userId":"c1","traits":{"email":"a@b.io","name":"Ana","birthday":"1990-04-12"}}`,
		`{"userId":"c1","event":"purchase","messageId":"m1","properties":{"amount":12.5,"order_id":7}}`,
		`{"batch":[{"type":"identify","userId":"c1"},{"type":"track","userId":"c1","event":"x","messageId":"m1"},{"type":"track","userId":"a/b","event":"x","messageId":"m2"}]}`,
		`{"playbook":"welcome","userId":"c1"}`,
		`{"userId":"c1","event":"x","messageId":"m","timestamp":"2999-01-01T00:00:00Z"}`,
		`{"userId":1e400}`, `{"userId":"c1","traits":{"attrs":{"a":{"b":[1,2,{"c":null}]}}}}`,
		`[`, `null`, `""`, "\x00", `{"batch":[{},{},{}]}`, `{"userId":"\ud800"}`,
	}
	for i, s := range seeds {
		f.Add(uint8(i), s)
	}
	f.Fuzz(func(t *testing.T, which uint8, body string) {
		path := paths[int(which)%len(paths)]
		enr := &fakeEnroller{}
		h := newHarness(t, func(o *Options) { o.Enroller = enr })
		h.store.customers["c1"] = rules.Customer{ID: "c1"}
		rec := h.do(http.MethodPost, path, body)
		if rec.Code >= 500 {
			t.Fatalf("POST %s %q: %d %s", path, body, rec.Code, rec.Body)
		}
		if rec.Code != http.StatusOK && (h.store.writes != 0 || len(h.disp.dispatched()) != 0 || len(enr.got) != 0) {
			t.Fatalf("POST %s %q answered %d but wrote %d rows, dispatched %d events and enrolled %v", path, body, rec.Code, h.store.writes, len(h.disp.dispatched()), enr.got)
		}
	})
}
