"""Registering the recurring runs of ``training.engine: kubeflow`` with the Kubeflow Pipelines API,
the step ``mlplane apply`` runs after the engine's ``up`` (and ``mlplane destroy`` before its
destroy), through the target's ``after_apply`` and ``before_destroy`` hooks.

Why a registration step and not an object: recurring runs have no custom resource in KFP 2.x.
The Kubernetes-native API covers pipelines and pipeline versions only; a recurring run is a row
of the API server's database, and the ``ScheduledWorkflow`` (``kubeflow.org/v1beta1``) the
server makes from it is its internal object (see the target README, *Kubeflow Pipelines*). So
the build writes each recurring run as data (the ConfigMap ``<model>-recurring-run``, key
:data:`RECURRING_RUN_KEY`), and this module makes the API hold exactly those runs:

- every run mlplane registers lives in one experiment per system and environment,
  :func:`experiment_name`, in the environment's namespace; whatever is in it is mlplane's;
- a run whose display name, pipeline version (resolved from the names of the Pipeline and
  PipelineVersion to the IDs the API gives them), cron, concurrency, catch-up, mode and
  description already match is left alone, so a second apply changes nothing;
- the v2beta1 API cannot update a recurring run, so a changed one is deleted and created again
  (its next run follows the new schedule and version), and a run the spec no longer has is
  deleted;
- ``destroy`` deletes every run of the experiment before the pipelines go.

The HTTP calls are the generated client of the KFP REST API (``kfp_server_api``, the package the
``kfp`` SDK itself calls through ``kfp.Client``), used directly so that each request has a
timeout and nothing is read from the user's ``kfp`` context file. The bearer token, when the
API needs one, is read from :data:`TOKEN_VARIABLE`.

What the API answers is untrusted: redirects are not followed (a sign-in page in the API's place
is a refusal, not an empty list), an answer must arrive within :data:`REQUEST_TIMEOUT` seconds
(however slowly it is sent) and be a JSON object of at most :data:`ANSWER_LIMIT` bytes whose
fields have the generated model's types, paging stops at a repeated page token or after
:data:`PAGE_LIMIT` pages (every page is read, as a server may not apply a list filter), and the
token is masked in any text of the API that a message repeats.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mlplane.compiler.core import ir
from mlplane.compiler.core.plugins import DeployStepError
from mlplane.targets.kubernetes.settings import kubernetes_of

RECURRING_RUN_KEY = "recurring-run.json"
"""The key of the ConfigMap ``<model>-recurring-run`` that holds the run's fields."""
TOKEN_VARIABLE = "MLPLANE_KUBEFLOW_TOKEN"  # noqa: S105  # a variable name, not a token
"""The environment variable holding the bearer token of the KFP API, if it needs one."""
REQUEST_TIMEOUT = 30
"""Seconds one request to the KFP API may take."""
PAGE_SIZE = 100
PAGE_LIMIT = 1000
"""Pages of one listing read at most (100,000 objects): an API that keeps naming a next page is
refused rather than followed forever."""
ANSWER_LIMIT = 16 * 1024 * 1024
"""Bytes one answer of the KFP API may hold; a larger one is refused before it is parsed."""
LOOKUP_ATTEMPTS = 6
LOOKUP_PAUSE = 5.0
"""A PipelineVersion just created by the engine reaches the API server through its informer:
a version not found yet is looked up again, a few seconds apart."""
ENABLED = "ENABLE"


class RegistrationError(Exception):
    """The KFP API refused or could not be reached; the message says which call and why."""


class _Unusable(Exception):
    """An answer of the API that registration cannot use (not JSON, too large, a wrong field)."""


@dataclass(frozen=True, slots=True)
class _Answer:
    """An answer read whole, within :data:`ANSWER_LIMIT`, in the shape the generated client
    reads from urllib3 (status, reason, data, headers)."""

    status: int
    reason: str
    data: bytes
    headers: Mapping[str, str]

    def getheaders(self) -> Mapping[str, str]:
        return self.headers

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)


