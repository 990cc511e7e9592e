"""Image features for the paper's baselines and embeddings: uniform LBP and AlexNet deep features."""
