"""Training: examples, the soft-logic trainer, model directories."""
