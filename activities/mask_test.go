package activities

import "testing"

func TestMaskAddress(t *testing.T) {
	cases := []struct{ channel, in, want string }{
		{"email", "wei@example.cn", "w***@example.cn"},
		{"email", "  Ada.Lovelace@Example.com ", "A***@Example.com"},
		{"email", "李雷@例子.中国", "李***@例子.中国"},
		{"email", "odd@name@example.com", "o***@example.com"}, // the last @ starts the domain
		{"email", "@example.com", "***@example.com"},
		{"email", "no-at-sign", "***"},
		{"email", "trailing@", "***"},
		{"email", "", ""},
		{"sms", "+44 7700 900123", "+44*******123"},
		{"sms", "+447700900789", "+44*******789"},
		{"sms", "(555) 010-9999", "55*****999"},
		{"sms", "12345", "***45"},
		{"sms", "12", "**"},
		{"sms", "no digits", ""},
		{"webhook", "https://hooks.example.com/x?token=secret", "***"},
		{"webhook", "", ""},
	}
	for _, tc := range cases {
		if got := MaskAddress(tc.channel, tc.in); got != tc.want {
			t.Errorf("MaskAddress(%q, %q) = %q, want %q", tc.channel, tc.in, got, tc.want)
		}
	}
}
