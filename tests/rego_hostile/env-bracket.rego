# The same through a bracketed reference, split across lines.
package mlplane.hostile_env_bracket

import rego.v1

secrets := opa[ "runtime" ]  # expect: rego-forbidden-builtin opa.runtime
	()
