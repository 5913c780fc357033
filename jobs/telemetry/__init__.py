"""What the processes tell: logs, Prometheus metrics, a line per job event, and Redis's health at start-up."""
