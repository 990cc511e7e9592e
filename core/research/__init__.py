"""What the research workspace inspects, headless: filters, neurons, attention galleries."""
