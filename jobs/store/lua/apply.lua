-- Change one job and publish its job-update event, atomically, if its status and worker allow it; an end also
-- releases or cancels its dependents (their snapshots come 4th in the reply).
-- H (beside common.lua's) is the change itself: id, mode ("create" | "update"), event, guard, worker, fields, logs,
--   schedule_at (see common.lua's `apply`).
return told(apply(H))
