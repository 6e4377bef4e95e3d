# A comprehension of 4000 x 4000 (the audit's 2000 x 2000 took 15 s per environment).
package mlplane.hostile_runaway  # expect: rego-timeout

import rego.v1

deny contains {"msg": sprintf("%d", [x]), "path": "metadata"} if {
	some x in numbers.range(1, 4000)
	some y in numbers.range(1, 4000)
	x == y + 4000
}
