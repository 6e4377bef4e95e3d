"""The passes of the mlplane compiler, one subpackage per floor of the pipeline.

``core`` (1) <- ``frontend``, ``render`` (2) <- ``policy`` (3) <- ``build`` (4) <- ``plan``,
``report``, ``deploy`` (5) <- ``cli`` (6): every import points down a floor (or stays on its
own), which ``tests/test_floors.py`` checks. See docs/architecture.md.
"""
