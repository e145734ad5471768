"""validated_release: the human review, the immutable release folder, and the audit."""
