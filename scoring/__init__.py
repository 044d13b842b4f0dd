"""Scoring: fit and behaviour rules, decay, the predictive model, grades and score history (issue #5)."""
