"""Writes the chart's CRD templates (charts/kschema/templates/crds/) from the CRDs in crds/, the one source of
truth. Each template is its CRD file verbatim, inside `crds.enabled` (and `crds.kopfPeering` for kopf's
peering CRDs), with the `helm.sh/resource-policy: keep` annotation added under `crds.keep`.

    python dev/helm/sync_crds.py          rewrite the templates
    python dev/helm/sync_crds.py --check  exit 1 when a template differs from what crds/ gives
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CRDS_DIR = REPO_ROOT / "crds"
TEMPLATES_DIR = REPO_ROOT / "charts" / "kschema" / "templates" / "crds"

_HEADER = "{{{{- if {condition} }}}}\n"
_FOOTER = "{{- end }}\n"
_KEEP_ANNOTATION = "{{- if .Values.crds.keep }}\n{indent}helm.sh/resource-policy: keep\n{{- end }}\n"
_KEEP_ANNOTATIONS_BLOCK = (
    "{{- if .Values.crds.keep }}\n  annotations:\n    helm.sh/resource-policy: keep\n{{- end }}\n"
)
_METADATA_KEY = re.compile(r"^  [A-Za-z]")


class CrdLayoutError(ValueError):
    """A CRD file the wrapper cannot be added to without changing its content."""


def condition_for(crd_file: Path) -> str:
    if crd_file.name.startswith("kopf.dev_"):
        return "and .Values.crds.enabled .Values.crds.kopfPeering"
    return ".Values.crds.enabled"


def wrap(crd_file: Path) -> str:
    """The template for one CRD file: its text unchanged, plus template lines that render to nothing when
    `crds.keep` is false."""
    text = crd_file.read_text()
    if "{{" in text or "}}" in text:
        raise CrdLayoutError(f"{crd_file}: contains '{{{{' or '}}}}', which Helm would read as a template")
    if not text.endswith("\n"):
        raise CrdLayoutError(f"{crd_file}: must end with a newline")
    out: list[str] = []
    lines = text.splitlines(keepends=True)
    in_metadata = False
    documents = 0
    for number, line in enumerate(lines, start=1):
        if line.rstrip("\n") == "metadata:":
            in_metadata = True
            documents += 1
            out.append(line)
            continue
        if in_metadata and line.startswith("  annotations:"):
            if line.rstrip("\n") != "  annotations:":
                raise CrdLayoutError(f"{crd_file}:{number}: metadata.annotations must be a block mapping")
            out.append(line)
            out.append(_KEEP_ANNOTATION.format(indent="    "))
            in_metadata = False
            continue
        if in_metadata and not _METADATA_KEY.match(line) and not line.startswith("    "):
            # The end of metadata without annotations: add the whole block.
            out.append(_KEEP_ANNOTATIONS_BLOCK)
            in_metadata = False
        out.append(line)
    if in_metadata:
        raise CrdLayoutError(f"{crd_file}: the file ends inside metadata")
    if documents == 0:
        raise CrdLayoutError(f"{crd_file}: no top-level 'metadata:' found")
    return _HEADER.format(condition=condition_for(crd_file)) + "".join(out) + _FOOTER


def expected_templates() -> dict[Path, str]:
    return {TEMPLATES_DIR / crd.name: wrap(crd) for crd in sorted(CRDS_DIR.glob("*.yaml"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="report drift instead of rewriting")
    args = parser.parse_args(argv)
    expected = expected_templates()
    present = set(TEMPLATES_DIR.glob("*.yaml"))
    stale = sorted(present - set(expected))
    changed = sorted(p for p, text in expected.items() if not p.exists() or p.read_text() != text)
    if args.check:
        for path in changed + stale:
            sys.stderr.write(f"{path.relative_to(REPO_ROOT)} differs from crds/; run dev/helm/sync_crds.py\n")
        return 1 if changed or stale else 0
    TEMPLATES_DIR.mkdir(parents=True, exist_ok=True)
    for path in stale:
        path.unlink()
    for path in changed:
        path.write_text(expected[path])
    return 0


if __name__ == "__main__":
    sys.exit(main())
