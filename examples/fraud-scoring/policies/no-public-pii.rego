# An organisation policy in Rego, stricter than the built-in data.confidential-not-public:
# personal data (pii, phi) never reaches a public endpoint, whatever a waiver says about the
# built-in rule, and every public model names who may call it.
#
# Result contract: deny (errors) and warn (warnings) are sets of {msg, path}; path is a spec
# path (a string like "models.api.serving.exposure", or an array), reported at that line.
package mlplane.no_public_pii

import rego.v1

personal := {"pii", "phi"}

public_models contains name if {
	some name, model in input.models
	model.serving.exposure == "public"
}

deny contains {"msg": msg, "path": ["models", name, "serving", "exposure"]} if {
	some name in public_models
	some source in input.models[name].upstream
	input.dataSources[source].classification in personal
	msg := sprintf("model '%s' is public but reads %s data from '%s'", [name, input.dataSources[source].classification, source])
}

warn contains {"msg": msg, "path": ["models", name, "serving", "exposure"]} if {
	some name in public_models
	resource := sprintf("models.%s", [name])
	not granted(resource)
	msg := sprintf("public model '%s' has no access rule naming who may call it", [name])
}

granted(resource) if {
	some rule in input.security.access
	resource in rule.resources
}
