package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/rapport-crm/rapport/devenv"
	"github.com/rapport-crm/rapport/store/storetest"
)

// TestDevSmoke runs what `rapport dev` runs, against the package's dev
// server (reused, as rapport dev reuses a server that answers) and a fresh
// database: the samples deploy, the demo data goes in through the API, the
// winback scan enrolls the lapsed demo customers, mail reaches the catcher
// and shows on its page, and the health check passes.
func TestDevSmoke(t *testing.T) {
	t.Parallel()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	o := devenv.DefaultDevOptions()
	o.TemporalAddress, o.Namespace = frontend, nsDev
	o.DatabaseURL = storetest.NewDB(t)
	o.PlaybookDir = "../playbooks"
	o.StateDir = t.TempDir() // its generated payload key goes here, not in the user's cache
	o.APIAddr, o.SMTPAddr, o.MailAddr, o.MetricsAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", "off"
	o.Out = io.Discard
	ctx := context.Background()
	dev, err := devenv.StartDev(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dev.Close)

	e := &env{t: t}
	e.eventually(time.Minute, func() string {
		var mails []devenv.Mail
		if err := getJSON(dev.MailURL+"/?format=json", &mails); err != nil {
			return err.Error()
		}
		if len(mails) == 0 {
			return "no mail on the catcher's page yet"
		}
		return ""
	})
	e.eventually(time.Minute, func() string {
		want := 0
		for _, c := range devenv.DemoCustomers(time.Now()) {
			if c.OrderCount > 0 && c.LastPurchaseAt.Before(time.Now().AddDate(0, 0, -90)) {
				want++
			}
		}
		var got int
		err := dev.Stack.Worker.Store().Pool().QueryRow(ctx, `SELECT count(*) FROM enrollments WHERE playbook = 'winback'`).Scan(&got)
		if err != nil {
			return err.Error()
		}
		if got != want || want == 0 {
			return errorf("%d winback enrollments, want the %d lapsed demo customers", got, want)
		}
		return ""
	})
	res, err := http.Get(dev.APIURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("API /healthz: %d", res.StatusCode)
	}
}

func getJSON(url string, v any) error {
	res, err := http.Get(url)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	return json.NewDecoder(res.Body).Decode(v)
}
