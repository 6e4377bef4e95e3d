# trace() made regopy return an answer that is not JSON (an internal error, exit 3).
package mlplane.hostile_trace

import rego.v1

deny contains {"msg": "traced", "path": "metadata"} if { trace("hello") }  # expect: rego-forbidden-builtin trace
