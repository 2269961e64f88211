"""The metrics store: where runs, metrics, results, models and alert deliveries are recorded."""
