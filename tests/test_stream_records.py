"""The reading of lines, in process: the times of a line, the batches and cursors of an API stream."""

from __future__ import annotations

import unittest

from contract.times import parse_instant, to_us
from etl.stream import records
from etl.stream.records import Shape, instant_us, parse, replay_shape
from etl.stream.source import TS_PREFIX, Cursor, HttpPartition, HttpSpec


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


def ts_of(line: bytes) -> str | None:
    m = TS_PREFIX.match(line)
    return m.group(1).decode() if m else None


def advance(cursor: Cursor, ts: str | None) -> Cursor:
    """The cursor after one more line: a line without a readable ts counts in the current instant."""
    if ts is None or ts == cursor.instant:
        return Cursor(cursor.since, cursor.instant, cursor.n + 1)
    return Cursor(cursor.instant if cursor.instant is not None else cursor.since, ts, 1)


def reference_batches(name: str, chunks: list[bytes], cursor: Cursor) -> list:
    """HttpPartition._batches as it read before its loop was inlined: a line at a time, plainly."""
    skip, skipping_ts = cursor.n, cursor.instant
    pending, out = b"", []
    for chunk in chunks:
        *lines, pending = (pending + chunk).split(b"\n")
        batch = []
        for line in lines:
            if not line.strip():
                continue
            ts = ts_of(line)
            if skip:
                if ts is not None and ts != skipping_ts:
                    skip = 0
                else:
                    skip -= 1
                    continue
            cursor = advance(cursor, ts)
            batch.append((name, f"{cursor.instant}#{cursor.n}", line))
        if batch:
            out.append((cursor, batch))
    return out


class HttpBatchesTest(unittest.TestCase):
    def test_lines_positions_and_cursors_are_those_of_cursor_advance_from_any_resume_point(self) -> None:
        stamps = ["2025-01-01T00:00:00Z"] * 3 + ["2025-01-01T00:00:10Z"] + ["2025-01-01T00:00:20Z"] * 2
        lines = [b'{"ts": "%s", "robot_id": "r%d", "v": 1}' % (t.encode(), i) for i, t in enumerate(stamps)]
        lines[4:4] = [b"   ", b'{"robot_id": "no-ts"}', b"not json"]
        data = b"\n".join(lines) + b"\n"
        partition = HttpPartition.__new__(HttpPartition)  # no reader thread: only the batching
        partition.spec = HttpSpec("robots", "", {}, True, None)
        resumes = [Cursor(None, None, 0), Cursor(None, stamps[0], 2), Cursor(stamps[0], stamps[3], 1),
                   Cursor(stamps[3], stamps[4], 1), Cursor(None, "2024-12-31T00:00:00Z", 5)]  # fmt: skip
        for resume in resumes:
            for size in (7, 64, len(data)):  # pieces cut anywhere, even inside a line
                chunks = [data[i : i + size] for i in range(0, len(data), size)]
                with self.subTest(resume=resume, size=size):
                    got = [(c, [item[:3] for item in b]) for c, b in partition._batches(iter(chunks), resume)]
                    self.assertEqual(got, reference_batches("robots", chunks, resume))
                    self.assertTrue(got or resume.n)


class ParseTest(unittest.TestCase):
    def test_keys_values_and_reasons(self) -> None:
        doors = Shape("doors", ("store", "sensor_id"), ("count",))
        one = replay_shape(["v", "w"])
        r = parse("f", "1", b'{"ts": "2025-01-01T00:00:00Z", "sensor": 53, "v": 1, "w": null}', 0.5, one)
        self.assertEqual(
            (r.sensor, r.ts_us, r.values, r.received, r.pos), ("53", 1735689600000000, (1.0, None), 0.5, "1")
        )
        r = parse("f", "2", b'{"ts": "2025-01-01T00:00:00Z", "store": "a", "sensor_id": 3, "count": 4}', 0.0, doors)
        self.assertEqual((r.sensor, r.values), ("a/3", (4.0,)))
        reasons = {
            b'{"ts": "2025-01-01T00:00:00Z", "v": 1, "w": 2}': "sensor: sensor missing or not text",
            b'{"ts": "2025-01-01T00:00:00Z", "sensor": true, "v": 1, "w": 2}': "sensor: sensor missing or not text",
            b'{"ts": "2025-01-01T00:00:00Z", "sensor": "a", "v": true, "w": 2}': "v: expected a number, got True",
            b'{"ts": "2025-01-01T00:00:00Z", "sensor": "a", "v": 1, "w": "2"}': "w: expected a number, got '2'",
            b"[1, 2]": "not a JSON object but list",
            b"{": "malformed JSON",
        }
        for line, reason in reasons.items():
            with self.subTest(line=line):
                row = parse("f", "3", line, 0.0, one)
                self.assertIsInstance(row, dict)
                self.assertTrue(row["reason"].startswith(reason), row["reason"])
                self.assertEqual((row["key"], row["raw"]), ("f@3", line.decode()))
