ALTER TABLE {schema}.jobs
  ADD CONSTRAINT jobs_state_check
    CHECK (state IN ('pending', 'available', 'scheduled', 'running', 'retryable', 'completed', 'cancelled', 'discarded')),
  ADD CONSTRAINT jobs_priority_check CHECK (priority BETWEEN 0 AND 3),
  ADD CONSTRAINT jobs_max_attempts_check CHECK (max_attempts >= 1),
  ADD CONSTRAINT jobs_dependency_failure_check CHECK (dependency_failure IN ('cancel', 'discard', 'ignore'));
