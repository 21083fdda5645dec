"""What every process shares: configuration, Redis connections that ride out outages,
structured logs, metrics, the names of the keys on REDIS_URL, the open-files limit."""
