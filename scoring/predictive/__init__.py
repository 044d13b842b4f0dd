"""Predictive score: P(convert) learned from leads whose outcome is known (see docs/scoring.md)."""
