package mlplane.hostile_uuid

import rego.v1

id := uuid.rfc4122("x")  # expect: rego-forbidden-builtin uuid.rfc4122
