"""Turning a `SourceSnapshot` into a directory of manifests that `kubectl apply -f DIR` and
`kschema check DIR` accept as they are, byte for byte the same on every run over the same source.

Layout (kubectl applies the files of a directory in name order):

* `subject-<name>.yaml`: the Subject. Every Subject sorts before every Schema, so a Schema's references
  name Subjects the cluster already has.
* `versions-<depth>-<name>.yaml`: the Schemas of one subject whose references are `depth` levels deep
  (00: no references). A version is applied after every version it references.

Resource names are DNS-1123 names made from the subject string (lower case, other characters turned into
`-`); the real subject stays in the Subject's `spec.name`. A Subject's name is also a label value on its
ConfigMap, so it is kept to 63 characters: a longer one is cut and ends in a hash of the full subject.
Two subjects that come out with the same name are an error naming both, never a silent suffix.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from kschema.importer.snapshot import ImportProblem, SourceSnapshot, SourceSubject, SourceVersion
from kschema.manifests import parse_manifests
from kschema.model import API_VERSION, GROUP, SCHEMA_KIND, SUBJECT_KIND, SchemaState

__all__ = [
    "CONTRACTS_SUPPORTED",
    "MAX_RESOURCE_NAME",
    "SOURCE_MODE_ANNOTATION",
    "render",
    "resource_name",
    "write_directory",
]

# Whether Schema resources can hold `spec.metadata` and `spec.ruleSet` (Confluent data contracts).
CONTRACTS_SUPPORTED = True
MAX_RESOURCE_NAME = 63  # a label value (the ConfigMap's kschema.io/subject label)
MAX_REFERENCE_DEPTH = 32  # as the webhook and the operator allow
SOURCE_MODE_ANNOTATION = f"{GROUP}/source-mode"
_HASH_LENGTH = 10
_OUR_FILES = re.compile(r"(subject-[a-z0-9.-]+|versions-[0-9]{2}-[a-z0-9.-]+)\.yaml")


def resource_name(subject: str) -> str:
    """A stable DNS-1123 name (and label value) for a registry subject string."""
    lowered = re.sub(r"[^a-z0-9.]+", "-", subject.lower())
    parts = [part.strip("-") for part in lowered.split(".")]
    name = ".".join(part for part in parts if part) or "subject"
    if len(name) <= MAX_RESOURCE_NAME:
        return name
    digest = hashlib.sha256(subject.encode()).hexdigest()[:_HASH_LENGTH]
    head = name[: MAX_RESOURCE_NAME - _HASH_LENGTH - 1].rstrip("-.")
    return f"{head}-{digest}"


_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[valid-type,misc]  # chosen at import: C or pure emitter
    """Block style for multi-line text (schemas read as they were written), no line folding. The C
    emitter when libyaml is there: the pure one spends most of a large import analysing long scalars."""


def _str(dumper: Any, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    node: yaml.ScalarNode = dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)
    return node


_Dumper.add_representer(str, _str)


def _dump(documents: list[dict[str, Any]]) -> bytes:
    text = yaml.dump_all(
        documents,
        Dumper=_Dumper,
        sort_keys=False,
        explicit_start=True,
        allow_unicode=True,
        width=2**31 - 1,
        default_flow_style=False,
    )
    return text.encode()


def _metadata(name: str, namespace: str | None, annotations: Mapping[str, str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if annotations:
        meta["annotations"] = dict(sorted(annotations.items()))
    return meta


def _subject_document(subject: SourceSubject, name: str, namespace: str | None) -> dict[str, Any]:
    # READWRITE is every registry's default and says nothing; READONLY or IMPORT is worth keeping.
    noted = subject.mode is not None and subject.mode != "READWRITE"
    annotations = {SOURCE_MODE_ANNOTATION: subject.mode} if noted and subject.mode else {}
    return {
        "apiVersion": API_VERSION,
        "kind": SUBJECT_KIND,
        "metadata": _metadata(name, namespace, annotations),
        "spec": {
            "name": subject.name,
            "format": str(subject.format),
            "compatibility": str(subject.compatibility),
            # Imported history is kept as the source has it, even where it breaks today's level.
            "acceptedHistory": {"throughVersion": subject.versions[-1].version},
        },
    }


def _schema_document(
    version: SourceVersion, subject_name: str, namespace: str | None, contracts: bool
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "subject": subject_name,
        "version": version.version,
        "id": version.schema_id,
    }
    if version.deleted:
        spec["state"] = str(SchemaState.ARCHIVED)
    if version.references:
        spec["references"] = [
            {"name": r.name, "subject": r.subject, "version": r.version} for r in version.references
        ]
    if contracts:
        if version.metadata is not None:
            spec["metadata"] = version.metadata
        if version.rule_set is not None:
            spec["ruleSet"] = version.rule_set
    spec["schema"] = version.schema
    return {
        "apiVersion": API_VERSION,
        "kind": SCHEMA_KIND,
        "metadata": _metadata(f"{subject_name}-v{version.version}", namespace, {}),
        "spec": spec,
    }


def _names(snapshot: SourceSnapshot) -> dict[str, str]:
    names: dict[str, str] = {}
    taken: dict[str, str] = {}
    for subject in snapshot.subjects:
        name = resource_name(subject.name)
        if name in taken:
            raise ImportProblem(
                f'subjects "{taken[name]}" and "{subject.name}" both become the resource name "{name}" '
                "(resource names are lower case and keep only letters, digits, '-' and '.'); "
                "import them into different namespaces with separate --subjects runs, or rename one in "
                "the source"
            )
        taken[name] = subject.name
        names[subject.name] = name
    return names


def _depths(snapshot: SourceSnapshot) -> dict[tuple[str, int], int]:
    """How deep each version's references go (0: none). A cycle or a chain deeper than the webhook
    accepts is an error."""
    refs = {(v.subject, v.version): v.references for s in snapshot.subjects for v in s.versions}
    depth: dict[tuple[str, int], int] = {}

    def visit(key: tuple[str, int], path: tuple[tuple[str, int], ...]) -> int:
        if key in depth:
            return depth[key]
        if key in path:
            chain = " -> ".join(f"{s} v{v}" for s, v in (*path, key))
            raise ImportProblem(f"the source's references form a cycle: {chain}")
        if len(path) > MAX_REFERENCE_DEPTH:
            raise ImportProblem(
                f'references from subject "{path[0][0]}" version {path[0][1]} nest deeper than '
                f"{MAX_REFERENCE_DEPTH} levels, more than kschema accepts"
            )
        found = 0
        for ref in refs[key]:
            found = max(found, 1 + visit((ref.subject, ref.version), (*path, key)))
        depth[key] = found
        return found

    for key in sorted(refs):
        visit(key, ())
    return depth


def render(snapshot: SourceSnapshot, namespace: str | None, *, contracts: bool) -> dict[str, bytes]:
    """File name -> content. `contracts` writes `spec.metadata`/`spec.ruleSet` (when the Schema resource
    has them). Every file is read back with the same parser as `kschema check` before it is returned."""
    names = _names(snapshot)
    depths = _depths(snapshot)
    files: dict[str, bytes] = {}
    for subject in snapshot.subjects:
        name = names[subject.name]
        files[f"subject-{name}.yaml"] = _dump([_subject_document(subject, name, namespace)])
        by_depth: dict[int, list[dict[str, Any]]] = {}
        for version in subject.versions:
            by_depth.setdefault(depths[(subject.name, version.version)], []).append(
                _schema_document(version, name, namespace, contracts)
            )
        for depth, documents in sorted(by_depth.items()):
            files[f"versions-{depth:02d}-{name}.yaml"] = _dump(documents)
    _read_back(snapshot, files, names, namespace or "default")
    return dict(sorted(files.items()))


def _read_back(
    snapshot: SourceSnapshot, files: Mapping[str, bytes], names: Mapping[str, str], namespace: str
) -> None:
    """The files say exactly what the source holds, read as `kschema check` and the webhook read them."""
    declared = {}
    for path, data in files.items():
        found = parse_manifests(data.decode(), path, namespace=namespace)
        if found.problems:
            raise ImportProblem(
                f"{path}: the written manifest does not read back: {found.problems[0].message}"
            )
        for schema in found.schemas:
            declared[(schema.spec.subject, schema.spec.version)] = schema.spec
    for subject in snapshot.subjects:
        for version in subject.versions:
            spec = declared.get((names[subject.name], version.version))
            if spec is None or spec.schema != version.schema or spec.pinned_id != version.schema_id:
                raise ImportProblem(
                    f'subject "{subject.name}" version {version.version} does not read back from its '
                    "manifest unchanged"
                )


def write_directory(files: Mapping[str, bytes], out: Path) -> None:
    """Writes every file into a fresh directory beside `out`, then renames it into place: a failure
    leaves `out` as it was. `out` may be missing, empty, or an earlier import; anything else in it is
    an error rather than something to delete."""
    out = out.absolute()
    if out.exists():
        if not out.is_dir():
            raise ImportProblem(f"--out {out} exists and is not a directory")
        foreign = sorted(p.name for p in out.iterdir() if not _OUR_FILES.fullmatch(p.name))
        if foreign:
            shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
            raise ImportProblem(
                f"--out {out} holds files that kschema import did not write ({shown}); "
                "choose a new or empty directory"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.import-", dir=out.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(work, 0o777 & ~umask)
        for name, data in files.items():
            (work / name).write_bytes(data)
        if out.exists():
            old = out.parent / f".{out.name}.old-{secrets.token_hex(4)}"
            os.rename(out, old)
            os.rename(work, out)
            shutil.rmtree(old)
        else:
            os.rename(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
