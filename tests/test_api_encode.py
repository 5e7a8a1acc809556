"""Encoders and decoders on awkward tables: nulls, quotes, empty answers, chunk boundaries."""

from __future__ import annotations

import datetime as dt
import unittest

import pyarrow as pa

from api.encode import encode
from api.routes.events import clip_to_clock
from contract.schemas import DOOR_READINGS, EVENTS, events_table
from etl.wire import FORMATS, decode

UTC = dt.UTC


def doors(rows: list[tuple]) -> pa.Table:
    cols = list(zip(*rows, strict=True)) if rows else [[], [], [], []]
    return pa.Table.from_arrays([pa.array(c, f.type) for c, f in zip(cols, DOOR_READINGS, strict=True)],
                                schema=DOOR_READINGS)  # fmt: skip


class EncodeTest(unittest.TestCase):
    def round_trip(self, chunks: list[pa.Table], schema: pa.Schema) -> dict[str, pa.Table]:
        return {fmt: decode(b"".join(encode(iter(chunks), schema, fmt)), fmt, schema) for fmt in FORMATS}

    def test_awkward_values_survive_every_format(self) -> None:
        t0 = dt.datetime(2024, 7, 1, 8, tzinfo=UTC)
        first = doors([(t0, 'Le "Grand" Store', 0, None), (t0, "Back\\slash, comma", 1, 0)])
        second = doors([(t0 + dt.timedelta(hours=1), "Zürich", 2, 2_000_000_000)])
        expected = pa.concat_tables([first, second])
        for fmt, table in self.round_trip([first, doors([]), second], DOOR_READINGS).items():
            with self.subTest(fmt=fmt):
                self.assertTrue(table.equals(expected), table.to_pylist())

    def test_empty_answers_decode_to_empty_tables(self) -> None:
        for fmt, table in self.round_trip([], DOOR_READINGS).items():
            with self.subTest(fmt=fmt):
                self.assertEqual(table.num_rows, 0)
                self.assertEqual(table.schema, DOOR_READINGS)
        self.assertEqual(b"".join(encode(iter([]), DOOR_READINGS, "json")), b"[]\n")

    def test_a_json_array_in_any_layout_decodes(self) -> None:
        body = b'[{"ts": "2024-07-01T08:00:00Z", "store": "Roma", "sensor_id": 1, "count": null}]'
        self.assertEqual(decode(body, "json", DOOR_READINGS).to_pylist()[0]["count"], None)
        with self.assertRaisesRegex(ValueError, "store"):
            decode(b'[{"ts": "2024-07-01T08:00:00Z"}]', "json", DOOR_READINGS)
        with self.assertRaisesRegex(ValueError, "format"):
            decode(b"", "xml", DOOR_READINGS)

    def test_events_running_at_the_clock_end_there_and_say_so(self) -> None:
        us = 3_600_000_000
        table = events_table(
            {"kind": ["doors"] * 3, "id": ["Paris/1", "Paris/2", "Paris/3"], "start": [0, 5 * us, 9 * us],
             "end": [2 * us, 12 * us, 10 * us], "type": ["failure"] * 3, "level": ["failed"] * 3}
        )  # fmt: skip
        clipped = clip_to_clock(table, 8 * us).to_pylist()
        self.assertEqual([e["id"] for e in clipped], ["Paris/1", "Paris/2"])
        self.assertEqual([e["ongoing"] for e in clipped], [False, True])
        self.assertEqual(clipped[1]["end"], dt.datetime(1970, 1, 1, 8, tzinfo=UTC))
        self.assertEqual(clip_to_clock(table, 8 * us).schema, EVENTS)


if __name__ == "__main__":
    unittest.main()
