"""The embedded base model's pretraining: the textbook corpus and `bioart build-base`."""
