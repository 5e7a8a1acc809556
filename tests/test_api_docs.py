"""/docs and /redoc work offline: every asset they load is served by the API itself (issue 11)."""

from __future__ import annotations

import re
import unittest

from tests.support import ApiServer

# src="...", href="...", spec-url="...", and Swagger UI's `url: '...'`
REFERENCE = re.compile(r"""(?:src|href|spec-url)="([^"]+)"|\burl: '([^']+)'""")
CONTENT_TYPES = {".css": "text/css", ".js": "javascript", ".png": "image/png", ".json": "application/json"}


class OfflineDocsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = cls.enterClassContext(ApiServer())

    def test_docs_pages_reference_only_the_api_itself(self) -> None:
        for page in ("/docs", "/redoc"):
            with self.subTest(page=page):
                r = self.server.get(page)
                self.assertEqual(r.status_code, 200)
                self.assertTrue(r.headers["content-type"].startswith("text/html"))
                self.assertNotRegex(r.text, r"(?i)https?://|//[a-z0-9.-]+\.[a-z]{2,}/")  # no other host, no CDN
                urls = [a or b for a, b in REFERENCE.findall(r.text)]
                self.assertGreaterEqual(len(urls), 3, urls)  # a script, a favicon, the document
                for url in urls:
                    self.assertTrue(url.startswith("/"), url)
                    asset = self.server.get(url)
                    self.assertEqual(asset.status_code, 200, url)
                    suffix = url[url.rindex(".") :]
                    self.assertIn(CONTENT_TYPES[suffix], asset.headers["content-type"], url)
                    self.assertGreater(len(asset.content), 100, url)

    def test_swagger_ui_sends_the_document_to_no_online_validator(self) -> None:
        self.assertIn('"validatorUrl": null', self.server.get("/docs").text)


if __name__ == "__main__":
    unittest.main()
