# A built-in's namespace taken as a value: rego-cpp crashed the whole process (SIGSEGV).
package mlplane.hostile_function_value  # expect: rego-error

import rego.v1

now := f.now_ns() if { f := time }
