"""Duplicates by a stated policy, decided once every licence is judged.

Exact copies (same bytes) and near duplicates (perceptual hashes within `near_bits` of 256) of
one role form a group. One member trains; the others are reported with the rule that decided:

1. a usable licence (allowed or signed off, then awaiting a sign-off, then refused);
2. the larger original (more pixels);
3. the studio's own work;
4. the older file (modification time);
then the path, so the choice never depends on anything else.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from bioart_pipeline.preprocessing.images import hash_distance

USABLE, AWAITING_SIGNOFF, UNUSABLE = 0, 1, 2


@dataclass(frozen=True)
class Candidate:
    path: str
    role: str
    sha256: str
    phash: str
    usability: int  # USABLE, AWAITING_SIGNOFF or UNUSABLE
    licence: str  # the verdict, for the report
    width: int
    height: int
    own_work: bool
    modified: str  # ISO time

    def rank(self) -> tuple:
        return (self.usability, -self.width * self.height, not self.own_work, self.modified,
                self.path)


@dataclass(frozen=True)
class Duplicate:
    group: int  # 1, 2, ... per group of the table
    kept: str  # the member that trains
    reason: str  # for the others: why they do not; "" for the kept one


def resolve_duplicates(candidates: list[Candidate], near_bits: int) -> dict[str, Duplicate]:
    """Path -> its group and the decision, for every image that has a duplicate."""
    decisions = {}
    for number, group in enumerate(_groups(candidates, near_bits), start=1):
        kept = min(group, key=Candidate.rank)
        for member in group:
            reason = "" if member is kept else (f"{_likeness(kept, member)} of {kept.path}, "
                                                f"which is kept: {_why(kept, member)}")
            decisions[member.path] = Duplicate(number, kept.path, reason)
    return decisions


def _groups(candidates: list[Candidate], near_bits: int) -> list[list[Candidate]]:
    """Connected groups (a chain of near duplicates is one group), in path order."""
    parent = list(range(len(candidates)))
    hashes = [int(c.phash, 16) for c in candidates]

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in itertools.combinations(range(len(candidates)), 2):
        a, b = candidates[i], candidates[j]
        if a.role == b.role and (a.sha256 == b.sha256
                                 or (hashes[i] ^ hashes[j]).bit_count() <= near_bits):
            parent[root(j)] = root(i)
    members: dict[int, list[Candidate]] = {}
    for i, candidate in enumerate(candidates):
        members.setdefault(root(i), []).append(candidate)
    groups = [sorted(g, key=lambda c: c.path) for g in members.values() if len(g) > 1]
    return sorted(groups, key=lambda g: g[0].path)


def _likeness(kept: Candidate, other: Candidate) -> str:
    if kept.sha256 == other.sha256:
        return "exact copy"
    return f"near duplicate ({hash_distance(kept.phash, other.phash)} of 256 hash bits differ)"


def _why(kept: Candidate, other: Candidate) -> str:
    """The first rule of the policy that tells the two apart."""
    if kept.usability != other.usability:
        return f"its licence is {kept.licence}, this one's is {other.licence}"
    if kept.width * kept.height != other.width * other.height:
        return (f"larger original ({kept.width}x{kept.height} against "
                f"{other.width}x{other.height})")
    if kept.own_work != other.own_work:
        return "it is the studio's own work"
    if kept.modified != other.modified:
        return f"older file ({kept.modified} against {other.modified})"
    return "equal on every rule, first by path"
