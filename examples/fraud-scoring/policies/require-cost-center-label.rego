# An organisation policy in Rego: every ML system carries a cost-center label, so that its
# cloud bill can be charged back. Evaluated by `mlplane validate --policy examples/policies`
# (or listed in a spec under policies: {rego: [...]}) once per environment; the input is the
# resolved system model documented in compiler/policy/rego.py.
#
# The findings' code is rego.require-cost-center-label (from the package name): waive or tune
# it like a built-in rule.
package mlplane.require_cost_center_label

import rego.v1

cost_center_form := `^[a-z]+-[0-9]{4}$`

deny contains {"msg": "the system has no cost-center label (metadata.labels.cost-center)", "path": "metadata"} if {
	not input.labels["cost-center"]
}

deny contains {"msg": msg, "path": "metadata.labels.cost-center"} if {
	label := input.labels["cost-center"]
	not regex.match(cost_center_form, label)
	msg := sprintf("cost-center label '%s' is not of the form team-1234", [label])
}
