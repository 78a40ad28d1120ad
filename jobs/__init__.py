"""Background jobs: the scheduler process that runs connectors on schedules, with retries."""