class _BoundedPool:
    """The generated client's urllib3 pool with no redirect followed and every answer read up
    to :data:`ANSWER_LIMIT` bytes, a 2xx answer required to be a JSON object."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    def request(self, method: str, url: str, **kwargs: Any) -> _Answer:
        kwargs.update(preload_content=False, redirect=False)
        deadline = time.monotonic() + REQUEST_TIMEOUT
        response = self._pool.request(method, url, **kwargs)
        try:
            data = _read_within(response, deadline)
        except BaseException:
            response.close()  # the rest is never read, so the connection is not reused
            raise
        response.release_conn()
        headers = {str(k): str(v) for k, v in response.headers.items()}
        if 200 <= response.status <= 299 and not _json_object(data):
            kind = _short(headers.get("Content-Type", "") or "none")
            raise _Unusable(f"answered HTTP {response.status} but not a JSON object "
                            f"(Content-Type {kind}): is the endpoint the API itself?")  # fmt: skip
        return _Answer(response.status, str(response.reason or ""), data, headers)

    def clear(self) -> None:
        self._pool.clear()


def _read_within(response: Any, deadline: float) -> bytes:
    """The body as it arrives, refused past :data:`ANSWER_LIMIT` bytes or the deadline (a
    socket timeout bounds each wait, not a body sent a byte at a time)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := response.read1(65536):
        size += len(chunk)
        if size > ANSWER_LIMIT:
            raise _Unusable(f"answered more than {ANSWER_LIMIT} bytes")
        if time.monotonic() > deadline:
            raise _Unusable(f"took more than {REQUEST_TIMEOUT} s to answer")
        chunks.append(chunk)
    return b"".join(chunks)


def _json_object(data: bytes) -> bool:
    try:
        return isinstance(json.loads(data), dict)
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class RecurringRun:
    """One recurring run as the build wrote it."""

    display_name: str
    description: str
    pipeline: str
    pipeline_version: str
    cron: str
    max_concurrency: int
    no_catchup: bool
    mode: str
    namespace: str


