"""The deserialiser's own pieces, in process: the times of a line."""

from __future__ import annotations

import unittest

from contract.times import parse_instant, to_us
from etl.stream import records
from etl.stream.records import instant_us, parse, replay_shape


class InstantTest(unittest.TestCase):
    def test_the_microseconds_of_a_text_are_those_of_contract_times(self) -> None:
        texts = ["2020-03-09T10:14:33Z", "2020-03-09T10:14:33+02:00", "2020-03-09T10:14:33.123456Z",
                 "2020-03-09 10:14:33", "1969-12-31T23:59:59.5Z", " 2020-03-09T10:14:34Z ",
                 "2024-04-11T00:01:05-07:00"]  # fmt: skip
        for text in texts + texts[::-1]:  # each also right after itself and after another
            with self.subTest(text=text):
                self.assertEqual(instant_us(text), to_us(parse_instant(text)))
                self.assertEqual(instant_us(text), to_us(parse_instant(text)))

    def test_a_text_that_is_no_time_raises_even_first(self) -> None:
        records._last = (object(), 0)  # a fresh process: nothing remembered yet
        for bad in ("", "x", None, 5):
            with self.subTest(bad=bad), self.assertRaises((TypeError, ValueError, AttributeError)):
                instant_us(bad)

    def test_a_line_without_a_time_is_a_dead_letter(self) -> None:
        row = parse("f", "0", b'{"ts": "", "sensor": "a", "v": 1}', 0.0, replay_shape(["v"]))
        self.assertIsInstance(row, dict)
        self.assertIn("not an ISO 8601 time", row["reason"])
