"""mlplane: a declarative GitOps compiler for ML systems.

The implementation lives in the sibling packages ``mlplane.schema`` (the language),
``mlplane.compiler`` (the passes and the CLI), ``mlplane.targets`` (back ends) and
``mlplane.policies`` (policy-as-code). This module only carries the version.
"""

__version__ = "0.1.0"
