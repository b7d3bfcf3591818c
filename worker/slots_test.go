package worker

import (
	"strings"
	"testing"
)

func TestSizeSlots(t *testing.T) {
	for _, tc := range []struct {
		pool int
		want Slots
		got  Slots
		err  string
	}{
		{pool: 20, got: Slots{Local: 16, Activity: 4}},
		{pool: 4, got: Slots{Local: 3, Activity: 1}},
		{pool: 2, got: Slots{Local: 1, Activity: 1}},
		{pool: 20, want: Slots{Local: 10}, got: Slots{Local: 10, Activity: 4}},
		{pool: 20, want: Slots{Activity: 2}, got: Slots{Local: 18, Activity: 2}},
		{pool: 20, want: Slots{Local: 18, Activity: 4}, err: "RAPPORT_LOCAL_ACTIVITY_SLOTS (18) + RAPPORT_ACTIVITY_SLOTS (4) must be at least 2 and at most the database pool, RAPPORT_DB_MAX_CONNS (20)"},
		{pool: 1, err: "RAPPORT_LOCAL_ACTIVITY_SLOTS (0) + RAPPORT_ACTIVITY_SLOTS (1)"},
	} {
		got, err := sizeSlots(tc.pool, tc.want)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("pool %d, %+v: err %v, want %q", tc.pool, tc.want, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.got {
			t.Errorf("pool %d, %+v: %+v, %v; want %+v", tc.pool, tc.want, got, err, tc.got)
		}
	}
}
