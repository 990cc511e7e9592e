"""Self-supervised pretraining of a backbone on unlabeled CT (MoCo v2) and its linear-probe evaluation."""
