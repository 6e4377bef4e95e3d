"""Every shell script the generated CI runs: constants, the same for every spec.

This module is the whole answer to "can spec text reach a shell?": a ``run:`` (GitHub) or
``script:`` (GitLab) entry is always one of :data:`SCRIPTS`, byte for byte, and a test checks
exactly that for every example. What differs between systems and environments — the spec path,
the system and environment names, the base commit — reaches the scripts only as environment
variables set in ``env:``/``variables:``, always double-quoted where used, and always after
``--`` or as ``--option=value`` so that no value can be read as an option.

The scripts are POSIX sh (GitLab's images may lack bash) and use only what every runner has:
``python`` (set up by the job), ``git`` (``plan --base`` reads the base from git objects),
coreutils, ``tar``, and on GitHub-hosted runners ``gh`` and ``jq``; ``tests/test_ci_images.py``
checks every command of every GitLab job against the packages of its pinned image. Downloads go
through Python's ``urllib``, so no job needs curl.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

INSTALL_MLPLANE = """\
set -eu
case "$MLPLANE_REQUIREMENT" in
  *" @ git+"*)
    command -v git > /dev/null 2>&1 || {
      echo "mlplane: installing from a commit needs git, and this job's image has none" \\
        "(for GitLab set ci.gitlab.image to an image with git)" >&2
      exit 1
    } ;;
esac
python -m pip install --disable-pip-version-check --no-cache-dir -- "$MLPLANE_REQUIREMENT"
mlplane --version
"""

VALIDATE = """\
set -eu
mlplane validate --format=text -- "$MLPLANE_SPEC"
"""

VALIDATE_GITHUB = """\
set -eu
mlplane validate --format=github -- "$MLPLANE_SPEC"
"""

SARIF = """\
set -eu
status=0
mlplane validate --format=sarif -- "$MLPLANE_SPEC" > mlplane.sarif || status=$?
# 0: valid, 1: the spec has findings; both leave a complete report for code scanning
test "$status" -le 1
"""

PLAN = """\
set -eu
mkdir -p plan
mlplane plan --env="$MLPLANE_ENV" --base="$MLPLANE_BASE" --format=markdown -- "$MLPLANE_SPEC" \\
  > "plan/$MLPLANE_ENV.md"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  cat "plan/$MLPLANE_ENV.md" >> "$GITHUB_STEP_SUMMARY"
fi
"""

PLAN_FOR_APPLY = """\
set -eu
mkdir -p plan
# The base: the commit this push moved the branch from; without one (a manual run, a new
# branch: all zeros) the commit before this one.
base="${MLPLANE_BEFORE:-}"
if [ -z "$(printf '%s' "$base" | tr -d 0)" ]; then
  base="HEAD~1"
fi
saved="plan/$MLPLANE_ENV.json"
rm -f -- "$saved"
status=0
mlplane plan --env="$MLPLANE_ENV" --base="$base" --format=markdown --out="$saved" \\
  --fail-on=risk -- "$MLPLANE_SPEC" > "plan/$MLPLANE_ENV.md" || status=$?
# 0: no risk flag; 1 with the plan saved: risk flags (the plan is saved only when it is
# complete); anything else: no plan at all
if [ "$status" -eq 0 ]; then
  risk=none
elif [ "$status" -eq 1 ] && [ -s "$saved" ]; then
  risk=flagged
else
  echo "mlplane: no plan for $MLPLANE_ENV (exit $status)" >&2
  exit 1
fi
printf '%s\\n' "$risk" > "plan/$MLPLANE_ENV.risk"
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  printf 'risk=%s\\n' "$risk" >> "$GITHUB_OUTPUT"
fi
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  cat "plan/$MLPLANE_ENV.md" >> "$GITHUB_STEP_SUMMARY"
fi
"""

APPROVE_RISK_GITHUB = """\
set -eu
approved="$(gh api "repos/$GH_REPO/actions/runs/$GITHUB_RUN_ID/approvals" \\
  | jq -r --arg gate "$MLPLANE_RISK_GATE" \\
    '[.[] | select(.state == "approved" and any(.environments[]; .name == $gate))] | length')"
if [ "$approved" -eq 0 ]; then
  echo "mlplane: nobody approved the environment $MLPLANE_RISK_GATE in this run: give it" \\
    "required reviewers (Settings > Environments), so a risky plan waits for one" >&2
  exit 1
fi
echo "the risky plan of $MLPLANE_ENV was approved by a reviewer of $MLPLANE_RISK_GATE"
"""

COMMENT_GITHUB = """\
set -eu
marker="<!-- mlplane-plan:${MLPLANE_SYSTEM}:${MLPLANE_ENV} -->"
if grep -qF -- "$marker" "plan/$MLPLANE_ENV.md"; then
  cp "plan/$MLPLANE_ENV.md" comment.md
else
  { printf '%s\\n\\n' "$marker"; cat "plan/$MLPLANE_ENV.md"; } > comment.md
fi
comment_id="$(gh api --paginate "repos/$GH_REPO/issues/$PR_NUMBER/comments" \\
  | jq -rs --arg marker "$marker" \\
    '[.[][] | select(.user.login == "github-actions[bot]" and (.body | contains($marker)))][0].id // empty')"
if [ -n "$comment_id" ]; then
  gh api --method PATCH "repos/$GH_REPO/issues/comments/$comment_id" -F body=@comment.md > /dev/null
else
  gh api --method POST "repos/$GH_REPO/issues/$PR_NUMBER/comments" -F body=@comment.md > /dev/null
