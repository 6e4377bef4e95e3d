"""Resolution: check every cross-reference of a validated spec and build the system model.

All problems are collected before giving up, so a user fixes every dangling name in one round.
References are located at the value that names the missing thing, with a did-you-mean hint.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import PurePosixPath

from mlplane.compiler.core import codes, ir, plugins
from mlplane.compiler.core.diagnostics import Diagnostics, Related, SpecPath
from mlplane.compiler.frontend import ci_checks
from mlplane.compiler.frontend.document import Document
from mlplane.compiler.frontend.system_model import Origins, Shared, build_system
from mlplane.schema import formats, runtimes
from mlplane.schema import models as spec


class Resolver(Origins):
    """Checks references of one effective spec; ``build`` turns it into the system model."""

    def __init__(
        self,
        system: spec.MLSystem,
        document: Document,
        diagnostics: Diagnostics,
        dropped: Mapping[str, frozenset[str]] | None = None,
        shared: Shared | None = None,
    ) -> None:
        super().__init__(document)
        self.spec = system
        self.diagnostics = diagnostics
        self.shared = shared if shared is not None else Shared()
        """What the compile built for its other environments (``system_model.Shared``)."""
        self.dropped = dropped or {}
        """For a partial spec (``frontend/partial.py``): the entries left out for their schema
        errors, by what they are; a reference to one is not reported."""

    # --- reporting -----------------------------------------------------------------------------

    def expect(self, name: str, known: Collection[str], path: SpecPath, what: str) -> bool:
        if name in known:  # the common case: a set or mapping lookup, no list built
            return True
        if name in self.dropped.get(what, ()):
            return False  # defined, with errors of its own: not a missing reference
        choices = list(known)
        suggestion = formats.closest(name, choices)
        self.diagnostics.error(
            codes.REF_UNDEFINED,
            f"{what} {name!r} is not defined"
            + (f"; did you mean {suggestion!r}?" if suggestion else ""),
            self.document.value_location(path),
            path,
            None if suggestion or not choices else "defined: " + ", ".join(sorted(choices)[:12]),
        )
        return False

    # --- checks ----------------------------------------------------------------------------------

    def check(self) -> None:
        self._check_environments()
        self._check_models()
        self._check_lineage()
        self._check_slas()
        self._check_security()
        self._check_alerting()
        self._check_waivers()
        self._check_rego()
        self._check_unused_secrets()
        ci_checks.check(self)

    def _check_environments(self) -> None:
        """A declared residency is the one the target's settings imply (an AWS region's)."""
        for name, env in self.spec.environments.items():
            if env.residency is None:
                continue
            implied = plugins.setting_residency(env)
            if implied is not None and implied.residency != env.residency:
                self._report_residency(name, env.residency, implied)

    def _report_residency(
        self, name: str, declared: str, implied: plugins.SettingResidency
    ) -> None:
        path: SpecPath = ("environments", name, "residency")
        setting_at = self.document.value_location(("environments", name, *implied.path))
        where, noun = f"{implied.value!r} is in {implied.residency!r}", implied.noun
        self.diagnostics.error(
            codes.CONTRADICTION,
            f"environment {name!r} declares residency {declared!r}, but its {implied.setting} "
            + where,
            self.document.value_location(path),
            path,
            f"remove residency (it is derived from the {noun}) or choose a {noun} in {declared!r}",
            related=(Related(setting_at, f"{noun} {where}"),) if setting_at is not None else (),
        )

    def _check_models(self) -> None:
        sources, secrets = self.spec.data_sources, self.spec.security.secrets
        for name, model in self.spec.models.items():
            for index, source in enumerate(model.inputs):
                self.expect(source, sources, ("models", name, "inputs", index), "data source")
            for index, secret in enumerate(model.secrets):
                self.expect(secret, secrets, ("models", name, "secrets", index), "secret")
            capture = model.serving.data_capture
            if capture is not None:
                path = ("models", name, "serving", "dataCapture", "destination")
                self.expect(capture.destination, sources, path, "data source")
            if model.batch is not None:
                for field in ("inputs", "outputs"):
                    for index, source in enumerate(getattr(model.batch, field)):
                        where: SpecPath = ("models", name, "batch", field, index)
                        self.expect(source, sources, where, "data source")
            drift = model.monitoring.drift if model.monitoring else None
            if drift is not None and drift.job is not None:
                self._check_drift_job(name, model, drift.job)

    def _check_drift_job(self, name: str, model: spec.Model, job: spec.DriftJob) -> None:
        """The drift job reads two of the model's own inputs: the model's data access, no more."""
        for field, source in (("reference", job.reference), ("current", job.current)):
            path: SpecPath = ("models", name, "monitoring", "drift", "job", field)
            if not self.expect(source, self.spec.data_sources, path, "data source"):
                continue
            if source not in model.inputs:
                inputs_at = self.document.value_location(("models", name, "inputs"))
                self.diagnostics.error(
                    codes.CONTRADICTION,
                    f"the drift job of model {name!r} reads data source {source!r}, which is "
                    "not one of the model's inputs: the job gets the model's data access and "
                    "nothing more",
                    self.document.value_location(path),
                    path,
                    f"add {source!r} to models.{name}.inputs, or name one of its inputs",
                    related=(Related(inputs_at, "the model's inputs"),) if inputs_at else (),
                )

    def _check_lineage(self) -> None:
        sources = self.spec.data_sources
        for name, source in sources.items():
            for index, parent in enumerate(source.derived_from):
                self.expect(
                    parent, sources, ("dataSources", name, "derivedFrom", index), "data source"
                )
        for cycle in self.shared.cycles(derivation_graph(self.spec)):
            self._report_cycle(cycle)

    def _report_cycle(self, cycle: list[str]) -> None:
        edges = list(zip(cycle, cycle[1:] + cycle[:1], strict=True))
        places = [self._derivation(child, parent) for child, parent in edges]
        (first, _), *others = places
        self.diagnostics.error(
            codes.LINEAGE_CYCLE,
            "data sources derive from each other in a cycle: " + " -> ".join([*cycle, cycle[0]]),
            self.document.value_location(first),
            first,
            "lineage must be acyclic; remove one derivedFrom entry or batch output of the cycle",
            related=tuple(
                Related(loc, note)
                for path, note in others
                if (loc := self.document.value_location(path)) is not None
            ),
        )

    def _derivation(self, child: str, parent: str) -> tuple[SpecPath, str]:
        """Where the spec says ``child`` derives from ``parent``: its derivedFrom entry, else
        the batch output of a model that writes ``child`` from ``parent``."""
        derived = self.spec.data_sources[child].derived_from
        if parent in derived:
            path: SpecPath = ("dataSources", child, "derivedFrom", derived.index(parent))
            return path, f"{child} derives from {parent}"
        for name, model in self.spec.models.items():
            batch = model.batch
            if batch is None or child not in batch.outputs:
                continue
            if parent in (*batch.inputs, *model.inputs):
                path = ("models", name, "batch", "outputs", batch.outputs.index(child))
                return path, f"model {name}'s batch scoring writes {child} from {parent}"
        raise AssertionError((child, parent))  # only edges of derivation_graph reach here

    def _check_slas(self) -> None:
        for name, sla in self.spec.slas.items():
            base: SpecPath = ("slas", name)
            if sla.model is not None and self.expect(
                sla.model, self.spec.models, (*base, "model"), "model"
            ):
                self._check_indicator_fits(name, sla, self.spec.models[sla.model])
            if sla.data_source is not None:
                self.expect(
                    sla.data_source, self.spec.data_sources, (*base, "dataSource"), "data source"
                )

    def _check_indicator_fits(self, name: str, sla: spec.Sla, model: spec.Model) -> None:
        """Drift SLAs need drift monitoring; latency thresholds must be buckets of the runtime."""
        base: SpecPath = ("slas", name, "indicator")
        drift = model.monitoring.drift if model.monitoring else None
        if sla.indicator.kind == "drift" and drift is None:
            self.diagnostics.error(
                codes.INDICATOR_MISMATCH,
                f"a drift SLA needs drift monitoring on model {sla.model!r}",
                self.document.location(base),
                base,
                f"add models.{sla.model}.monitoring.drift with a method, threshold and features",
            )
        latency = sla.indicator.latency
        if latency is not None:
            seconds = formats.duration_seconds(latency.threshold)
            problem = runtimes.latency_threshold_problem(model.runtime, seconds)
            if problem is not None:
                path = (*base, "latency", "threshold")
                self.diagnostics.error(
                    codes.INDICATOR_MISMATCH, problem, self.document.value_location(path), path
                )

    def _check_security(self) -> None:
        security = self.spec.security
        for index, rule in enumerate(security.access):
            for position, resource in enumerate(rule.resources):
                self._expect_ref(resource, ("security", "access", index, "resources", position))
        for index, allow in enumerate(security.network.allow):
            for end, value in (("from", allow.from_), ("to", allow.to)):
                if value.startswith(("models.", "dataSources.")):
                    self._expect_ref(value, ("security", "network", "allow", index, end))

    def _expect_ref(self, ref: str, path: SpecPath) -> None:
        section, _, name = ref.partition(".")
        if ref == "*" or name == "*":
            return
        tables: Mapping[str, Mapping[str, object]] = {
            "models": self.spec.models,
            "dataSources": self.spec.data_sources,
            "slas": self.spec.slas,
        }
        what = {"models": "model", "dataSources": "data source", "slas": "SLA"}[section]
        self.expect(name, tables[section], path, what)

    def _check_alerting(self) -> None:
        alerting, secrets = self.spec.alerting, self.spec.security.secrets
        for name, receiver in alerting.receivers.items():
            base: SpecPath = ("alerting", "receivers", name)
            if receiver.slack is not None:
                self.expect(
                    receiver.slack.webhook_secret,
                    secrets,
                    (*base, "slack", "webhookSecret"),
                    "secret",
                )
            if receiver.pagerduty is not None:
                path = (*base, "pagerduty", "routingKeySecret")
                self.expect(receiver.pagerduty.routing_key_secret, secrets, path, "secret")
            if receiver.email is not None and alerting.smtp is None:
                path = (*base, "email")
                self.diagnostics.error(
                    codes.EMAIL_WITHOUT_SMTP,
                    f"receiver {name!r} sends e-mail, but alerting.smtp is not set: Alertmanager "
                    "would relay through localhost:25, where nothing listens",
                    self.document.location(path),
                    path,
                    "add alerting.smtp: {smarthost: HOST:PORT, from: ADDRESS} (and authUsername "
                    "with authPasswordSecret if the server needs a login)",
                )
        if alerting.smtp is not None and alerting.smtp.auth_password_secret is not None:
            path = ("alerting", "smtp", "authPasswordSecret")
            self.expect(alerting.smtp.auth_password_secret, secrets, path, "secret")
        for index, route in enumerate(alerting.routes):
            self.expect(
                route.receiver,
                alerting.receivers,
                ("alerting", "routes", index, "receiver"),
                "receiver",
            )
        if alerting.default_receiver is not None:
            path = ("alerting", "defaultReceiver")
            self.expect(alerting.default_receiver, alerting.receivers, path, "receiver")

    def _check_waivers(self) -> None:
        tables: Mapping[str, Mapping[str, object]] = {
            "models": self.spec.models,
            "dataSources": self.spec.data_sources,
            "slas": self.spec.slas,
            "environments": self.spec.environments,
        }
        for index, waiver in enumerate(self.spec.waivers):
            section, _, rest = waiver.target.partition(".")
            name = rest.split(".", 1)[0].split("[", 1)[0]
            path = ("waivers", index, "target")
            if section in tables and name and "*" not in name:
                what = {"models": "model", "dataSources": "data source", "slas": "SLA"}.get(
                    section, "environment"
                )
                self.expect(name, tables[section], path, what)
            elif (
                section not in (*tables, "security", "alerting", "metadata", "*")
                and "*" not in section
            ):
                self.diagnostics.error(
                    codes.REF_UNDEFINED,
                    f"waiver target {waiver.target!r} does not start with a spec section",
                    self.document.value_location(path),
                    path,
                    "start with dataSources, models, slas, security, alerting, environments or metadata",
                )

    def _check_rego(self) -> None:
        root = self.document.root
        for index, entry in enumerate(self.spec.policies.rego):
            path = ("policies", "rego", index)
            if ".." in PurePosixPath(entry).parts:
                self.diagnostics.error(
                    codes.PATH_OUTSIDE_ROOT,
                    f"policy file {entry!r} leaves the spec directory",
                    self.document.value_location(path),
                    path,
                )
            elif root is not None and not (root / entry).is_file():
                self.diagnostics.error(
                    codes.REF_UNDEFINED,
                    f"policy file {entry!r} does not exist in the spec directory",
                    self.document.value_location(path),
                    path,
                )

    def _check_unused_secrets(self) -> None:
        if self.dropped:
            return  # a dropped model or receiver may be the one that uses a secret
        used = {s for model in self.spec.models.values() for s in model.secrets}
        for receiver in self.spec.alerting.receivers.values():
            if receiver.slack is not None:
                used.add(receiver.slack.webhook_secret)
            if receiver.pagerduty is not None:
                used.add(receiver.pagerduty.routing_key_secret)
        if self.spec.alerting.smtp is not None and self.spec.alerting.smtp.auth_password_secret:
            used.add(self.spec.alerting.smtp.auth_password_secret)
        for name in self.spec.security.secrets:
            if name not in used:
                path = ("security", "secrets", name)
                self.diagnostics.warning(
                    codes.UNUSED_DEFINITION,
                    f"secret {name!r} is declared but no model or receiver uses it",
                    self.document.location(path),
                    path,
                )

    # --- building the system model -------------------------------------------------------------

    def build(self, environment: str) -> ir.System:
        lineage = self.shared.closure(derivation_graph(self.spec))
        return build_system(self.spec, environment, lineage, self, self.shared)


def derivation_graph(system: spec.MLSystem) -> dict[str, tuple[str, ...]]:
    """Each data source -> the sources it is derived from: its ``derivedFrom``, and for a
    batch output the batch's inputs and the scoring model's own inputs (predictions carry what
    the model read; not itself, should the model read its own predictions), so lineage,
    classification and residency flow through batch scoring."""
    sources = system.data_sources
    graph = {name: list(s.derived_from) for name, s in sources.items()}
    for model in system.models.values():
        if model.batch is None:
            continue
        for output in model.batch.outputs:
            if output in graph:
                graph[output] += (*model.batch.inputs, *model.inputs)
    return {
        name: tuple(dict.fromkeys(p for p in parents if p in sources and p != name))
        for name, parents in graph.items()
    }
