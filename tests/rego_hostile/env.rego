# Reads every environment variable of mlplane (the Pulumi passphrase during apply).
package mlplane.hostile_env

import rego.v1

deny contains {"msg": sprintf("%v", [opa.runtime().env]), "path": "metadata"} if { true }  # expect: rego-forbidden-builtin opa.runtime
