# Forbidden names in comments, strings and as fields of input are not calls: this evaluates.
# opa.runtime() http.send() rand.intn("x", 2) trace("x")
package mlplane.hostile_fooled

import rego.v1

names := ["opa.runtime()", `http.send({})`, "trace(\"x\")"]

warn contains {"msg": "never", "path": "metadata"} if { input.opa.runtime }
