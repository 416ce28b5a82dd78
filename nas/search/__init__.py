"""Search: strategies (ask/tell), the runner, archive, checkpoint and first generation."""
