"""Monitoring live models: data freshness, label arrival and model performance over time windows."""
