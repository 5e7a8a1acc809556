"""Property-based tests of the API against its own OpenAPI document (issue 16).

Schemathesis generates requests from /openapi.json, valid ones and invalid ones, sends
them to a real uvicorn on 127.0.0.1 and checks every answer: never a 5xx, and status
code, content type, headers and body as the document says. Deterministic (derandomized,
no example database), so a run that passes always passes.
"""

from __future__ import annotations

import datetime as dt
import unittest

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support import ApiServer

# What "conforms to the document" means here. Left out: negative_data_rejection and
# positive_data_acceptance, because the API rightly accepts more than the document's
# formats say (a date without a time, an offset) and rejects valid-looking values the
# document cannot express (an unknown store, a time outside the data window).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = 340  # per test: 1,020 requests a run
PROFILE = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


class OpenApiPropertyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        # A small row cap: a generated decade-long span is a quick 413, not seconds of streaming
        cls.server = cls.enterClassContext(ApiServer(API_MAX_ROWS="20000"))
        cls.schema = schemathesis.openapi.from_url(cls.server.base + "/openapi.json")
        cls.session = requests.Session()
        cls.session.trust_env = False
        cls.addClassCleanup(cls.session.close)

    def check(self, case: schemathesis.Case, seen: dict[str, int]) -> None:
        response = case.call(base_url=self.server.base, session=self.session, timeout=30)
        seen[str(response.status_code)] = seen.get(str(response.status_code), 0) + 1
        case.validate_response(response, checks=CHECKS)

    def exercise(self, strategy: st.SearchStrategy) -> dict[str, int]:
        seen: dict[str, int] = {}

        @PROFILE
        @given(case=strategy)
        def property_holds(case: schemathesis.Case) -> None:
            self.check(case, seen)

        property_holds()
        return seen

    def test_generated_valid_requests_conform(self) -> None:
        seen = self.exercise(self.schema.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE))
        self.assertEqual(sum(seen.values()), EXAMPLES, seen)
        self.assertFalse([code for code in seen if code.startswith("5")], seen)

    def test_generated_valid_requests_with_spans_in_the_data_window_conform(self) -> None:
        # Date-times drawn from all of 0000-9999 rarely land in the data window; these do,
        # so the bulk routes answer rows in every format, not only 422s.
        cases = self.schema.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE)
        seen = self.exercise(st.builds(in_window, cases, WINDOW_STARTS, SPANS))
        self.assertEqual(sum(seen.values()), EXAMPLES, seen)
        self.assertGreater(seen.get("200", 0), EXAMPLES // 2, seen)

    def test_generated_invalid_requests_conform(self) -> None:
        seen = self.exercise(self.schema.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE))
        self.assertEqual(sum(seen.values()), EXAMPLES, seen)
        self.assertGreater(seen.get("422", 0), EXAMPLES // 2, seen)


ZONES = st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=2)), dt.timezone(dt.timedelta(hours=-5, minutes=-30))])
WINDOW_STARTS = st.datetimes(dt.datetime(2013, 1, 1), dt.datetime(2025, 3, 1), timezones=ZONES)
SPANS = st.timedeltas(dt.timedelta(seconds=1), dt.timedelta(days=3))


def in_window(case: schemathesis.Case, start: dt.datetime, span: dt.timedelta) -> schemathesis.Case:
    """The case with start and end (where it has them) replaced by a span of up to 3 days in the window."""
    if case.query and "start" in case.query and "end" in case.query:
        case.query["start"], case.query["end"] = start.isoformat(), (start + span).isoformat()
    return case


if __name__ == "__main__":
    unittest.main()
