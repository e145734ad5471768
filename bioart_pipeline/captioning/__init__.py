"""captions: the artist's sidecar captions (or a captioning model), anatomical terminology,
the trigger word first."""
