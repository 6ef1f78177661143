-- Periodic jobs (queue.PeriodicJob, workflow.Periodic): one row per schedule
-- registered in code, written when a client starts. next_run_at is the
-- schedule's next period: a pass enqueues that period's job and moves
-- next_run_at on in the same transaction, guarded by the value it read, so
-- each period is enqueued once across all nodes, and a period that came due
-- while no node ran is still there when one starts again.
CREATE TABLE {schema}.periodic_schedules (
  name        text PRIMARY KEY,
  -- The job kind or workflow the schedule enqueues, for operators.
  kind        text NOT NULL,
  -- The cron expression without a CRON_TZ= prefix, and its time zone (an
  -- IANA name; "UTC" when none was given).
  spec        text NOT NULL,
  tz          text NOT NULL,
  -- What a pass does with periods found late: run_once or skip.
  policy      text NOT NULL,
  -- The scheduled time of the last period enqueued; NULL before the first.
  last_run_at timestamptz,
  next_run_at timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
