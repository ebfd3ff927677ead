"""`kschema check PATH...`: the admission webhook's decisions, offline, over a tree of manifests.

Every Subject and Schema found under PATH is reviewed by `kschema.policy` with the same functions the
webhook calls, so CI prints the sentence the cluster would answer with. Without `--against`, each
resource is reviewed as if it were created last, against all the others (`review_catalog`): a broken pair
of versions is reported on both of its Schemas, since either could be the one applied last. With
`--against REF`, the manifests at that Git revision stand for what the cluster already holds: resources
unchanged since REF are not reviewed again, changed ones are reviewed as updates (content, version and
subject are immutable; a Subject's format never changes), new ones as creates, removed ones as deletions
(never refused, possibly warned about).

Exit status: 0 nothing refused, 1 something refused, 2 unusable input (a missing path, an unreadable
file, YAML or JSON that does not parse, a Git revision that cannot be read).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, Literal, TextIO, TypeVar

from kschema.compat import CompatibilityLevel
from kschema.formats import InvalidSchemaError, ParsedSchema, ResolvedReference, SchemaFormat, parse_schema
from kschema.manifests import Declared, Location, ManifestProblem, Manifests, parse_manifests
from kschema.model import SCHEMA_KIND, SUBJECT_KIND, SchemaSpec, SubjectSpec
from kschema.policy import Catalog, Decision, Parser, review_catalog, review_schema, review_subject

__all__ = ["EXIT_INVALID", "EXIT_OK", "EXIT_REFUSED", "add_parser", "run"]

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_INVALID = 2

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
STDIN = "-"
_STDIN_LABEL = "<stdin>"
# Git commands answer in well under a second; a minute means a hung credential prompt or a lock.
_GIT_TIMEOUT_SECONDS = 60

Severity = Literal["error", "refused", "warning"]
Change = Literal["new", "changed", "unchanged", "removed"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "check",
        help="check Subject and Schema manifests as the admission webhook would",
        description=(
            "Check the Subject and Schema manifests under PATH... (files or directories, searched "
            "recursively for *.yaml, *.yml and *.json; '-' reads standard input) with the admission "
            "webhook's rules: schemas parse, references resolve, declared versions are compatible under "
            "their subject's level, no version is declared twice, no subject is claimed by two namespaces. "
            "Exit status: 0 nothing refused, 1 something refused, 2 unusable input."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="manifest file or directory")
    parser.add_argument(
        "-n",
        "--namespace",
        default="default",
        help="namespace of objects that set none, as with kubectl apply -n (default: default)",
    )
    parser.add_argument(
        "--against",
        metavar="REF",
        help=(
            "a Git revision (branch, tag, commit) holding what the cluster has now: only changes since "
            "REF are reviewed, and changing an existing Schema's content is refused"
        ),
    )
    parser.add_argument(
        "--default-compatibility",
        type=_level,
        # A string default goes through `type`, so a bad variable is reported like a bad flag.
        default=os.environ.get("KSCHEMA_DEFAULT_COMPATIBILITY") or "BACKWARD",
        metavar="LEVEL",
        help=(
            "level of Subjects without spec.compatibility: the cluster's --default-compatibility "
            "(env KSCHEMA_DEFAULT_COMPATIBILITY; default BACKWARD)"
        ),
    )
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text", help="output style")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    report = check(
        args.paths,
        namespace=args.namespace,
        against=args.against,
        default_compatibility=args.default_compatibility,
    )
    if args.output == "json":
        sys.stdout.write(json.dumps(report.to_json(), indent=2) + "\n")
    else:
        report.write_text(sys.stdout)
    return report.status


# --------------------------------------------------------------------------------------------------------
# The report


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Severity
    location: Location
    message: str  # a full sentence; policy messages start with the resource, e.g. "Schema ns/name: ..."
    resource: str | None = None  # "Schema ns/name", when the finding is about one resource

    # Problems found while reading (bad YAML, a bad field, a resource declared twice) name the document;
    # policy findings name the resource, which says more than a document number.
    show_document: bool = False

    @property
    def text(self) -> str:
        where = str(self.location) if self.show_document else self.location.path
        label = "warning: " if self.severity == "warning" else ""
        return f"{where}: {label}{self.message}"

    def to_json(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            **_location_json(self.location),
            "resource": self.resource,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class ResourceRow:
    kind: str
    namespace: str
    name: str
    location: Location
    change: Change | None
    allowed: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "resource": f"{self.kind} {self.namespace}/{self.name}",
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            **_location_json(self.location),
            "change": self.change,
            "allowed": self.allowed,
        }


@dataclass(slots=True)
class Report:
    namespace: str
    against: str | None
    findings: list[Finding] = field(default_factory=list)
    resources: list[ResourceRow] = field(default_factory=list)
    manifests: Manifests = field(default_factory=Manifests)
    reviewed: bool = True

    @property
    def errors(self) -> int:
        return sum(1 for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for f in self.findings if f.severity == "warning")

    @property
    def refused(self) -> int:
        """Resources with at least one refusal (a resource refused for three reasons counts once)."""
        return len(
            {(f.resource, f.location) for f in self.findings if f.severity == "refused" and f.resource}
        )

    def declared(self, kind: str) -> int:
        valid = len(self.manifests.subjects if kind == SUBJECT_KIND else self.manifests.schemas)
        return valid + sum(1 for p in self.manifests.problems if p.kind == kind)

    @property
    def status(self) -> int:
        if self.errors:
            return EXIT_INVALID
        return EXIT_REFUSED if self.refused else EXIT_OK

    def summary(self) -> str:
        subjects, schemas = self.declared(SUBJECT_KIND), self.declared(SCHEMA_KIND)
        if not self.reviewed:
            return f"not checked: {_count(self.errors, 'input error')}"
        line = (
            f"{_count(subjects, 'subject')}, {_count(schemas, 'schema')} checked: {self.refused} refused, "
            f"{_count(self.warnings, 'warning')}"
        )
        if self.errors:
            line += f", {_count(self.errors, 'input error')}"
        if self.manifests.ignored:
            kinds = Counter(i.kind or "no kind" for i in self.manifests.ignored)
            listed = ", ".join(
                f"{n} {kind}" for kind, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))
            )
            line += f"; {_count(len(self.manifests.ignored), 'other object')} ignored ({listed})"
        if self.against is not None:
            changes = Counter(r.change for r in self.resources)
            line += (
                f"; against {self.against}: {changes['new']} new, {changes['changed']} changed, "
                f"{changes['removed']} removed"
            )
        return line

    def write_text(self, out: TextIO) -> None:
        for finding in self.findings:
            out.write(_indent_continuations(finding.text) + "\n")
        out.write(self.summary() + "\n")

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "ok": self.status == EXIT_OK,
            "namespace": self.namespace,
            "against": self.against,
            "reviewed": self.reviewed,
            "summary": {
                "subjects": self.declared(SUBJECT_KIND),
                "schemas": self.declared(SCHEMA_KIND),
                "refused": self.refused,
                "warnings": self.warnings,
                "errors": self.errors,
                "ignored": len(self.manifests.ignored),
            },
            "findings": [f.to_json() for f in self.findings],
            "resources": [r.to_json() for r in self.resources],
            "ignored": [
                {**_location_json(i.location), "apiVersion": i.api_version, "kind": i.kind, "name": i.name}
                for i in self.manifests.ignored
            ],
        }


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _indent_continuations(text: str) -> str:
    # Parser messages (protoc's above all) can span lines; continuation lines are indented so that each
    # finding still starts at the beginning of a line.
    return "\n    ".join(line for line in text.splitlines() if line.strip()) if "\n" in text else text


def _location_json(location: Location) -> dict[str, Any]:
    return {
        "path": location.path,
        "document": location.document or None,
        "item": location.item,
        "line": location.line,
    }


# --------------------------------------------------------------------------------------------------------
# Reading manifests


def check(
    paths: Sequence[str],
    *,
    namespace: str,
    against: str | None = None,
    default_compatibility: CompatibilityLevel = CompatibilityLevel.BACKWARD,
) -> Report:
    """Reads the manifests under `paths` (and at `against`, when given) and reviews them. Subjects
    without `spec.compatibility` get `default_compatibility`, as the cluster's `--default-compatibility`
    gives them."""
    report = Report(namespace, against)
    for path in paths:
        report.manifests.extend(_with_default_level(_read_path(path, namespace), default_compatibility))
    for problem in report.manifests.problems:
        severity: Severity = "error" if problem.unusable else "refused"
        report.findings.append(
            Finding(severity, problem.location, problem.message, problem.who, show_document=True)
        )
    previous: Manifests | None = None
    if against is not None:
        previous = Manifests()
        unreadable = False
        for path in paths:
            try:
                previous.extend(
                    _with_default_level(_read_path_at(path, against, namespace), default_compatibility)
                )
            except _GitError as exc:
                message = f"cannot compare with Git revision {against!r}: {exc}"
                report.findings.append(Finding("error", Location(path, 0), message))
                unreadable = True
        if unreadable:
            # Without the revision there is nothing to compare with; reviewing everything as new instead
            # would answer another question than the one asked.
            report.reviewed = False
            return report
        for problem in previous.problems:
            # A file broken at REF does not block the change that repairs it: its resources count as new.
            report.findings.append(
                Finding(
                    "warning",
                    problem.location,
                    f"at {against}: {problem.message}; its resources are reviewed as new ones",
                    show_document=True,
                )
            )
    _review(report, previous)
    report.findings.sort(key=lambda f: _order(f.location))
    return report


def _level(raw: str) -> CompatibilityLevel:
    try:
        return CompatibilityLevel(raw.strip().upper())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be one of {', '.join(CompatibilityLevel)}, got {raw!r}"
        ) from None


def _with_default_level(found: Manifests, level: CompatibilityLevel) -> Manifests:
    found.subjects = [
        d if d.spec.compatibility_declared else replace(d, spec=replace(d.spec, compatibility=level))
        for d in found.subjects
    ]
    return found


def _order(location: Location) -> tuple[str, int, int]:
    return (location.path, location.document, -1 if location.item is None else location.item)


def _read_path(path: str, namespace: str) -> Manifests:
    if path == STDIN:
        return _parse_bytes(sys.stdin.buffer.read(), _STDIN_LABEL, namespace, as_json=False)
    found = Manifests()
    root = Path(path)
    if not root.exists():
        found.problems.append(_file_problem(path, "no such file or directory"))
        return found
    files = [root] if not root.is_dir() else _manifest_files(root)
    if root.is_dir() and not files:
        found.problems.append(
            _file_problem(path, f"no {', '.join('*' + s for s in MANIFEST_SUFFIXES)} files in this directory")
        )
    for file in files:
        label = str(file)
        try:
            data = file.read_bytes()
        except OSError as exc:
            found.problems.append(_file_problem(label, f"cannot read: {exc.strerror or exc}"))
            continue
        found.extend(_parse_bytes(data, label, namespace, as_json=file.suffix.lower() == ".json"))
    return found


def _manifest_files(root: Path) -> list[Path]:
    """Manifest files under `root`, sorted, skipping hidden directories (.git, .github, virtualenvs)."""
    files = []
    for directory, subdirectories, names in os.walk(root):
        subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
        files += [Path(directory) / n for n in sorted(names) if n.lower().endswith(MANIFEST_SUFFIXES)]
    return files


def _parse_bytes(data: bytes, label: str, namespace: str, *, as_json: bool) -> Manifests:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        found = Manifests()
        found.problems.append(_file_problem(label, f"not UTF-8 text (byte {exc.start})"))
        return found
    return parse_manifests(text, label, namespace=namespace, as_json=as_json)


def _file_problem(label: str, message: str) -> ManifestProblem:
    return ManifestProblem(Location(label, 0), message, unusable=True)


class _GitError(Exception):
    pass


def _git(directory: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *args],
            input=stdin,
            capture_output=True,
            timeout=_GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise _GitError(f"git {args[0]} failed: {exc}") from None
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip() or f"exit status {done.returncode}"
        raise _GitError(reason.splitlines()[-1] if reason else reason)
    return done.stdout


def _read_path_at(path: str, ref: str, namespace: str) -> Manifests:
    """The manifests at `path` as of Git revision `ref`, labelled with the same paths as the work tree's.
    Raises `_GitError` when the revision cannot be read there."""
    found = Manifests()
    if path == STDIN:
        raise _GitError("standard input has no history; pass paths in a Git work tree")
    local = Path(path)
    if not local.exists():
        return found  # already reported as missing
    directory = local if local.is_dir() else local.parent
    top = Path(_git(directory, "rev-parse", "--show-toplevel").decode().strip())
    try:
        _git(top, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    except _GitError:
        raise _GitError(f"no commit named {ref!r} in the repository at {top}") from None
    relative = PurePosixPath(Path(os.path.relpath(local.resolve(), top)).as_posix())
    listing = _git(top, "ls-tree", "-r", "-z", "--full-tree", ref, "--", str(relative))
    blobs: list[tuple[str, str]] = []  # (label, object id)
    for entry in filter(None, listing.split(b"\0")):
        meta, name = entry.split(b"\t", 1)
        _mode, kind, object_id = meta.decode().split()
        in_repo = PurePosixPath(name.decode("utf-8", "surrogateescape"))
        if kind != "blob":
            continue  # submodules
        if local.is_dir():
            below = in_repo.relative_to(relative) if str(relative) != "." else in_repo
            hidden = any(part.startswith(".") for part in below.parts[:-1])
            if hidden or not below.name.lower().endswith(MANIFEST_SUFFIXES):
                continue
            label = str(Path(path) / below)
        else:
            label = path
        blobs.append((label, object_id))
    contents = _git_blobs(top, [oid for _, oid in blobs])
    for (label, _), data in zip(blobs, contents, strict=True):
        found.extend(_parse_bytes(data, label, namespace, as_json=label.lower().endswith(".json")))
    return found


def _git_blobs(top: Path, object_ids: list[str]) -> list[bytes]:
    """Reads blobs with one `git cat-file --batch` instead of one process per file."""
    if not object_ids:
        return []
    out = _git(top, "cat-file", "--batch", stdin="".join(f"{oid}\n" for oid in object_ids).encode())
    blobs, position = [], 0
    for _ in object_ids:
        header_end = out.index(b"\n", position)
        _oid, _type, size = out[position:header_end].decode().split()
        start = header_end + 1
        blobs.append(out[start : start + int(size)])
        position = start + int(size) + 1  # the content is followed by a newline
    return blobs


# --------------------------------------------------------------------------------------------------------
# Reviewing


def _review(report: Report, previous: Manifests | None) -> None:
    current = report.manifests
    subjects = _first_of_each(current.subjects, report)
    schemas = _first_of_each(current.schemas, report)
    catalog = Catalog([d.spec for d in subjects], [d.spec for d in schemas])
    parse = _memoized(parse_schema)

    reviews: list[tuple[Declared[SubjectSpec] | Declared[SchemaSpec], Change | None, Decision]] = []
    if previous is None:
        decisions = review_catalog(catalog, parse=parse)
        reviews += [(d, None, decisions[d.who]) for d in subjects]
        reviews += [(d, None, decisions[d.who]) for d in schemas]
    else:
        old_subjects = {_key(d): d for d in reversed(previous.subjects)}  # the first declaration wins
        old_schemas = {_key(d): d for d in reversed(previous.schemas)}
        for subject in subjects:
            was = old_subjects.pop(_key(subject), None)
            old_spec = was.spec if was is not None else None
            decision = review_subject(subject.spec, old_spec, catalog, parse=parse)
            reviews.append((subject, _change(old_spec, subject.spec), decision))
        for schema in schemas:
            gone = old_schemas.pop(_key(schema), None)
            old_schema = gone.spec if gone is not None else None
            decision = review_schema(schema.spec, old_schema, catalog, parse=parse)
            reviews.append((schema, _change(old_schema, schema.spec), decision))
        # What is left at REF is deleted by this change: never refused, sometimes worth a warning. A
        # removed Subject is reviewed against what stays (are Schemas left pointing at it?); a removed
        # Schema also sees the removed Subjects, so that its subject's latest version and the Schemas
        # still referring to it are reported even when its whole subject goes.
        for removed_subject in old_subjects.values():
            decision = review_subject(None, removed_subject.spec, catalog, parse=parse)
            reviews.append((removed_subject, "removed", decision))
        with_removed_subjects = Catalog(
            [*catalog.subjects, *(d.spec for d in old_subjects.values())], catalog.schemas
        )
        for removed_schema in old_schemas.values():
            decision = review_schema(None, removed_schema.spec, with_removed_subjects, parse=parse)
            reviews.append((removed_schema, "removed", decision))

    for declared, change, decision in reviews:
        for reason in decision.reasons:
            report.findings.append(Finding("refused", declared.location, reason, declared.who))
        for warning in decision.warnings:
            report.findings.append(Finding("warning", declared.location, warning, declared.who))
        kind = SUBJECT_KIND if isinstance(declared.spec, SubjectSpec) else SCHEMA_KIND
        report.resources.append(
            ResourceRow(
                kind,
                declared.spec.namespace,
                declared.spec.resource_name,
                declared.location,
                change,
                decision.allowed,
            )
        )


def _key(declared: Declared[SubjectSpec] | Declared[SchemaSpec]) -> tuple[str, str]:
    return declared.spec.namespace, declared.spec.resource_name


def _change(old: SubjectSpec | SchemaSpec | None, new: SubjectSpec | SchemaSpec) -> Change:
    if old is None:
        return "new"
    return "unchanged" if old == new else "changed"


D = TypeVar("D", Declared[SubjectSpec], Declared[SchemaSpec])


def _first_of_each(items: Iterable[D], report: Report) -> list[D]:
    """Keeps the first declaration of each resource; a second one would overwrite the first when applied,
    so it is refused where it stands."""
    first: dict[tuple[str, str], D] = {}
    for item in items:
        earlier = first.setdefault(_key(item), item)
        if earlier is not item:
            report.findings.append(
                Finding(
                    "refused",
                    item.location,
                    f"{item.who}: is already declared at {earlier.location}; declare each resource once "
                    "(applying both, the later one silently replaces the earlier)",
                    item.who,
                    show_document=True,
                )
            )
    return list(first.values())


def _memoized(parse: Parser) -> Parser:
    """Reviewing a whole catalog parses each version once per neighbour; the parse of the same text with
    the same references is the same, so it is done once per run."""
    cache: dict[
        tuple[SchemaFormat, str, tuple[ResolvedReference, ...]], ParsedSchema | InvalidSchemaError
    ] = {}

    def cached(fmt: SchemaFormat, text: str, references: tuple[ResolvedReference, ...]) -> ParsedSchema:
        key = (fmt, text, references)
        if key not in cache:
            try:
                cache[key] = parse(fmt, text, references)
            except InvalidSchemaError as exc:
                cache[key] = exc
        hit = cache[key]
        if isinstance(hit, InvalidSchemaError):
            raise InvalidSchemaError(hit.reason, hit.location)
        return hit

    return cached
