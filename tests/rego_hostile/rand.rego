package mlplane.hostile_rand

import rego.v1

deny contains {"msg": "coin", "path": "metadata"} if { rand.intn("coin", 2) == 1 }  # expect: rego-forbidden-builtin rand.intn
