"""Video jobs: submitting once, waiting within a bound with one shared poll loop per job, and the
pace of polling and progress estimates. A change to how a job is submitted, read or watched
belongs here."""
