package main

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// sizeTables are the tables part size measures, with the SQL that fills
// each with rows shaped like Rapport's (ids, texts and JSON of typical
// length), $1 being the row count and $2 (where used) the number of
// customers the rows refer to.
var sizeTables = []struct{ table, fill string }{
	{"customers", `
		INSERT INTO customers (id, email, name, locale, timezone, tier, stage, points, lifetime_value, order_count,
			avg_order_value, purchase_gap_days, first_purchase_at, last_purchase_at, birthday, signup_at, tags, attrs)
		SELECT 'usr_' || left(md5(g::text), 16), 'firstname.lastname' || g || '@example.com', 'Firstname Lastname ' || g,
			(ARRAY['en','zh','de','fr'])[1 + g % 4], (ARRAY['Europe/London','Asia/Shanghai','America/New_York'])[1 + g % 3],
			(ARRAY['','silver','gold'])[1 + g % 3], 'active', g % 500, 20 + g % 900, 1 + g % 9, 20 + g % 60, 10 + g % 50,
			now() - interval '400 days', now() - (g % 200) * interval '1 day', date '1970-01-01' + g % 15000,
			now() - interval '500 days', CASE WHEN g % 10 = 0 THEN ARRAY['vip'] ELSE '{}' END,
			jsonb_build_object('source', 'newsletter', 'plan', 'basic')
		FROM generate_series(1, $1) g`},
	{"events", `
		INSERT INTO events (id, customer_id, name, time, amount, currency, order_id, props, received_at)
		SELECT md5('e' || g)::uuid::text, 'usr_' || left(md5((1 + g % $2)::text), 16),
			(ARRAY['page_viewed','product_viewed','product_viewed','page_viewed','email_opened','order_completed'])[1 + g % 6],
			now() - (g % 90) * interval '1 day', CASE WHEN g % 6 = 5 THEN 42.50 ELSE 0 END, CASE WHEN g % 6 = 5 THEN 'EUR' ELSE '' END,
			CASE WHEN g % 6 = 5 THEN 'ord-' || g ELSE '' END,
			CASE WHEN g % 6 IN (1, 2) THEN jsonb_build_object('product_id', 'sku-' || g % 5000, 'price', 19.99, 'category', 'tea')
			     ELSE jsonb_build_object('path', '/products/' || g % 5000, 'title', 'Product ' || g % 5000, 'referrer', 'https://www.google.com/') END,
			now() - (g % 90) * interval '1 day'
		FROM generate_series(1, $1) g`},
	{"event_ids", `
		INSERT INTO event_ids (id, customer_id, time, received_at, dispatched_at)
		SELECT md5('e' || g)::uuid::text, 'usr_' || left(md5((1 + g % $2)::text), 16),
			now() - (g % 90) * interval '1 day', now() - (g % 90) * interval '1 day', now() - (g % 90) * interval '1 day'
		FROM generate_series(1, $1) g`},
	{"enrollments", `
		INSERT INTO enrollments (id, workflow_id, playbook, version, customer_id, status, current_step, reason, started_at, ended_at, trigger_id)
		SELECT md5('n' || g)::uuid::text, 'rapport/winback/usr_' || left(md5((1 + g % $2)::text), 16), 'winback', '0ea88a3ae0a1',
			'usr_' || left(md5((1 + g % $2)::text), 16), 'completed', 'send_offer', '', now() - interval '30 days', now() - interval '9 days',
			'scan/winback/1764000000/usr_' || left(md5((1 + g % $2)::text), 16)
		FROM generate_series(1, $1) g`},
	{"enrollment_steps", `
		INSERT INTO enrollment_steps (key, enrollment_id, step_id, kind, detail, branch, at)
		SELECT md5('n' || (g - 1) / 6 + 1)::uuid::text || '/step_' || g % 6 || '/1', md5('n' || (g - 1) / 6 + 1)::uuid::text, 'step_' || g % 6,
			(ARRAY['send','wait','update','branch','wait','send'])[1 + g % 6], 'sent email miss_you (en)', '', now() - interval '30 days'
		FROM generate_series(1, $1) g`},
	{"messages", `
		INSERT INTO messages (key, enrollment_id, customer_id, playbook, step_id, channel, template, locale, topic, recipient,
			subject, status, provider_id, attempts, created_at, sent_at)
		SELECT md5('n' || g)::uuid::text || '/send_offer/1', md5('n' || g)::uuid::text, 'usr_' || left(md5((1 + g % $2)::text), 16),
			'winback', 'send_offer', 'email', 'miss_you', 'en', 'marketing', 'firstname.lastname' || g || '@example.com',
			'We miss you, Firstname Lastname ' || g, 'sent', md5('m' || g)::uuid::text || '@mail.example.com', 1, now(), now()
		FROM generate_series(1, $1) g`},
}

// benchSize is part size: it fills a fresh database with rows shaped like
// Rapport's and reports the bytes each row takes with its indexes, the
// figures docs/capacity.md scales to 10 million customers and a billion
// events. It measures the schema as migrated, so rerun it after a
// migration changes tables or indexes.
func benchSize(ctx context.Context, c config) error {
	fmt.Printf("\n== size: bytes per row (%d customers, %d events, %d enrollments with 6 steps and 1 message each)\n",
		c.sizeCustomers, c.sizeEvents, c.sizeCustomers/2)
	st, cleanup, err := freshStore(ctx, c, "size")
	if err != nil {
		return err
	}
	defer cleanup()
	if err := st.EnsureEventMonths(ctx, time.Now().AddDate(0, 0, -91), time.Now()); err != nil {
		return err
	}
	counts := map[string]int{"customers": c.sizeCustomers, "events": c.sizeEvents, "event_ids": c.sizeEvents,
		"enrollments":      c.sizeCustomers / 2,
		"enrollment_steps": 6 * c.sizeCustomers / 2, "messages": c.sizeCustomers / 2}
	for _, t := range sizeTables {
		start := time.Now()
		args := []any{counts[t.table]}
		if strings.Contains(t.fill, "$2") {
			args = append(args, c.sizeCustomers) // $2: rows refer to customers 1…$2
		}
		if _, err := st.Pool().Exec(ctx, t.fill, args...); err != nil {
			return fmt.Errorf("fill %s: %w", t.table, err)
		}
		fmt.Printf("filled:  %s, %d rows in %s\n", t.table, counts[t.table], time.Since(start).Round(time.Millisecond))
	}
	if _, err := st.Pool().Exec(ctx, `VACUUM ANALYZE`); err != nil {
		return err
	}
	fmt.Printf("%-17s %12s %14s %14s %12s %12s\n", "table", "rows", "heap+toast", "indexes", "bytes/row", "index/row")
	for _, t := range sizeTables {
		// A partitioned table's size is its partitions' (pg_partition_tree
		// lists none for a plain table, which counts alone).
		var heap, index int64
		err := st.Pool().QueryRow(ctx, `
			SELECT coalesce(sum(pg_table_size(relid)), 0), coalesce(sum(pg_indexes_size(relid)), 0)
			FROM (SELECT relid FROM pg_partition_tree($1::regclass) UNION SELECT $1::regclass) r`, t.table).Scan(&heap, &index)
		if err != nil {
			return err
		}
		n := int64(counts[t.table])
		fmt.Printf("%-17s %12d %14d %14d %12d %12d\n", t.table, n, heap, index, heap/n, index/n)
	}
	return nil
}
