-- The global control group: a stable share of customers kept out of every
-- playbook that takes part in it (docs/playbooks.md, "Global control
-- group"), so that `rapport report` can show the whole programme's lift.
-- global_control is NULL for an enrollment in a playbook that does not take
-- part, false for a treated customer, true for one in the control group
-- (who is also a holdout: holdout = true). The share is the setting
-- rapport.global_control_pct (percent, 0 to 50, default 0), e.g.
-- ALTER DATABASE rapport SET rapport.global_control_pct = '5';

-- +goose Up
ALTER TABLE enrollments ADD COLUMN global_control boolean;

-- +goose Down
ALTER TABLE enrollments DROP COLUMN global_control;
