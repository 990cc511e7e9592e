"""The researcher's workspace: training curves, Table 1, embeddings, filters, neurons, gallery."""
