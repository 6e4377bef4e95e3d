"""``docs/policies.md``, generated from the registry of installed rules; do not edit the output.

Run ``python -m mlplane.policies.docs [OUTPUT]`` after changing a rule; a test fails while the
committed file differs from what this prints. It lives with the pack rather than in the compiler
because it is documentation of rules, but it renders every installed pack, in evaluation order.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from mlplane.compiler.build.writer import write_new_file
from mlplane.compiler.policy.engine import Rule, installed_rules, param_rows

DEFAULT_OUTPUT = Path("docs/policies.md")
REGO_SECTION = (
    "",
    "## Waivers",
    "",
    "A waiver (`waivers:` in the spec) names a policy id, a target (a spec path; `*` stands for "
    "one segment, and a target covers everything below it), a reason, an owner, an `expires` "
    'date and optionally a ticket. A waived finding is still reported, as a note "waived until '
    'DATE by OWNER (reason)", but does not fail validation. An expired waiver is an error at its '
    "`expires` line and waives nothing; a waiver that matches no finding in any environment is a "
    "warning; a waiver for an unknown policy is an error with a suggestion. `mlplane validate "
    "--today YYYY-MM-DD` pins the date (by default the current date; the library takes the date "
    "as a parameter and evaluates no expiry without one).",
    "",
    "## Organisation policies in Rego",
    "",
    "List `.rego` files in the spec (`policies: {rego: [path ...]}`, relative to the spec "
    "directory) or pass `mlplane validate --policy DIR`. They are evaluated in-process by "
    "regopy (rego-cpp) once per environment, with the resolved system model as `input` (shape "
    "documented and versioned in `compiler/policy/rego.py`). A module's package must be "
    "`mlplane.<name>`; its `deny` (errors) and `warn` (warnings) are sets of `{msg, path}`, where "
    '`path` is a spec path (`"models.scorer.serving"` or an array) that locates the finding. '
    "Findings carry the code `rego.<last package segment>` (`_` written `-`), which "
    "`policies.rules` and waivers accept like a built-in id. A module reads parameters as the "
    "built-in rules do: `policies.rules.<id>.params` (its own id, such as "
    "`rego.max-replicas`) reaches every module as written, by rule id, at "
    "`input.policies.params` (no schema is checked: read each value with a default, "
    '`object.get(object.get(input.policies.params, "rego.max-replicas", {}), "limit", 8)`). '
    "Examples: "
    "`examples/fraud-scoring/policies/`. Rego is much slower than the built-in pack on large "
    "specs; `benchmarks/policy_bench.py` measures both.",
)


def policies_markdown(rules: Sequence[Rule]) -> str:
    """Every rule with its rationale, remedy, mirrored checks and a failing example with its fix."""
    out = [
        "# Policy rules",
        "",
        "Generated from the installed policy packs by `python -m mlplane.policies.docs`; do not "
        "edit.",
        "",
        "Rules run on each environment's system model after resolution (`mlplane validate`). "
        "Tune a rule with `policies: {rules: {ID: {severity: error|warning|info|off}}}`; a "
        "mandatory rule cannot be turned off or lowered, only waived (`waivers:`, with a reason, "
        "an owner and an expiry date). `mlplane policies explain ID` prints one rule. The "
        "mirrored checks are the Checkov (`CKV_...`) and Trivy (`AVD-...`) checks that test "
        "the same property on generated infrastructure.",
        "",
        "Rules whose thresholds are a policy decision take parameters (the *Parameters* of "
        "their section, with defaults): `policies: {rules: {ID: {params: {NAME: VALUE}}}}`, "
        "with or without `severity`. `mlplane validate` checks them against the rule's "
        "declaration (an unknown parameter is `unknown-field` with a suggestion, a wrong type "
        "`wrong-type`, a value out of range `out-of-range`, each at its line), and the JSON "
        "Schema describes them for editors. A limit that applies to a whole class of data "
        "(medical records kept ten years) belongs in a parameter, reviewed once; a waiver is "
        "for one exception, and expires.",
        "",
        "Graph rules (the `aws.*` rules, marked *graph* below) read the resource graph a target "
        "lowered instead of the spec: they run when a graph is lowered with policies (`mlplane "
        "build`, `mlplane apply`, which builds, and `mlplane plan`, on the head), not in "
        "`mlplane validate`. Their findings "
        "are located at the spec element that produced the resource, which is also the target a "
        "waiver names (`dataSources.training-data`).",
        "",
        "| rule | severity | mandatory | title | mirrors |",
        "|---|---|---|---|---|",
    ]
    out += [
        f"| [`{r.id}`](#{r.id.replace('.', '')}) | {r.severity} "
        f"| {'yes' if r.mandatory else 'no'} | {r.title} | {', '.join(r.mirrors) or '-'} |"
        for r in rules
    ]
    for rule in rules:
        out += _rule_section(rule)
    return "\n".join([*out, *REGO_SECTION]) + "\n"


def _rule_section(rule: Rule) -> list[str]:
    mandatory = ", mandatory" if rule.mandatory else ""
    mirrors = ", ".join(f"`{m}`" for m in rule.mirrors) or "no scanner check"
    graph = ", graph" if rule.reads_graph else ""
    lines = ["", f"## {rule.id}", "", f"**{rule.title}** ({rule.severity}{mandatory}{graph})", ""]
    lines += [rule.rationale, "", f"**Fix:** {rule.remediation}", "", f"**Mirrors:** {mirrors}"]
    if rule.params is not None:
        lines += [
            "",
            f"**Parameters** (`policies: {{rules: {{{rule.id}: {{params: ...}}}}}}`):",
            "",
        ]
        lines += ["| parameter | kind | default | meaning |", "|---|---|---|---|"]
        lines += [
            f"| `{name}` | {kind} | `{default}` | {description} |"
            for name, kind, default, description in param_rows(rule.params)
        ]
    if rule.example:
        lines += ["", "Violation:", "", "```yaml", rule.example.strip("\n"), "```"]
        lines += ["", "Fixed:", "", "```yaml", rule.fix.strip("\n"), "```"]
    return lines


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlplane.policies.docs",
        description="Write the policy rules reference generated from the installed packs.",
    )
    parser.add_argument(
        "output",
        nargs="?",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"file to write (default: {DEFAULT_OUTPUT})",
    )
    arguments = parser.parse_args(argv)
    write_new_file(arguments.output, policies_markdown(installed_rules()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
