"""Training compute away from this machine: encrypted transfer, the remote worker, the store."""
