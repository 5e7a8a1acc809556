"""The simulator API: `uvicorn api.app:app`. `create_app()` builds it from Settings."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from api.deps import ApiError, Simulation
from api.routes import events, fleet, legacy, readings, stream
from api.settings import Settings

DESCRIPTION = """
"The client's data API", simulated: seeded, reproducible readings of people counters
on store doors and of 8-axis industrial robots, with the ground truth of every
failure, anomaly and drift it injected. A reading is a pure function of
(fleet seed, sensor, time). Errors are 4xx with a `detail` message naming the parameter.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    app = FastAPI(title="Sensor simulator API", version="1.0.0", description=DESCRIPTION)
    app.state.simulation = Simulation.from_settings(settings)
    for module in (legacy, fleet, readings, events, stream):
        app.include_router(module.router)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    return app


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    return JSONResponse({"detail": exc.message}, status_code=exc.status, headers=exc.headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's own 422, with one readable line per problem naming the parameter."""
    lines = []
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"][1:]) or str(err["loc"][0])
        got = f" (got {err['input']!r})" if "input" in err and err["type"] != "missing" else ""
        lines.append(f"{name}: {err['msg']}{got}")
    return JSONResponse({"detail": "; ".join(lines), "errors": jsonable(exc.errors())}, status_code=422)


def jsonable(errors: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in errors]


app = create_app()
