-- The delivery that stored each job, so the job's log lines carry it.
ALTER TABLE kpath_jobs ADD COLUMN delivery TEXT;
