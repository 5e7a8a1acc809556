"""The model registry: MLflow's, on a SQLite file in the lake (LAKE/_mlflow/mlflow.db, artefacts beside it).

A registered version keeps the model's files (baseline.py's model.txt and baseline.json) as the
artefacts of an MLflow run whose parameters, metrics and `data_version` tag say what it was
trained with and how it scored; versions are numbered by MLflow and never change. mlflow-skinny
(not mlflow) because mlflow caps pyarrow below the 26 we pin; its SQL store uses the SQLAlchemy
and Alembic that Airflow brings. `make up` serves the same registry in MLflow's UI: the full mlflow
3.17.2 (the same store format) in an environment of its own, `.venv-mlflow` (requirements-mlflow.txt).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from etl.quality.baseline import Baseline

# MLflow reports usage to its makers unless told not to; this platform sends nothing out.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
EXPERIMENT = "detectors"
# MLflow and Alembic log every schema step at INFO on stderr: a command prints one line, or one error
for _name in ("mlflow", "alembic"):
    logging.getLogger(_name).setLevel(logging.WARNING)


class RegistryError(RuntimeError):
    """The registry's store failed (MLflow's own error, in one line)."""


@contextlib.contextmanager
def store_errors(root: Path) -> Iterator[None]:
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RegistryError(f"model registry {root}: {message}") from exc


@dataclass(frozen=True)
class Version:
    name: str
    version: int
    run_id: str
    params: dict[str, str]
    metrics: dict[str, float]
    data_version: str
    created_ms: int

    def line(self) -> str:
        shown = ", ".join(f"{k} {v:.3f}" for k, v in sorted(self.metrics.items()) if k in ("f1", "nab_standard"))
        return f"{self.name} v{self.version}: data {self.data_version}; {shown}"


class Registry:
    def __init__(self, lake_root: str) -> None:
        if "://" in lake_root:
            raise ValueError(f"the model registry needs a local lake folder, not {lake_root}")
        self.root = Path(lake_root).resolve() / "_mlflow"
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from mlflow import MlflowClient  # seconds to import: only the commands that use it pay

            self.root.mkdir(parents=True, exist_ok=True)
            uri = f"sqlite:///{self.root / 'mlflow.db'}"
            self._client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        return self._client

    def _experiment(self) -> str:
        found = self.client.get_experiment_by_name(EXPERIMENT)
        if found:
            return found.experiment_id
        return self.client.create_experiment(EXPERIMENT, artifact_location=(self.root / "artifacts").as_uri())

    def register(self, name: str, model: Baseline, metrics: dict[str, float], data_version: str) -> Version:
        """A new version of `name`: the model's files, parameters, metrics and data version."""
        from dataclasses import asdict

        c = self.client
        run = c.create_run(self._experiment(), tags={"data_version": data_version, "model": name})
        run_id = run.info.run_id
        try:
            for key, value in asdict(model.params).items():
                c.log_param(run_id, key, value)
            c.log_param(run_id, "columns", ",".join(model.columns))
            for key, value in metrics.items():
                if value == value:  # MLflow stores no NaN usefully: an undefined metric is left out
                    c.log_metric(run_id, key, float(value))
            with tempfile.TemporaryDirectory() as tmp:
                model.save(Path(tmp))
                c.log_artifacts(run_id, tmp, artifact_path="model")
            c.set_terminated(run_id)
        except Exception:
            c.set_terminated(run_id, status="FAILED")
            raise
        if not c.search_registered_models(filter_string=f"name = '{name}'"):
            c.create_registered_model(name)
        made = c.create_model_version(name, source=f"{run.info.artifact_uri}/model", run_id=run_id,
                                      tags={"data_version": data_version})  # fmt: skip
        return self.show(name, int(made.version))

    def versions(self) -> list[Version]:
        """Every version of every model, by name then version."""
        found = self.client.search_model_versions()
        return sorted((self._version(v) for v in found), key=lambda v: (v.name, v.version))

    def show(self, name: str, version: int | None = None) -> Version:
        """A version of a model (None: its newest)."""
        mine = [v for v in self.client.search_model_versions(f"name = '{name}'")]
        if not mine:
            raise ValueError(f"no model {name!r} in the registry {self.root}")
        if version is None:
            return self._version(max(mine, key=lambda v: int(v.version)))
        for v in mine:
            if int(v.version) == version:
                return self._version(v)
        raise ValueError(f"model {name!r} has no version {version} (has {sorted(int(v.version) for v in mine)})")

    def load(self, name: str, version: int | None = None) -> Baseline:
        """The model of a version, ready to predict."""
        found = self.show(name, version)
        with tempfile.TemporaryDirectory(prefix="model-") as target:
            folder = Path(self.client.download_artifacts(found.run_id, "model", target))
            return Baseline.load(folder, f"{name}@{found.version}", found.data_version)  # read whole: the folder may go

    def _version(self, v) -> Version:
        run = self.client.get_run(v.run_id)
        return Version(
            name=v.name,
            version=int(v.version),
            run_id=v.run_id,
            params=dict(run.data.params),
            metrics=dict(run.data.metrics),
            data_version=run.data.tags.get("data_version", ""),
            created_ms=int(v.creation_timestamp),
        )


def parse_ref(text: str) -> tuple[str, int | None]:
    """`name` or `name@version`."""
    name, _, version = text.partition("@")
    if not name or (version and not version.isdigit()):
        raise ValueError(f"{text!r} is not a model reference such as skab-lightgbm or skab-lightgbm@2")
    return name, int(version) if version else None