fi
"""

NOTE_GITLAB = """\
set -eu
if [ -z "${MLPLANE_GITLAB_TOKEN:-}" ]; then
  echo "MLPLANE_GITLAB_TOKEN is not set: the plan is in this job's artifacts only"
else
  python - <<'PY'
import json
import os
import urllib.request

env = os.environ
marker = f"<!-- mlplane-plan:{env['MLPLANE_SYSTEM']}:{env['MLPLANE_ENV']} -->"
with open(f"plan/{env['MLPLANE_ENV']}.md", encoding="utf-8") as stream:
    body = stream.read()
if marker not in body:
    body = f"{marker}\\n\\n{body}"
api = env["CI_API_V4_URL"]
notes = f"{api}/projects/{env['CI_PROJECT_ID']}/merge_requests/{env['CI_MERGE_REQUEST_IID']}/notes"
headers = {"PRIVATE-TOKEN": env["MLPLANE_GITLAB_TOKEN"], "Content-Type": "application/json"}


def call(method, url, payload=None):
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


me = call("GET", f"{api}/user")["id"]
found = None
for page in range(1, 21):
    batch = call("GET", f"{notes}?per_page=100&page={page}")
    mine = [n["id"] for n in batch if n["author"]["id"] == me and marker in n["body"]]
    found = mine[0] if mine else None
    if found is not None or len(batch) < 100:
        break
if found is None:
    call("POST", notes, {"body": body})
else:
    call("PUT", f"{notes}/{found}", {"body": body})
PY
fi
"""

INSTALL_PULUMI = """\
set -eu
case "$(uname -m)" in
  x86_64) arch=x64 sum="$PULUMI_SHA256_LINUX_X64" ;;
  aarch64 | arm64) arch=arm64 sum="$PULUMI_SHA256_LINUX_ARM64" ;;
  *) echo "mlplane: no pinned Pulumi CLI for $(uname -m)" >&2; exit 1 ;;
esac
tools="${RUNNER_TEMP:-/tmp}/mlplane-pulumi"
rm -rf "$tools"
mkdir -p "$tools"
python -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \\
  "https://get.pulumi.com/releases/sdk/pulumi-v${PULUMI_VERSION}-linux-${arch}.tar.gz" \\
  "$tools/pulumi.tar.gz"
echo "$sum  $tools/pulumi.tar.gz" | sha256sum --check --strict
tar -xzf "$tools/pulumi.tar.gz" -C "$tools"
"$tools/pulumi/pulumi" version
"""

_CREDENTIALS = """\
set -eu
export PATH="${RUNNER_TEMP:-/tmp}/mlplane-pulumi/pulumi:$PATH"
umask 077
private="${RUNNER_TEMP:-/tmp}/mlplane-private"
mkdir -p "$private"
if [ -n "${MLPLANE_KUBECONFIG:-}" ]; then
  printf '%s\\n' "$MLPLANE_KUBECONFIG" > "$private/kubeconfig"
  export KUBECONFIG="$private/kubeconfig"
fi
if [ -n "${MLPLANE_AWS_ID_TOKEN:-}" ]; then
  printf '%s' "$MLPLANE_AWS_ID_TOKEN" > "$private/aws-web-identity-token"
  export AWS_WEB_IDENTITY_TOKEN_FILE="$private/aws-web-identity-token"
fi
unset MLPLANE_KUBECONFIG MLPLANE_AWS_ID_TOKEN
"""

APPLY = (
    _CREDENTIALS
    + """\
risk="$(cat "plan/$MLPLANE_ENV.risk")"
if [ "$risk" != none ] && [ "${MLPLANE_RISK_APPROVED:-}" != true ]; then
  echo "mlplane: the plan of $MLPLANE_ENV has risk flags (plan/$MLPLANE_ENV.md) and was not" \\
    "approved: GitHub waits for a reviewer of mlplane-risk-$MLPLANE_ENV; on GitLab, run" \\
    "mlplane-apply-$MLPLANE_ENV-risky after review" >&2
  exit 1
fi
mlplane apply --env="$MLPLANE_ENV" --plan="plan/$MLPLANE_ENV.json" --yes -- "$MLPLANE_SPEC"
"""
)

DRIFT = (
    _CREDENTIALS
    + """\
mkdir -p drift
report="drift/$MLPLANE_ENV.txt"
status=0
mlplane drift --env="$MLPLANE_ENV" -- "$MLPLANE_SPEC" > "$report" 2>&1 || status=$?
cat "$report"
case "$status" in
  0) verdict="no drift" ;;
  2) verdict="DRIFT: resources changed outside git" ;;
  *) verdict="the drift check failed (exit $status)" ;;
esac
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  {
    printf '## mlplane drift in %s: %s\\n\\n' "$MLPLANE_ENV" "$verdict"
    printf '```text\\n'
    cat "$report"
    printf '```\\n'
  } >> "$GITHUB_STEP_SUMMARY"
fi
exit "$status"
"""
)

SCRIPTS: Mapping[str, str] = MappingProxyType(
    {
        "install-mlplane": INSTALL_MLPLANE,
        "validate": VALIDATE,
        "validate-github": VALIDATE_GITHUB,
        "sarif": SARIF,
        "plan": PLAN,
        "plan-for-apply": PLAN_FOR_APPLY,
        "approve-risk-github": APPROVE_RISK_GITHUB,
        "comment-github": COMMENT_GITHUB,
        "note-gitlab": NOTE_GITLAB,
        "install-pulumi": INSTALL_PULUMI,
        "apply": APPLY,
        "drift": DRIFT,
    }
)
"""Every script by name: the only texts a ``run:`` or ``script:`` may hold."""
