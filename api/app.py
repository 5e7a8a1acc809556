"""The simulator API: `uvicorn api.app:app`. `create_app()` builds it from Settings."""

from __future__ import annotations

import sys

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline

from api import openapi
from api.auth import ApiKeyGate
from api.deps import ApiError, Simulation, shown
from api.docs import DocsPolicy
from api.routes import events, fleet, legacy, readings, stream
from api.settings import Settings
from api.simulate.replay import Catalogue

DESCRIPTION = """
"The client's data API", simulated: seeded, reproducible readings of people counters
on store doors and of 8-axis industrial robots, with the ground truth of every
failure, anomaly and drift it injected. A reading is a pure function of
(fleet seed, sensor, time). Errors are 4xx (503 when too many answers stream at once) with a
`detail` message naming the parameter.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    # FastAPIOffline: /docs and /redoc load Swagger UI and ReDoc from this API (/static-offline-docs),
    # not from a CDN, so the docs work on a machine without internet access.
    # validatorUrl None: Swagger UI would otherwise send the document to an online validator.
    app = FastAPIOffline(
        title="Sensor simulator API",
        version="1.0.0",
        description=DESCRIPTION,
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.state.simulation = Simulation.from_settings(settings)
    # Named at start-up (their files load on first use): a path that does not exist, or two
    # files making one replay, stop the server in one line, not every replay request with a 500.
    app.state.replays = Catalogue.scan(settings.replay_paths)
    for module in (legacy, fleet, readings, events, stream):
        app.include_router(module.router)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(DocsPolicy)
    if settings.api_key:
        app.add_middleware(ApiKeyGate, key=settings.api_key)
    sim = app.state.simulation
    stores, robots = [s.name for s in sim.fleet.stores], [r.id for r in sim.fleet.units]
    openapi.install(app, bool(settings.api_key), {"store": stores, "store_name": stores, "robot_id": robots})
    answer_head(app)
    return app


def answer_head(app: FastAPI) -> None:
    """HEAD wherever GET works (HTTP says so; FastAPI answers 405).

    The document is built first, so it lists each operation once, as GET. uvicorn sends no
    body to a HEAD; a bulk answer does not even generate one (BulkStream)."""
    app.openapi()
    for route in app.routes:
        if isinstance(route, APIRoute) and "GET" in route.methods:
            route.methods.add("HEAD")


def app_from_env() -> FastAPI:
    """The app `uvicorn api.app:app` imports: a bad setting is one line on stderr and exit code 2."""
    try:
        return create_app(Settings.from_env())
    except ValueError as exc:  # a bad setting, or a bad fleet file (FleetError)
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=exc.headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's own 422, with one readable line per problem naming the parameter."""
    lines = []
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"][1:]) or str(err["loc"][0])
        got = f" (got {shown(err['input'])})" if "input" in err and err["type"] != "missing" else ""
        lines.append(f"{name}: {err['msg']}{got}")
    return JSONResponse({"detail": "; ".join(lines), "errors": jsonable(exc.errors())}, status_code=422)


def jsonable(errors: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in errors]


app = app_from_env()
