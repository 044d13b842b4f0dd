"""Assignment: teams' routing rules and strategies, rep capacity and availability, decision log, SLA (issue #6)."""
