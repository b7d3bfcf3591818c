package api

import (
	"errors"
	"fmt"
	"testing"

	"go.temporal.io/api/serviceerror"
)

// Errors a retry may fix answer 503 (the client retries); others do not.
func TestIsUnavailable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{serviceerror.NewUnavailable("frontend down"), true},
		{serviceerror.NewDeadlineExceeded("slow"), true},
		{fmt.Errorf("enroll: %w", serviceerror.NewResourceExhausted(0, "namespace rate limit")), true},
		{ErrUnavailable, true},
		{serviceerror.NewInvalidArgument("bad workflow id"), false},
		{errors.New("rule failed"), false},
		{nil, false},
	} {
		if got := IsUnavailable(tc.err); got != tc.want {
			t.Errorf("IsUnavailable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
