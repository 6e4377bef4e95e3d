# Unbounded recursion through a function: rego-cpp does not refuse it; the CPU limit stops it, or
# the memory limit when its frames fill the sandbox's memory first (which depends on the machine).
package mlplane.hostile_recursion  # expect: rego-timeout|rego-error

import rego.v1

loop(x) := loop(x + 1)

deny contains {"msg": "never", "path": "metadata"} if { loop(1) }
