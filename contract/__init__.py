"""The wire contract between the client's data API (or our simulator) and everything downstream.

Schemas of each data set, time parsing and the column map of recorded files. `api/`, `etl/`
and `dashboard/` import it; it imports none of them, so the loader and the dashboard deploy
without the simulator beside them.
"""
