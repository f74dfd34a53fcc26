"""Bolt listeners. Each acknowledges at once and only hands work to the queue."""
