package report

import "testing"

func TestTemporalRunURL(t *testing.T) {
	for _, tc := range []struct{ base, ns, wf, run, want string }{
		{"", "default", "rapport/winback/ada", "",
			"http://localhost:8233/namespaces/default/workflows/rapport%2Fwinback%2Fada"},
		{"https://temporal.example.com/", "crm prod", "rapport/winback/ada", "0b9d4d5e-8a67-4a5b-9a57-3c1b4f3b2d11",
			"https://temporal.example.com/namespaces/crm%20prod/workflows/rapport%2Fwinback%2Fada/0b9d4d5e-8a67-4a5b-9a57-3c1b4f3b2d11/history"},
	} {
		if got := TemporalRunURL(tc.base, tc.ns, tc.wf, tc.run); got != tc.want {
			t.Errorf("TemporalRunURL(%q, %q, %q, %q) =\n %s\nwant\n %s", tc.base, tc.ns, tc.wf, tc.run, got, tc.want)
		}
	}
}

func TestIsRunID(t *testing.T) {
	for id, want := range map[string]bool{
		"0b9d4d5e-8a67-4a5b-9a57-3c1b4f3b2d11":     true,
		"rapport/winback/ada@2026-03-02T09:00:00Z": false,
		"0b9d4d5e-8a67-4a5b-9a57-3c1b4f3b2d1x":     false,
		"0b9d4d5e08a67-4a5b-9a57-3c1b4f3b2d11":     false,
		"":                                         false,
	} {
		if IsRunID(id) != want {
			t.Errorf("IsRunID(%q) = %v, want %v", id, !want, want)
		}
	}
}
