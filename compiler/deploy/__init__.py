"""Floor 5, the Pulumi engine through its Automation API: the stack a plan is applied to, apply, destroy and drift."""
