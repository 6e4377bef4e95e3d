# Unbounded recursion through a function: rego-cpp does not refuse it, the CPU limit stops it.
package mlplane.hostile_recursion  # expect: rego-timeout

import rego.v1

loop(x) := loop(x + 1)

deny contains {"msg": "never", "path": "metadata"} if { loop(1) }
