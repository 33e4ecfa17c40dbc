"""The models this deployment serves, as Triton's model repository says.

Triton is the one source of truth: the repository index names every model and the state of
each version (READY, LOADING, UNAVAILABLE ...), and each model's config carries what a caller
needs to choose one (task, input size, classes, precision, device) in its ``parameters``
(written by ``objectvision_inference.triton.config_pbtxt``). Adding a model is adding its
folder to the repository (and, under explicit model control, loading it); nothing here lists
models by name.

A request names a model or gets the deployment's default. An unknown name is NotFound with
the known names in the message; a model in the repository that is not ready (loading,
unloaded, failed) is Unavailable with a Retry-After, since it may be ready shortly.
"""

import asyncio
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tritonclient.grpc.aio import InferenceServerClient
from tritonclient.utils import InferenceServerException

from detection_service.pipeline.triton import NOT_READY_RETRY_AFTER_SECONDS
from objectvision_common.errors import NotFound, Unavailable

logger = logging.getLogger(__name__)

READY = "READY"
DETECT_TASK = "detect"
_DEVICES = {"KIND_CPU": "cpu", "KIND_GPU": "gpu"}


@dataclass(frozen=True)
class ModelDescription:
    """What a model version's config says a caller needs to choose it; empty fields when
    the config is not known."""

    task: str = ""
    input_size: int = 0
    classes: tuple[str, ...] = ()
    precision: str = ""
    device: str = ""


@dataclass(frozen=True)
class ServedModel:
    """One model as callers see it. ``version`` is the newest ready version (else the
    newest known); ``description`` comes from its config, empty while Triton has never had
    it loaded while this process watched."""

    name: str
    version: str
    ready: bool
    state: str
    reason: str = ""
    description: ModelDescription = ModelDescription()


def _version_order(version: str) -> tuple[int, str]:
    return (len(version), version)


def describe(config: Mapping[str, Any]) -> ModelDescription:
    """What a model's config (Triton's JSON form) says about it."""
    params = {
        key: str(value.get("string_value", ""))
        for key, value in (config.get("parameters") or {}).items()
    }
    try:
        classes = tuple(str(name) for name in json.loads(params.get("class_names", "[]")))
    except (TypeError, ValueError):
        classes = ()
    kinds = [group.get("kind", "") for group in config.get("instance_group") or []]
    device = params.get("device") or next((_DEVICES[k] for k in kinds if k in _DEVICES), "")
    size = params.get("input_size", "")
    return ModelDescription(
        task=params.get("task", ""),
        input_size=int(size) if size.isdigit() else 0,
        classes=classes,
        precision=params.get("precision", ""),
        device=device,
    )


class ModelCatalog:
    """The repository index (re-read at most every ``refresh_s``, and at once when a name is
    not in it or not ready) and each model version's config (read once)."""

    def __init__(
        self,
        url: str,
        *,
        default_model: str,
        refresh_s: float = 2.0,
        timeout_s: float = 2.0,
    ) -> None:
        self.default_model = default_model
        self._client = InferenceServerClient(url)
        self._refresh_s = refresh_s
        self._timeout_s = timeout_s
        self._index: tuple[float, dict[str, tuple[str, str, str]]] | None = None
        self._described: dict[tuple[str, str], ModelDescription] = {}
        self._lock = asyncio.Lock()

    async def _read_index(self) -> dict[str, tuple[str, str, str]]:
        """name -> (version, state, reason): the newest READY version, else the newest."""
        try:
            answer = await self._client.get_model_repository_index(
                as_json=True, client_timeout=self._timeout_s
            )
        except InferenceServerException as error:
            raise Unavailable(
                "the inference server is unavailable; retry shortly", retry_after_seconds=1
            ) from error
        by_name: dict[str, list[tuple[str, str, str]]] = {}
        for entry in answer.get("models", []):
            state = str(entry.get("state", ""))
            row = (str(entry.get("version", "")), state, str(entry.get("reason", "")))
            by_name.setdefault(str(entry["name"]), []).append(row)
        chosen = {}
        for name, rows in by_name.items():
            ready = [row for row in rows if row[1] == READY]
            chosen[name] = max(ready or rows, key=lambda row: _version_order(row[0]))
        return chosen

    async def _entries(self, *, fresh: bool = False) -> dict[str, tuple[str, str, str]]:
        async with self._lock:
            now = time.monotonic()
            if fresh or self._index is None or now - self._index[0] > self._refresh_s:
                self._index = (now, await self._read_index())
            return self._index[1]

    async def _describe(self, name: str, version: str) -> ModelDescription | None:
        """The config of a loaded version (cached: a version's config does not change)."""
        known = self._described.get((name, version))
        if known is not None:
            return known
        try:
            answer = await self._client.get_model_config(
                name, model_version=version, as_json=True, client_timeout=self._timeout_s
            )
        except InferenceServerException as error:
            logger.debug("model config unavailable", extra={"model": name, "error": str(error)})
            return None
        described = describe(answer.get("config", {}))
        self._described[(name, version)] = described
        return described

    def _last_described(self, name: str) -> ModelDescription | None:
        versions = [v for (n, v) in self._described if n == name]
        if not versions:
            return None
        return self._described[(name, max(versions, key=_version_order))]

    async def _model(self, name: str, row: tuple[str, str, str]) -> ServedModel | None:
        """The model, or None when it is not a detection model (a TensorRT pipeline's
        helper models share the repository)."""
        version, state, reason = row
        ready = state == READY
        described = await self._describe(name, version) if ready else self._last_described(name)
        if described is not None and described.task != DETECT_TASK:
            return None
        if described is None:
            # Loaded but its config unreadable just now, or never seen loaded: not usable yet.
            why = reason or ("its config could not be read" if ready else "")
            return ServedModel(name, version, False, state or "UNKNOWN", why)
        return ServedModel(
            name=name,
            version=version,
            ready=ready,
            state=state,
            reason=reason,
            description=described,
        )

    async def list_models(self) -> list[ServedModel]:
        """Every detection model of the repository, by name, ready or not (index read now)."""
        entries = await self._entries(fresh=True)
        models = [await self._model(name, row) for name, row in sorted(entries.items())]
        return [model for model in models if model is not None]

    def _unknown(self, name: str, known: Sequence[str]) -> NotFound:
        listed = ", ".join(known) or "none"
        return NotFound(
            f"unknown model {name!r}; this deployment serves: {listed}", code="unknown_model"
        )

    async def resolve(self, name: str | None) -> ServedModel:
        """The ready model a request names (empty: the default), or the error to answer."""
        wanted = (name or "").strip() or self.default_model
        entries = await self._entries()
        if wanted not in entries or entries[wanted][1] != READY:
            entries = await self._entries(fresh=True)
        row = entries.get(wanted)
        model = await self._model(wanted, row) if row is not None else None
        if model is None:
            known = [m.name for m in await self.list_models()]
            raise self._unknown(wanted, known)
        if not model.ready or not model.description.task:
            state = model.state.lower() or "not ready"
            why = f": {model.reason}" if model.reason else ""
            error = Unavailable(
                f"model {wanted!r} is not ready ({state}{why}); retry shortly",
                retry_after_seconds=NOT_READY_RETRY_AFTER_SECONDS,
            )
            error.code = "model_not_ready"
            raise error
        return model

    async def close(self) -> None:
        await self._client.close()
