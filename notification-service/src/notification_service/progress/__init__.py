"""Live job progress for the job's owner, relayed from the events stream."""
