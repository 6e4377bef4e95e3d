# print() went to stdout: it forged GitHub workflow commands and broke --format json.
package mlplane.hostile_print

import rego.v1

warn contains {"msg": "printed", "path": "metadata"} if {
	print("\n::error file=mlplane.yaml,line=1::forged\n{\"version\": 0}\u001b[31m")  # expect: rego-print
	false
}
