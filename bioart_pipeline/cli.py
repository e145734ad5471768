"""`bioart`: the demo run, the human review and licence sign-offs, from the command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from bioart_pipeline.common.files import read_table
from bioart_pipeline.common.paths import Workspace
from bioart_pipeline.evaluation.stage import current_evaluation
from bioart_pipeline.licensing.manifest import awaiting_signoff
from bioart_pipeline.licensing.signoff import draft_signoff, record_signoff
from bioart_pipeline.release.audit import AuditReport, audit, format_report
from bioart_pipeline.release.bundle import existing_versions
from bioart_pipeline.release.review import (
    CHECKLIST,
    draft_review,
    record_review,
)
from bioart_pipeline.release.trust import (
    AuditTrust,
    TrustAnchor,
    parse_trust_anchor,
    studio_trust_anchor,
)
from bioart_pipeline.specs import list_spec_files, load_spec

RELEASE = "validated_release"
RELEASE_STEPS = ["release_review", RELEASE]
UP_TO_EVALUATION = ["raw_portfolio", "preprocessed_images", "captions", "license_manifest",
                    "lora_checkpoints", "xy_plot_evaluation"]
DEMO_REVIEWER = "demo-reviewer (automated, not a human)"
DEMO_NOTES = ("Recorded by `make demo` on the tiny built-in model; a real release needs a "
              "person's review (release_review in the Dagster UI, or `bioart review`).")
# The demo prints each run's log lines itself (from the event log, wherever the run worker
# runs); the run worker's console logger would print them a second time.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bioart", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="materialize every asset for every LoRA spec")
    demo.add_argument("--lora", action="append", help="only these partitions")
    review = commands.add_parser("review", help="record a human review of the current XY plot")
    review.add_argument("lora")
    review.add_argument("--reviewer", required=True)
    review.add_argument("--checkpoint", help="e.g. 'epoch 10' (default: the recommendation)")
    review.add_argument("--weight", type=float, help="default: the recommended weight")
    decision = review.add_mutually_exclusive_group(required=True)
    decision.add_argument("--approve", action="store_true")
    decision.add_argument("--reject", action="store_true")
    review.add_argument("--answer", action="append", default=[], metavar="ITEM=pass|fail|not shown",
                        help="checklist answers, every item for an approval; items: "
                             f"{', '.join(CHECKLIST)}")
    review.add_argument("--notes", default="")
    signoff = commands.add_parser("signoff", help="sign off images whose licence needs a "
                                                  "person's sign-off before they train")
    signoff.add_argument("lora")
    signoff.add_argument("--list", action="store_true", help="only list the images awaiting one")
    signoff.add_argument("--signer", help="your name, as it goes into the release record")
    signoff.add_argument("--image", action="append", metavar="PATH",
                         help="an image's path as the manifest lists it (default: all awaiting)")
    signoff.add_argument("--note", default="", help="why these images may train")
    audit = commands.add_parser("audit", help="trace a released LoRA back to its training data")
    audit.add_argument("path", type=Path, help="a release folder or its .safetensors file")
    audit.add_argument("--json", action="store_true", help="machine-readable output")
    audit.add_argument("--trust-anchor", metavar="PEM|sha256:FINGERPRINT",
                       help="whose signature the release must carry: the studio's CA "
                            "certificate or its signing certificate's SHA-256 fingerprint "
                            "(default: trust_anchor in studio.yaml)")
    audit.add_argument("--allow-untrusted", action="store_true",
                       help="without a trust anchor, report the signer as not verified and "
                            "pass on everything else")
    commands.add_parser("register", help="make every spec file in data/loras/ a partition "
                                         "(what the spec sensor does), checking each spec")
    commands.add_parser("build-base", add_help=False,
                        help="pretrain an embedded tiny base model (CPU, resumable; "
                             "`bioart build-base --help` for its options)")
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["build-base"]:  # its own parser (REMAINDER would refuse leading options)
        return run_build_base(argv[1:])
    args = parser.parse_args(argv)
    handlers = {"demo": lambda: run_demo(args.lora), "review": lambda: run_review(args),
                "signoff": lambda: run_signoff(args),
                "audit": lambda: run_audit(args),
                "register": run_register}
    return handlers[args.command]()


def run_build_base(options: list[str]) -> int:
    from bioart_pipeline.pretraining.base_model import main as build_base

    return build_base(options)


def run_audit(args: argparse.Namespace) -> int:
    """Exit 0 when every check passes, 1 with the list of problems otherwise."""
    workspace = Workspace.from_env()
    try:
        trust = AuditTrust(_trust_anchor(workspace, args.trust_anchor), args.allow_untrusted)
    except ValueError as exc:
        report = AuditReport(problems=[str(exc)])
    else:
        report = audit(args.path, workspace.data_dir, workspace.releases_dir, trust)
    print(json.dumps(report.to_json(), indent=2) if args.json else format_report(report))
    return 0 if report.ok else 1


def _trust_anchor(workspace: Workspace, given: str | None) -> TrustAnchor | None:
    """--trust-anchor (relative to the current folder), else studio.yaml's (relative to the
    data folder)."""
    if given:
        return parse_trust_anchor(given, Path.cwd(), workspace.outputs_dir)
    return studio_trust_anchor(workspace)


def run_review(args: argparse.Namespace) -> int:
    from bioart_pipeline.training.checkpoints import checkpoint_labels, checkpoint_table

    workspace = Workspace.from_env()
    evaluation, recommendation = current_evaluation(workspace, args.lora)
    answers = dict(item.partition("=")[::2] for item in args.answer)
    spec = load_spec(workspace.specs_dir / f"{args.lora}.yaml")
    try:
        path = record_review(
            workspace.reviews_dir,
            draft_review(args.lora, evaluation, recommendation, args.reviewer, args.approve,
                         args.checkpoint, args.weight, answers, args.notes),
            checkpoint_labels(checkpoint_table(workspace, args.lora)), spec.evaluation.weights)
    except ValueError as exc:  # names every problem: item, answer, cell, fail + approve
        print(exc, file=sys.stderr)
        return 2
    print(f"review of evaluation {evaluation} recorded: {path}")
    return 0


def run_signoff(args: argparse.Namespace) -> int:
    """Sign images of the current license manifest off; the next materialization of
    license_manifest trains them."""
    workspace = Workspace.from_env()
    table = workspace.table("license_manifest", args.lora)
    if not table.exists():
        print(f"{args.lora}: no license manifest yet; materialize license_manifest first",
              file=sys.stderr)
        return 2
    pending = awaiting_signoff(read_table(table))
    if args.list or not args.signer:
        for row in pending.itertuples():
            print(f"{row.path}\t{row.license}\t{row.verdict_reason}")
        if not args.list:
            print("--signer is required to sign off", file=sys.stderr)
            return 2
        return 0
    try:
        signoff = draft_signoff(args.lora, args.signer, args.note, pending, args.image)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    path = record_signoff(workspace.signoffs_dir, signoff)
    print(f"sign-off of {len(signoff.images)} image(s) recorded: {path.name}; they train from "
          "the next materialization of license_manifest")
    return 0


def run_register() -> int:
    """Register a partition per spec file: what `dagster asset materialize --partition` needs
    for a spec added since the sensor last ran. A spec that does not load is named, with why,
    and stays unregistered."""
    import dagster as dg

    from bioart_pipeline.orchestration.partitions import register_spec_partitions

    if not os.environ.get("DAGSTER_HOME"):
        print("set DAGSTER_HOME (the Makefile sets it to the repository root)", file=sys.stderr)
        return 2
    workspace = Workspace.from_env()
    broken = {}
    for path in list_spec_files(workspace.specs_dir):
        try:
            load_spec(path)
        except (ValueError, OSError) as exc:
            broken[path.stem] = str(exc).splitlines()[0]
    instance = dg.DagsterInstance.get()
    added = register_spec_partitions(instance, workspace, skip=set(broken))
    known = instance.get_dynamic_partitions("lora_specs")
    print(f"registered: {', '.join(added) or 'none new'}; partitions: {', '.join(known)}")
    for reason in broken.values():
        print(f"not registered: {reason}", file=sys.stderr)
    return 1 if broken else 0


def run_demo(only: list[str] | None) -> int:
    """Per LoRA: a run up to the XY plot, then a release run whose review is labelled as the
    demo's. Both are launched through the instance for the code location, as the UI does."""
    import dagster as dg

    from bioart_pipeline.orchestration.partitions import register_spec_partitions
    from bioart_pipeline.orchestration.runs import code_location, follow, launch

    if not os.environ.get("DAGSTER_HOME"):
        print("set DAGSTER_HOME (the Makefile sets it to the repository root)", file=sys.stderr)
        return 2
    workspace = Workspace.from_env()
    instance = dg.DagsterInstance.get()
    register_spec_partitions(instance, workspace)
    keys = only or instance.get_dynamic_partitions("lora_specs")
    unknown = sorted(set(keys) - set(instance.get_dynamic_partitions("lora_specs")))
    if unknown:
        print(f"no spec file for {unknown} in {workspace.specs_dir}: add data/loras/<name>.yaml "
              "(`bioart register` then makes it a partition)", file=sys.stderr)
        return 2
    with code_location(instance) as location:
        for key in keys:
            for title, job, assets, config, tags in _demo_runs():
                print(f"== {key}: {title}")
                run_id = launch(location, job, key, assets, config, tags)
                status = follow(instance, run_id, lambda line: print(f"   {line}"))
                if status != dg.DagsterRunStatus.SUCCESS:
                    print(f"{key}: run {run_id} {status.value.lower()}; its logs are in the "
                          "Dagster UI (make ui), under Runs")
                    return 1
    for key in keys:
        print(f"{key}: release at {existing_versions(workspace.releases_dir / key)[-1]}")
    return 0


def _demo_runs() -> list[tuple[str, str, list[str], dict, dict[str, str]]]:
    """(title, job, assets, run config, tags) of the demo's two runs for a LoRA."""
    from bioart_pipeline.orchestration.assets.review import DEMO_TAG

    review = {"reviewer": DEMO_REVIEWER, "decision": "approve", "notes": DEMO_NOTES}
    return [
        ("portfolio -> XY plot", "lora_retraining", UP_TO_EVALUATION, QUIET, {}),
        ("review and release (gated by the blocking checks)", "lora_pipeline",
         ["xy_plot_evaluation", *RELEASE_STEPS],
         {**QUIET, "ops": {"release_review": {"config": review}}}, {DEMO_TAG: "true"}),
    ]


if __name__ == "__main__":
    sys.exit(main())