@dataclass(frozen=True, slots=True)
class Registered:
    """One recurring run as the KFP API holds it."""

    recurring_run_id: str
    display_name: str
    description: str
    pipeline_version_id: str
    cron: str
    max_concurrency: int
    no_catchup: bool
    mode: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one registration did, by display name."""

    kept: tuple[str, ...] = ()
    created: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()


def experiment_name(system: str, environment: str) -> str:
    """The experiment that holds every recurring run mlplane registers for one environment."""
    return f"mlplane-{system}-{environment}"


def desired_runs(resources: Mapping[str, Any]) -> tuple[RecurringRun, ...]:
    """The recurring runs of a build, from its resources (``resources.json``), by name."""
    runs: list[RecurringRun] = []
    for resource in resources.values():
        inputs = resource.get("inputs") or {}
        data = inputs.get("data") or {}
        if inputs.get("kind") != "ConfigMap" or RECURRING_RUN_KEY not in data:
            continue
        runs.append(_parse(json.loads(data[RECURRING_RUN_KEY]), inputs["metadata"]["namespace"]))
    return tuple(sorted(runs, key=lambda run: run.display_name))


def _parse(body: Mapping[str, Any], namespace: str) -> RecurringRun:
    objects = body["pipeline_objects"]
    return RecurringRun(
        display_name=str(body["display_name"]),
        description=str(body.get("description", "")),
        pipeline=str(objects["pipeline"]),
        pipeline_version=str(objects["pipeline_version"]),
        cron=str(body["trigger"]["cron_schedule"]["cron"]),
        max_concurrency=int(body["max_concurrency"]),
        no_catchup=bool(body["no_catchup"]),
        mode=str(body["mode"]),
        namespace=namespace,
    )


class KfpApi:
    """The calls registration makes, on the generated KFP REST client."""

    def __init__(self, endpoint: str, token: str | None) -> None:
        import kfp_server_api  # type: ignore[import-untyped]

        self._models = kfp_server_api
        config = kfp_server_api.Configuration(host=endpoint.rstrip("/"))
        if token:
            config.api_key["authorization"] = token
            config.api_key_prefix["authorization"] = "Bearer"
        self._client = kfp_server_api.ApiClient(config)
        rest = self._client.rest_client
        rest.pool_manager = _BoundedPool(rest.pool_manager)
        self._token = token
        self._experiments = kfp_server_api.ExperimentServiceApi(self._client)
        self._pipelines = kfp_server_api.PipelineServiceApi(self._client)
        self._runs = kfp_server_api.RecurringRunServiceApi(self._client)
        self.endpoint = endpoint

    def close(self) -> None:
        self._client.close()

    def find_experiment(self, name: str, namespace: str) -> str | None:
        """The ID of the experiment named ``name`` in ``namespace``, if there is one."""
        ids: list[str] = []
        for page in self._pages(  # every page: a server may not apply the filter
            "list experiments",
            self._experiments.experiment_service_list_experiments,
            filter=_equals("display_name", name),
            namespace=namespace,
        ):
            ids += [
                self._id("list experiments", "experiment_id", experiment.experiment_id)
                for experiment in page.experiments or ()
                if experiment.display_name == name
            ]
        if len(ids) > 1:
            raise RegistrationError(
                f"the Kubeflow Pipelines API at {self.endpoint} holds {len(ids)} experiments "
                f"named {name!r} in namespace {namespace!r}; mlplane registers into one"
            )
        return ids[0] if ids else None

    def create_experiment(self, name: str, namespace: str, description: str) -> str:
        body = self._models.V2beta1Experiment(
            display_name=name, description=description, namespace=namespace
        )
        made = self._call(
            "create experiment", self._experiments.experiment_service_create_experiment, body
        )
        return self._id("create experiment", "experiment_id", made.experiment_id)

    def pipeline_ids(self, run: RecurringRun) -> tuple[str, str] | None:
        """The IDs of the run's Pipeline and PipelineVersion, or None while either is unknown."""
        pipeline = self._call(
            "get pipeline by name",
            self._pipelines.pipeline_service_get_pipeline_by_name,
            run.pipeline,
            namespace=run.namespace,
            missing_ok=True,
        )
        if pipeline is None or not pipeline.pipeline_id:
            return None
        if pipeline.namespace and pipeline.namespace != run.namespace:
            raise RegistrationError(
                f"get pipeline by name at the Kubeflow Pipelines API {self.endpoint} answered "
                f"Pipeline {run.pipeline!r} of namespace {_short(str(pipeline.namespace))!r}, "
                f"not of {run.namespace!r}; recurring run {run.display_name!r} was not registered"
            )
        pipeline_id = self._id("get pipeline by name", "pipeline_id", pipeline.pipeline_id)
        versions = list(self._versions(pipeline_id))
        # the version's own name first: a display name is free text another version may carry
        for field in ("name", "display_name"):
            for version in versions:
                if getattr(version, field) == run.pipeline_version:
                    found = version.pipeline_version_id
                    return pipeline_id, self._id(
                        "list pipeline versions", "pipeline_version_id", found
                    )
        return None

    def _versions(self, pipeline_id: str) -> Iterator[Any]:
        for page in self._pages(
            "list pipeline versions",
            self._pipelines.pipeline_service_list_pipeline_versions,
            pipeline_id,
        ):
            yield from page.pipeline_versions or ()

    def recurring_runs(self, experiment_id: str, namespace: str) -> list[Registered]:
        found: list[Registered] = []
        for page in self._pages(
            "list recurring runs",
            self._runs.recurring_run_service_list_recurring_runs,
            experiment_id=experiment_id,
            namespace=namespace,
        ):
            try:
                found += [_registered(run) for run in page.recurring_runs or ()]
            except _Unusable as error:
                raise self._unusable("list recurring runs", error) from None
        return found

    def _pages(
        self, what: str, call: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Iterator[Any]:
        """Every page of a listing; refused when the API names a page token twice or more
        than :data:`PAGE_LIMIT` pages."""
        token = ""
        seen: set[str] = set()
        for _ in range(PAGE_LIMIT):
            page = self._call(what, call, *args, page_size=PAGE_SIZE, page_token=token, **kwargs)
            yield page
            token = str(page.next_page_token or "")
            if not token:
                return
            if token in seen:
                raise RegistrationError(
                    f"{what} at the Kubeflow Pipelines API {self.endpoint}: the API named the "
                    f"page token {self._text(token)!r} twice; the listing was not finished"
                )
            seen.add(token)
        raise RegistrationError(
            f"{what} at the Kubeflow Pipelines API {self.endpoint}: still more pages after "
            f"{PAGE_LIMIT} pages of {PAGE_SIZE}; the listing was not finished"
        )

    def create_run(
        self, run: RecurringRun, experiment_id: str, pipeline_id: str, version_id: str
    ) -> None:
        models = self._models
        body = models.V2beta1RecurringRun(
            display_name=run.display_name,
            description=run.description,
            pipeline_version_reference=models.V2beta1PipelineVersionReference(
                pipeline_id=pipeline_id, pipeline_version_id=version_id
            ),
            trigger=models.V2beta1Trigger(cron_schedule=models.V2beta1CronSchedule(cron=run.cron)),
            max_concurrency=str(run.max_concurrency),
            no_catchup=run.no_catchup,
            mode=run.mode,
            experiment_id=experiment_id,  # the run's namespace is the experiment's
        )
        self._call(
            "create recurring run", self._runs.recurring_run_service_create_recurring_run, body
        )

    def delete_run(self, recurring_run_id: str) -> None:
        self._call(
            "delete recurring run",
            self._runs.recurring_run_service_delete_recurring_run,
            recurring_run_id,
            missing_ok=True,
        )

    def _call(
        self, what: str, call: Callable[..., Any], *args: Any, missing_ok: bool = False,
        **kwargs: Any,
    ) -> Any:  # fmt: skip
        from urllib3.exceptions import HTTPError

        try:
            return call(*args, _request_timeout=REQUEST_TIMEOUT, **kwargs)
        except self._models.ApiException as error:
            if missing_ok and error.status == 404:
                return None
            raise RegistrationError(
                f"{what} at the Kubeflow Pipelines API {self.endpoint} failed: HTTP "
                f"{error.status} {self._text(str(error.reason or ''))}"
                f"{self._text(_api_message(error.body))}{self._redirect(error)}"
            ) from None
        except _Unusable as error:
            raise self._unusable(what, error) from None
        except (HTTPError, OSError) as error:
            raise RegistrationError(
                f"{what}: the Kubeflow Pipelines API {self.endpoint} could not be reached "
                f"({self._cause(error)})"
            ) from None
        except (TypeError, ValueError, AttributeError, KeyError) as error:
            # the generated client's reading of a JSON object of the wrong shape
            raise self._unusable(what, _Unusable(f"answered {self._text(str(error))}")) from None

    def _id(self, what: str, field: str, value: Any) -> str:
        try:
            return _id(field, value)
        except _Unusable as error:
            raise self._unusable(what, error) from None

    def _cause(self, error: BaseException) -> str:
        """Why a connection failed: the last attempt's error rather than urllib3's wrapper
        (which names the URL and is cut before the reason), with a word on certificates."""
        from urllib3.exceptions import MaxRetryError, SSLError

        cause = error.reason if isinstance(error, MaxRetryError) and error.reason else error
        text = f"{type(cause).__name__}: {self._text(str(cause))}"
        if isinstance(cause, SSLError):
            text += (
                "; the endpoint's certificate must be valid for its host and signed by a CA "
                "of certifi's bundle (a private CA is not supported yet)"
            )
        return text

    def _unusable(self, what: str, error: _Unusable) -> RegistrationError:
        return RegistrationError(
            f"{what}: the Kubeflow Pipelines API {self.endpoint} {self._text(str(error))}"
        )

    def _redirect(self, error: Any) -> str:
        location = (error.headers or {}).get("Location") if 300 <= error.status <= 399 else None
        if location is None:
            return ""
        return (
            f": redirected to {self._text(str(location))} (not followed; a sign-in page? the "
            f"endpoint must be the API itself, and {TOKEN_VARIABLE} a token it accepts)"
        )

    def _text(self, text: str) -> str:
        """A text of the API, safe to print: :func:`_short`, the token masked."""
        if self._token:
            text = text.replace(self._token, "***")
        return _short(text)


def _equals(key: str, value: str) -> str:
    """A KFP list filter (``v2beta1`` ``Filter``) selecting ``key == value``."""
    return json.dumps(
        {"predicates": [{"key": key, "operation": "EQUALS", "string_value": value}]},
        sort_keys=True,
    )


def _id(field: str, value: Any) -> str:
    """An ID the API answered; a missing one refuses the answer."""
    if not isinstance(value, str) or not value:
        raise _Unusable(f"answered no {field}")
    return value


def _count(field: str, value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        raise _Unusable(
            f"answered a {field} that is not a number: {_short(str(value))!r}"
        ) from None


def _registered(run: Any) -> Registered:
    reference = run.pipeline_version_reference
    version = (reference.pipeline_version_id if reference is not None else None) or (
        run.pipeline_version_id or ""
    )
    cron = run.trigger.cron_schedule.cron if run.trigger and run.trigger.cron_schedule else ""
    return Registered(
        recurring_run_id=_id("recurring_run_id", run.recurring_run_id),
        display_name=str(run.display_name or ""),
        description=str(run.description or ""),
        pipeline_version_id=str(version),
        cron=str(cron or ""),
        max_concurrency=_count("max_concurrency", run.max_concurrency),
        no_catchup=bool(run.no_catchup),
        mode=str(run.mode or ""),
    )


def _api_message(body: Any) -> str:
    try:
        message = json.loads(body).get("message") if body else None
    except (ValueError, AttributeError):
        message = None
    return f": {_short(str(message))}" if message else ""


def _short(text: str) -> str:
    """A text the API sent, made safe to print: its first line, unprintable characters shown
    as escapes, at most 300 characters."""
    from mlplane.compiler.core.safe_read import printable

    return printable(text.splitlines()[0] if text else "")[:300]


def _matches(found: Registered, run: RecurringRun, version_id: str) -> bool:
    return (
        found.pipeline_version_id == version_id
        and found.cron == run.cron
        and found.max_concurrency == run.max_concurrency
        and found.no_catchup == run.no_catchup
        and found.mode == run.mode
        and found.description == run.description
    )


def register(
    api: KfpApi,
    experiment: str,
    namespace: str,
    desired: tuple[RecurringRun, ...],
    echo: Callable[[str], None],
    sleep: Callable[[float], None] | None = None,
) -> Outcome:
    """Make the experiment hold exactly ``desired`` (module docstring)."""
    experiment_id = api.find_experiment(experiment, namespace)
    if experiment_id is None:
        if not desired:
            return Outcome()
        experiment_id = api.create_experiment(
            experiment, namespace, "Recurring runs registered by mlplane apply"
        )
        echo(f"Created Kubeflow Pipelines experiment {experiment} in namespace {namespace}.")
    existing = api.recurring_runs(experiment_id, namespace)
    kept: list[str] = []
    created: list[str] = []
    deleted: list[str] = []
    for run in desired:
        pipeline_id, version_id = _resolve(api, run, sleep or time.sleep)
        same_name = [found for found in existing if found.display_name == run.display_name]
        keep = next((f for f in same_name if _matches(f, run, version_id)), None)
        for found in same_name:
            if found is not keep:
                api.delete_run(found.recurring_run_id)
                deleted.append(found.display_name)
        if keep is None:
            api.create_run(run, experiment_id, pipeline_id, version_id)
            created.append(run.display_name)
        else:
            kept.append(run.display_name)
    wanted = {run.display_name for run in desired}
    for found in existing:
        if found.display_name not in wanted:
            api.delete_run(found.recurring_run_id)
            deleted.append(found.display_name)
    outcome = Outcome(tuple(kept), tuple(created), tuple(deleted))
    _report(outcome, experiment, echo)
    return outcome


def unregister(
    api: KfpApi, experiment: str, namespace: str, echo: Callable[[str], None]
) -> Outcome:
    """Delete every recurring run of the experiment (``destroy``)."""
    experiment_id = api.find_experiment(experiment, namespace)
    if experiment_id is None:
        return Outcome()
    existing = api.recurring_runs(experiment_id, namespace)
    for found in existing:
        api.delete_run(found.recurring_run_id)
    outcome = Outcome(deleted=tuple(found.display_name for found in existing))
    _report(outcome, experiment, echo)
    return outcome


def _resolve(api: KfpApi, run: RecurringRun, sleep: Callable[[float], None]) -> tuple[str, str]:
    for attempt in range(1, LOOKUP_ATTEMPTS + 1):
        ids = api.pipeline_ids(run)
        if ids is not None:
            return ids
        if attempt < LOOKUP_ATTEMPTS:
            sleep(LOOKUP_PAUSE)
    raise RegistrationError(
        f"the Kubeflow Pipelines API {api.endpoint} does not know PipelineVersion "
        f"{run.pipeline_version!r} of Pipeline {run.pipeline!r} in namespace {run.namespace!r} "
        f"(looked up {LOOKUP_ATTEMPTS} times, {LOOKUP_PAUSE:g} s apart), so recurring run "
        f"{run.display_name!r} was not registered: is the API server's pipeline store set to "
        "kubernetes (the Kubernetes-native API mode), and does the endpoint name this cluster?"
    )


def _report(outcome: Outcome, experiment: str, echo: Callable[[str], None]) -> None:
    for verb, names in (
        ("created", outcome.created),
        ("deleted", outcome.deleted),
        ("unchanged", outcome.kept),
    ):
        for name in names:
            echo(f"  Kubeflow recurring run {_short(name)} ({experiment}): {verb}")


# --- the target's deploy steps (compiler/core/plugins.py: after_apply, before_destroy) ----------


def after_apply(
    system: ir.System,
    resources: Mapping[str, Any],
    environ: Mapping[str, str],
    echo: Callable[[str], None],
) -> None:
    """Register the build's recurring runs (none: delete those registered before)."""
    desired = desired_runs(resources)
    api = _api(system, environ, needed=bool(desired), echo=echo)
    if api is None:
        return
    experiment = experiment_name(system.name, system.environment.name)
    echo(f"Registering Kubeflow recurring runs at {api.endpoint}:")
    try:
        register(api, experiment, system.environment.namespace, desired, echo)
    except RegistrationError as error:
        raise DeployStepError(str(error)) from None
    finally:
        api.close()


def before_destroy(
    system: ir.System,
    resources: Mapping[str, Any],
    environ: Mapping[str, str],
    echo: Callable[[str], None],
) -> None:
    """Delete the environment's recurring runs before the pipelines they run go."""
    api = _api(system, environ, needed=bool(desired_runs(resources)), echo=echo)
    if api is None:
        return
    experiment = experiment_name(system.name, system.environment.name)
    try:
        unregister(api, experiment, system.environment.namespace, echo)
    except RegistrationError as error:
        raise DeployStepError(f"{error}; nothing was destroyed") from None
    finally:
        api.close()


def _api(
    system: ir.System, environ: Mapping[str, str], *, needed: bool, echo: Callable[[str], None]
) -> KfpApi | None:
    endpoint = kubernetes_of(system.environment.target_settings).kubeflow_endpoint
    if endpoint is None:
        if needed:  # the build refuses this (kubernetes-kubeflow-endpoint-missing)
            raise DeployStepError(
                "recurring runs were built but the environment names no Kubeflow Pipelines API"
            )
        return None
    try:
        return KfpApi(endpoint, environ.get(TOKEN_VARIABLE) or None)
    except ImportError:
        if needed:
            raise DeployStepError(
                "registering Kubeflow recurring runs needs the Kubeflow Pipelines client "
                "(kfp_server_api), which is not installed: pip install 'mlplane[kubeflow]'"
            ) from None
        echo(
            f"The Kubeflow Pipelines client is not installed: recurring runs registered earlier "
            f"at {endpoint} are not checked (pip install 'mlplane[kubeflow]')."
        )
        return None
