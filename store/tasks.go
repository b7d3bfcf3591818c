package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rapport-crm/rapport/activities"
)

// CreateTask hands work to a person (a relationship manager, the service
// desk). A retry with the same Key returns the task the first attempt
// created. An empty priority is "normal"; a zero due time is one day out.
func (s *Store) CreateTask(ctx context.Context, r activities.TaskRequest) (activities.TaskResult, error) {
	if r.Key == "" {
		return activities.TaskResult{}, permanent("task for customer %q: key is required", r.CustomerID)
	}
	if r.Assignee == "" || r.Title == "" {
		return activities.TaskResult{}, permanent("task for customer %q: assignee and title are required", r.CustomerID)
	}
	priority := r.Priority
	switch priority {
	case "":
		priority = "normal"
	case "low", "normal", "high":
	default:
		return activities.TaskResult{}, permanent("task for customer %q: priority %q is not low, normal or high", r.CustomerID, r.Priority)
	}
	due := r.DueAt
	if due.IsZero() {
		due = time.Now().Add(24 * time.Hour)
	}
	var id int64
	err := s.pool.QueryRow(ctx, `
		INSERT INTO tasks (key, customer_id, enrollment_id, assignee, title, priority, due_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (key) DO NOTHING
		RETURNING id`,
		r.Key, r.CustomerID, r.Enrollment.ID, r.Assignee, r.Title, priority, due).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		err = s.pool.QueryRow(ctx, `SELECT id FROM tasks WHERE key = $1`, r.Key).Scan(&id)
	}
	if isForeignKeyViolation(err) {
		return activities.TaskResult{}, errUnknownCustomer(r.CustomerID)
	}
	if err != nil {
		return activities.TaskResult{}, fmt.Errorf("create task for customer %q (key %s): %w", r.CustomerID, r.Key, err)
	}
	return activities.TaskResult{TaskID: strconv.FormatInt(id, 10)}, nil
}
