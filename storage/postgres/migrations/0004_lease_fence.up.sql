-- Raised by a step's recovery-point write when the run's lease is no longer
-- held by the writer. The engine sends that write and the step's COMMIT in
-- one round trip, so the fence must abort the transaction, not just match no
-- row: the COMMIT behind it then rolls back instead of committing the step.
CREATE FUNCTION {schema}.lease_lost(run_id uuid) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'acidic: run % is not leased by this worker (another worker or an operator took it over)', run_id
    USING ERRCODE = 'AC001';
END
$$;

-- The lease of a run is freed by the job attempt that holds it, found
-- through the job's run_id, so locked_job_id needs no index; without one,
-- taking and giving up the lease are HOT updates like every step's.
DROP INDEX {schema}.runs_locked_job;
