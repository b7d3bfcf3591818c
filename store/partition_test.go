package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/rapport-crm/rapport/rules"
	"github.com/rapport-crm/rapport/store"
	"github.com/rapport-crm/rapport/store/storetest"
)

// TestPartitionBoundsCoverTheHashSpace: for every count, the ranges of
// its partitions follow one another with no gap or overlap from 0 to
// 2^32-1, so every hash, and so every customer, is in exactly one.
func TestPartitionBoundsCoverTheHashSpace(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 4, 7, 8, 10, 64, 255, store.MaxPartitions} {
		next := int64(0)
		for i := range max(n, 1) {
			lo, hi := store.Partition{Index: i, Count: n}.Bounds()
			if lo != next || hi < lo {
				t.Fatalf("partition %d of %d is [%d, %d], want it to start at %d", i, n, lo, hi, next)
			}
			next = hi + 1
		}
		if next != 1<<32 {
			t.Fatalf("the partitions of %d end at %d, want 2^32", n, next-1)
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
// database with small pages: every customer comes back exactly once over
// the partitions of a count, in the partition IDHash computed in Go puts
// it in (the SQL and the Go hash agree, for ASCII, non-ASCII and odd
// ids), and in id order within a partition.
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
					if !part.Contains(c.ID) {
						t.Errorf("SQL put %q in partition %d of %d; Go hash %d says otherwise", c.ID, i, n, store.IDHash(c.ID))
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
