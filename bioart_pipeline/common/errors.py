"""Failures whose message is the diagnosis."""


class Diagnosis(RuntimeError):
    """A failure a person acts on from its message alone (what went wrong, what to change):
    shown as is, without a traceback, wherever the job ran."""
