package store_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
)

// TestPartitionBoundsCoverTheHashSpace: for every count, the ranges of
// its partitions follow one another with no gap or overlap over every
// int4 (hashtext's values), so every customer is in exactly one.
func TestPartitionBoundsCoverTheHashSpace(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 4, 7, 8, 10, 64, 255, store.MaxPartitions} {
		next := int64(math.MinInt32)
		for i := range max(n, 1) {
			lo, hi := store.Partition{Index: i, Count: n}.Bounds()
			if int64(lo) != next || hi < lo {
				t.Fatalf("partition %d of %d is [%d, %d], want it to start at %d", i, n, lo, hi, next)
			}
			next = int64(hi) + 1
		}
		if next != math.MaxInt32+1 {
			t.Fatalf("the partitions of %d end at %d, want %d", n, next-1, math.MaxInt32)
		}
	}
}

func TestPartitionCheck(t *testing.T) {
	for _, p := range []store.Partition{{0, 0}, {0, 1}, {3, 4}, {255, 256}} {
		if err := p.Check(); err != nil {
			t.Errorf("%+v: %v", p, err)
		}
	}
	for _, p := range []store.Partition{{4, 4}, {-1, 4}, {0, -1}, {1, 0}, {0, 257}} {
		if err := p.Check(); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("partition %d of %d", p.Index, p.Count)) {
			t.Errorf("%+v: error %v, want one naming the partition", p, err)
		}
	}
}

// TestCustomersAfterPartitions pages through each partition of a real
// database with small pages: every customer (ASCII, non-ASCII and odd
// ids) comes back exactly once over the partitions of a count, in id
// order within a partition, from the partition whose Bounds hold the
// server's hashtext of its id.
func TestCustomersAfterPartitions(t *testing.T) {
	s := storetest.New(t)
	ctx := context.Background()
	var ids []string
	for i := range 300 {
		ids = append(ids, fmt.Sprintf("c%04d", i))
	}
	ids = append(ids, "李伟", "zoë", "a b", "x'y", `back\slash`, strings.Repeat("long", 60), "UPPER", "-")
	for _, id := range ids {
		if err := s.UpsertCustomer(ctx, rules.Customer{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []int{1, 3, 7, store.MaxPartitions} {
		seen := map[string]int{}
		for i := range n {
			part := store.Partition{Index: i, Count: n}
			after := ""
			for {
				page, err := s.CustomersAfter(ctx, after, 13, part)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range page {
					if c.ID <= after {
						t.Fatalf("partition %d of %d: %q after %q, want id order", i, n, c.ID, after)
					}
					after = c.ID
					seen[c.ID]++
					var h int32
					if err := s.Pool().QueryRow(ctx, `SELECT hashtext($1)`, c.ID).Scan(&h); err != nil {
						t.Fatal(err)
					}
					if lo, hi := part.Bounds(); h < lo || h > hi {
						t.Errorf("partition %d of %d [%d, %d] returned %q, whose hash is %d", i, n, lo, hi, c.ID, h)
					}
				}
				if len(page) < 13 {
					break
				}
			}
		}
		for _, id := range ids {
			if seen[id] != 1 {
				t.Errorf("%d partitions: %q read %d times, want once", n, id, seen[id])
			}
		}
		if len(seen) != len(ids) {
			t.Errorf("%d partitions read %d distinct customers, want %d", n, len(seen), len(ids))
		}
	}
	if _, err := s.CustomersAfter(ctx, "", 10, store.Partition{Index: 2, Count: 2}); err == nil || !strings.Contains(err.Error(), "partition 2 of 2") {
		t.Errorf("partition 2 of 2: %v, want an error naming it", err)
	}
}
