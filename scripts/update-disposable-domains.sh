#!/usr/bin/env bash
# Regenerates src/core/disposable_domains.txt from the PyPI package `disposable-email-domains`,
# the published mirror of https://github.com/disposable-email-domains/disposable-email-domains
# (the list itself is CC0 1.0; the Python packaging is MIT).
#
# Usage: scripts/update-disposable-domains.sh [VERSION]   (default: the newest release)
# Needs python3 with pip. The wheel's Python source is parsed, never imported or run.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/src/core/disposable_domains.txt"
spec="disposable-email-domains"
if [ -n "${1:-}" ]; then spec="$spec==$1"; fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" "$spec"
whl=("$tmp"/disposable_email_domains-*.whl)
[ -f "${whl[0]}" ] || { echo "no wheel downloaded" >&2; exit 1; }

python3 - "${whl[0]}" "$out" <<'PY'
import ast, re, sys, zipfile

wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    source = z.read("disposable_email_domains/__init__.py").decode()
    meta_name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
    meta = z.read(meta_name).decode()
version = re.search(r"^Version: (.+)$", meta, re.M).group(1).strip()
licence = re.search(r"^License(?:-Expression)?: (.+)$", meta, re.M).group(1).strip()

domains = None
for node in ast.parse(source).body:
    if isinstance(node, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == "blocklist" for t in node.targets
    ):
        domains = ast.literal_eval(node.value)
if not domains:
    sys.exit("no `blocklist = {...}` literal found in the package")

label = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
bad = [d for d in domains if "." not in d or not all(label.match(p) for p in d.split("."))]
if bad:
    sys.exit(f"unexpected entries (not lower-case dotted host names): {sorted(bad)[:10]}")
if len(domains) < 1000:
    sys.exit(f"only {len(domains)} domains: refusing to replace the list")

with open(out, "w") as f:
    f.write(
        "# Disposable (throw-away) e-mail domains. A signup from one of these, or from a\n"
        "# subdomain of one, is held for review (src/core/text.rs: is_disposable_domain).\n"
        "#\n"
        "# GENERATED - do not edit by hand; regenerate with scripts/update-disposable-domains.sh\n"
        f"# Source: PyPI package disposable-email-domains {version} (packaging licence: {licence}),\n"
        "#   a mirror of https://github.com/disposable-email-domains/disposable-email-domains\n"
        "#   (disposable_email_blocklist.conf; list licence: CC0 1.0).\n"
        f"# Entries: {len(domains)}\n"
    )
    for d in sorted(domains):
        f.write(d + "\n")
print(f"wrote {len(domains)} domains from disposable-email-domains {version} to {out}")
PY
