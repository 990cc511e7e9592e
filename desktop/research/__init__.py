"""The researcher's workspace: training curves, Table 1, embeddings, filters, neurons, gallery."""

PANELS = ("training", "metrics", "embeddings", "filters", "neurons", "gallery")  # `ctlens view --panel` names
