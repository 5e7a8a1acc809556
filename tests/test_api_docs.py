"""/docs and /redoc work offline: every asset they load is served by the API itself (issue 11)."""

from __future__ import annotations

import re
import unittest

from tests.support import ApiServer

# src="...", href="...", spec-url="...", and Swagger UI's `url: '...'`
REFERENCE = re.compile(r"""(?:src|href|spec-url)="([^"]+)"|\burl: '([^']+)'""")
CHROMIUM = "/usr/bin/chromium"  # Debian's; playwright never downloads a browser here
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

    def test_the_pages_may_reach_only_the_api(self) -> None:
        for page in ("/docs", "/redoc"):
            policy = self.server.get(page).headers["content-security-policy"]
            self.assertIn("default-src 'self'", policy)
            self.assertNotRegex(policy, r"https?:|\*")

    def test_a_browser_renders_both_pages_fetching_nothing_from_other_hosts(self) -> None:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            try:
                page = browser.new_page()
                # Every request to another host, with how it ended: only "csp" (refused by the page's
                # policy before any network access) is fine; offline, any other would fail with a DNS error.
                elsewhere: list[tuple[str, str]] = []
                own = (self.server.base, "blob:", "data:")
                page.on(
                    "requestfinished", lambda r: None if r.url.startswith(own) else elsewhere.append((r.url, "sent"))
                )
                page.on(
                    "requestfailed", lambda r: None if r.url.startswith(own) else elsewhere.append((r.url, r.failure))
                )
                for path, rendered in (("/docs", ".opblock-summary"), ("/redoc", "h1")):
                    page.goto(self.server.base + path)
                    page.wait_for_selector(rendered, timeout=30_000)
                    page.wait_for_load_state("networkidle")
                    self.assertIn("Sensor simulator API", page.content(), path)
            finally:
                browser.close()
        self.assertEqual([(url, how) for url, how in elsewhere if how != "csp"], [])  # ReDoc's CDN logo: "csp"


if __name__ == "__main__":
    unittest.main()
