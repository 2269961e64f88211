"""What the example DAGs share: a synthetic customer-churn dataset and the model trained on it."""
