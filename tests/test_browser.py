"""map.html and report.html in a real headless Chromium, from file://, offline.

The browser is driven over the Chrome DevTools Protocol on a pipe
(``--remote-debugging-pipe``), so the tests need Chromium and nothing else: no
driver, no websocket library, no port. Networking is cut twice: a dead proxy
and DevTools' offline emulation; every request the pages make is recorded.
Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lifecircle.maps import render_map
from lifecircle.report import render_report

from .test_maps import PAYLOAD, inject_names, run_demo

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--mute-audio",
    "--hide-scrollbars",
    "--proxy-server=127.0.0.1:9",
    "--remote-debugging-pipe",
)
READY = "document.documentElement.getAttribute('data-lc-ready') === '1'"
VIEWPORT = {"width": 1280, "height": 860, "deviceScaleFactor": 1, "mobile": False}


def find_chromium() -> str | None:
    """Chromium from LIFECIRCLE_CHROMIUM or the PATH."""
    candidates = [os.environ.get("LIFECIRCLE_CHROMIUM", "")]
    candidates += [shutil.which(n) or "" for n in ("chromium", "chromium-browser", "chrome")]
    return next((c for c in candidates if c and Path(c).exists()), None)


class Browser:
    """A headless Chromium driven over DevTools messages on fds 3 (in) and 4 (out)."""

    def __init__(self, executable: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="lifecircle-chromium-")
        child_in, self._out = os.pipe()
        self._in, child_out = os.pipe()

        def remap() -> None:  # runs in the child: Chromium expects fds 3 and 4
            a, b = os.dup(child_in), os.dup(child_out)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.process = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            preexec_fn=remap,
            close_fds=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(child_in)
        os.close(child_out)
        self._buffer = b""
        self._last_id = 0
        self.events: list[dict[str, Any]] = []

    def _send(self, method: str, params: dict[str, Any] | None, session: str | None) -> int:
        self._last_id += 1
        message: dict[str, Any] = {"id": self._last_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        return self._last_id

    def _receive(self, timeout: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._in], [], [], timeout)
            if not ready:
                raise TimeoutError("Chromium did not answer")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed its DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = 30,
    ) -> dict[str, Any]:
        """Send one command and return its result; events received meanwhile are kept."""
        wanted = self._send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            message = self._receive(max(0.01, deadline - time.monotonic()))
            if message.get("id") == wanted:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)
            if message.get("method") == "Page.javascriptDialogOpening":
                # record it and close it, so that an alert cannot block the test
                self._send("Page.handleJavaScriptDialog", {"accept": True}, message["sessionId"])

    def close(self) -> None:
        with contextlib.suppress(TimeoutError, RuntimeError, OSError):
            self.call("Browser.close", timeout=5)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        os.close(self._out)
        os.close(self._in)
        shutil.rmtree(self.profile, ignore_errors=True)


class Tab:
    """One page of the browser, offline, with every request recorded."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        attached = browser.call("Target.attachToTarget", {"targetId": self.target, "flatten": True})
        self.session = attached["sessionId"]
        for domain in ("Page.enable", "Runtime.enable", "Network.enable"):
            self.call(domain)
        self.call(
            "Network.emulateNetworkConditions",
            {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
        self.call("Emulation.setDeviceMetricsOverride", VIEWPORT)

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.call(method, params, self.session)

    def open(self, path: Path) -> None:
        self.call("Page.navigate", {"url": path.resolve().as_uri()})
        self.wait_for("document.readyState === 'complete'")

    def js(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise RuntimeError(json.dumps(result["exceptionDetails"])[:2000])
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.js(f"Boolean({expression})"):
                return
            time.sleep(0.05)
        raise TimeoutError(expression)

    def click(self, x: float, y: float) -> None:
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
            )

    def hover(self, x: float, y: float) -> None:
        self.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        path = ARTIFACTS / name
        path.write_bytes(base64.b64decode(data))
        return path

    def events(self, method: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.browser.events
            if e.get("method") == method and e.get("sessionId") == self.session
        ]

    def network_requests(self) -> list[str]:
        """URLs requested over a network scheme (not file: or data:)."""
        urls = [e["params"]["request"]["url"] for e in self.events("Network.requestWillBeSent")]
        return [u for u in urls if not u.startswith(("file:", "data:", "about:"))]

    def errors(self) -> list[str]:
        return [
            json.dumps(e["params"]["exceptionDetails"])[:500]
            for e in self.events("Runtime.exceptionThrown")
        ]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = find_chromium()
    if executable is None:
        pytest.skip("Chromium not found (apt-get install chromium, or set LIFECIRCLE_CHROMIUM)")
    instance = Browser(executable)
    try:
        instance.call("Browser.getVersion", timeout=60)
        yield instance
    finally:
        instance.close()


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo results with a hostile compound and facility name, map and report written."""
    out = run_demo(tmp_path_factory.mktemp("browser-demo"))
    inject_names(out)
    render_map(out, basemap="none", self_contained=True)
    render_report(out)
    return out


@pytest.fixture
def tab(browser: Browser) -> Iterator[Tab]:
    page = Tab(browser)
    yield page
    browser.call("Target.closeTarget", {"targetId": page.target})


def centre_of(tab: Tab, layer: str, index: int) -> tuple[float, float]:
    """Viewport centre of feature ``index`` of a GeoJSON layer, scrolled into view."""
    return tab.js(
        f"""(() => {{
        let target = null;
        window.lifecircle.layers.{layer}.eachLayer(l => {{
            if (l.feature.properties.k === {index}) target = l;
        }});
        window.lifecircle.map.setView(target.getBounds().getCenter(), 17, {{animate: false}});
        const box = target.getElement().getBoundingClientRect();
        return [box.x + box.width / 2, box.y + box.height / 2];
    }})()"""
    )


def test_map_renders_every_layer_offline(tab: Tab, outputs: Path):
    tab.open(outputs / "map.html")
    tab.wait_for(READY)
    counts = tab.js("window.lifecircle.counts")
    assert counts["compounds"] == 66
    assert counts["gaps"] == 5 and counts["gates"] == 143 and counts["facilities"] == 179
    assert counts["isochrones"] == {"5": 66, "10": 66, "15": 66}
    assert tab.js("document.querySelectorAll('path.lc-compound').length") == 66
    assert tab.js("document.querySelectorAll('path.lc-gap').length") == 5
    assert tab.js("document.querySelectorAll('path.lc-iso').length") == 0  # off by default
    legend = tab.js("document.querySelector('.lc-legend').innerText")
    assert "小区得分" in legend and "服务盲区影响人口" in legend
    assert tab.js("document.querySelectorAll('.lc-legend .fa-bus').length") == 1
    assert tab.js("document.querySelector('.leaflet-control-scale') !== null")
    assert tab.js("document.querySelector('.lc-fullscreen a') !== null")
    assert "合成示例数据" in tab.js("document.querySelector('.lc-title').innerText")
    assert tab.js("document.querySelectorAll('.marker-cluster, .lc-poi').length") > 0
    # the icon font is really there: a glyph of the solid face renders
    assert tab.js("document.fonts.check('900 12px \"Font Awesome 6 Free\"')")
    tab.screenshot("map-overview.png")
    labels = tab.js(
        "[...document.querySelectorAll('.leaflet-control-layers-overlays label')]"
        ".map(l => l.innerText.trim())"
    )
    position = labels.index("15 分钟等时圈")
    tab.js(
        f"document.querySelectorAll('.leaflet-control-layers-overlays input')[{position}].click()"
    )
    tab.wait_for("document.querySelectorAll('path.lc-iso-15').length === 66")
    tab.screenshot("map-isochrones-15.png")
    assert tab.network_requests() == []
    assert tab.errors() == []


def test_clicking_a_compound_opens_its_scorecard(tab: Tab, outputs: Path):
    tab.open(outputs / "map.html")
    tab.wait_for(READY)
    k = tab.js(
        "window.lifecircle.layers.compounds.getLayers()"
        ".find(l => l.feature.properties.i === 'C002').feature.properties.k"
    )
    tab.click(*centre_of(tab, "compounds", k))
    tab.wait_for("document.querySelector('.leaflet-popup-content')")
    text = tab.js("document.querySelector('.leaflet-popup-content').innerText")
    assert text.splitlines()[0] == "示例·瑞景名苑"
    import geopandas as gpd

    frame = gpd.read_file(outputs / "communities.gpkg", layer="communities")
    score = frame.set_index("community_id").loc["C002", "score"]
    assert "C002" in text and f"得分 {score:g} / 100" in text
    assert "十五分钟生活圈\t未达标" in text
    assert "养老" in text and "✗ 缺失" in text and "≤ 15 分钟" in text
    button = tab.js(
        "(() => { const r = document.querySelector('.lc-iso-btn').getBoundingClientRect();"
        " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
    )
    tab.click(*button)
    tab.wait_for("document.querySelectorAll('path.lc-iso-selected').length === 3")
    assert tab.js("document.querySelector('.lc-iso-btn').classList.contains('on')")
    assert tab.js("document.querySelectorAll('.leaflet-popup').length") == 1  # still open
    time.sleep(0.3)  # let the popup finish fading in
    tab.screenshot("map-scorecard.png")
    assert tab.errors() == []


def test_a_gap_popup_is_put_together_when_it_opens(tab: Tab, outputs: Path):
    import geopandas as gpd

    tab.open(outputs / "map.html")
    tab.wait_for(READY)
    tab.js("(() => { window.lifecircle.layers.gaps.getLayers()[0].openPopup(); return 1; })()")
    tab.wait_for("document.querySelector('.leaflet-popup-content')")
    text = tab.js("document.querySelector('.leaflet-popup-content').innerText")
    first = gpd.read_file(outputs / "gaps.gpkg", layer="gaps").iloc[0]
    assert text.splitlines()[1] == first["gap_id"]
    assert f"{int(first['population']):,}" in text and "影响人口" in text
    assert tab.errors() == []


def test_hostile_names_show_as_text_and_run_nothing(tab: Tab, outputs: Path):
    tab.open(outputs / "map.html")
    tab.wait_for(READY)
    tab.click(*centre_of(tab, "compounds", 0))  # C001 carries the payload
    tab.wait_for("document.querySelector('.leaflet-popup-content')")
    popup = tab.js("document.querySelector('.leaflet-popup-content').innerText")
    assert popup.splitlines()[0] == PAYLOAD
    assert tab.js("document.querySelectorAll('.leaflet-popup-content img').length") == 0
    tab.js("void window.lifecircle.map.closePopup()")
    x, y = centre_of(tab, "compounds", 0)
    tab.hover(x + 1, y + 1)
    tab.wait_for("document.querySelector('.leaflet-tooltip')")
    assert tab.js("document.querySelector('.leaflet-tooltip').innerText").startswith(PAYLOAD)
    assert tab.js("document.querySelectorAll('img[src=\"x\"]').length") == 0
    time.sleep(0.3)  # an onerror handler would fire now
    tab.screenshot("map-hostile-name.png")
    assert tab.events("Page.javascriptDialogOpening") == []
    assert tab.errors() == []


def test_hostile_facility_name_shows_as_text(tab: Tab, outputs: Path):
    tab.open(outputs / "map.html")
    tab.wait_for(READY)
    marker = (
        "window.lifecircle.layers.facilities.getLayers()"
        ".find(m => m.getTooltip().getContent().startsWith('&lt;img'))"
    )
    tab.js(f"void window.lifecircle.map.setView({marker}.getLatLng(), 19, {{animate: false}})")
    tab.wait_for(f"{marker}._map")  # unclustered at this zoom
    tab.js(f"void {marker}.openPopup()")
    tab.wait_for(f"{marker}.isPopupOpen()")
    facility = tab.js(f"{marker}.getPopup().getElement().innerText")
    assert facility.splitlines()[0] == PAYLOAD
    assert "{{ 7*7 }}" in facility
    assert tab.js("document.querySelectorAll('.leaflet-popup-content img').length") == 0
    time.sleep(0.3)
    tab.screenshot("map-hostile-facility.png")
    assert tab.events("Page.javascriptDialogOpening") == []
    assert tab.errors() == []


def test_report_shows_its_sections_and_the_inline_map(tab: Tab, outputs: Path):
    tab.open(outputs / "report.html")
    headings = tab.js("[...document.querySelectorAll('h2')].map(h => h.innerText)")
    assert headings[:5] == ["概览", "数据完整性", "研究范围总图", "研究参数", "标准与阈值来源"]
    assert "一张图：各社区概况" in headings and "老年人免费接驳车" in headings
    assert "交互地图" in headings
    assert tab.js("document.querySelectorAll('svg.chart').length") == 2
    # the two walking speeds are assumptions: the study's and the shuttle's (elderly)
    assert tab.js("document.querySelectorAll('.status.unconfirmed').length") == 2
    frame = "document.querySelector('iframe.map-frame').contentWindow"
    tab.wait_for(f"{frame}.lifecircle && {frame}.lifecircle.counts.compounds === 66")
    assert tab.js(f"{frame}.document.querySelectorAll('path.lc-compound').length") == 66
    matrix = tab.js("document.querySelector('table.matrix').innerText")
    assert html.unescape(PAYLOAD) in matrix
    assert tab.js("document.querySelectorAll('table.matrix img').length") == 0
    tab.screenshot("report-top.png")
    tab.js("document.getElementById('charts').scrollIntoView()")
    tab.screenshot("report-charts.png")
    assert tab.network_requests() == []
    assert tab.events("Page.javascriptDialogOpening") == []
    assert tab.errors() == []


# --------------------------------------------- default map: sizes, offline
SIZES = ((1400, 1000), (760, 480), (375, 700))
CONTROLS = (".lc-title", ".leaflet-control-layers", ".lc-legend", ".leaflet-control-zoom")


@pytest.fixture(scope="module")
def default_maps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The demo's map with default options (OSM tiles, self-contained), in zh and en."""
    from lifecircle.maps import map_page, read_results

    from .test_maps import add_river

    out = run_demo(tmp_path_factory.mktemp("browser-default"))
    add_river(out)
    results = read_results(out)
    pages = {}
    for lang in ("zh", "en"):
        pages[lang] = out / f"map_{lang}.html"
        pages[lang].write_text(map_page(results, lang=lang), encoding="utf-8")
    return pages


def set_size(tab: Tab, width: int, height: int) -> None:
    tab.call(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500},
    )


def control_boxes(tab: Tab) -> dict[str, list[float]]:
    selectors = json.dumps(list(CONTROLS))
    return tab.js(
        f"""Object.fromEntries({selectors}.map(s => {{
            const r = document.querySelector(s).getBoundingClientRect();
            return [s, [r.left, r.top, r.right, r.bottom]];
        }}))"""
    )


def overlap(a: list[float], b: list[float]) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, width) * max(0.0, height)


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize(("width", "height"), SIZES)
def test_default_map_works_offline_at_every_size(
    tab: Tab, default_maps: dict[str, Path], lang: str, width: int, height: int
):
    set_size(tab, width, height)
    tab.open(default_maps[lang])
    tab.wait_for(READY)
    # the tiles fail offline: the study's own streets and water stand in, with a note
    tab.wait_for("window.lifecircle.tilesFailed && window.lifecircle.contextShown")
    assert tab.js("document.querySelectorAll('path.lc-street').length") > 100
    assert tab.js("document.querySelectorAll('path.lc-water').length") == 1
    note = tab.js("document.querySelector('.lc-note').innerText")
    assert ("底图无法加载" if lang == "zh" else "did not load") in note
    assert tab.js("document.querySelectorAll('path.lc-compound').length") == 66
    # the gaps across the river are drawn above the water, inside the boundary
    assert tab.js("document.querySelectorAll('path.lc-gap').length") == 5
    requests = tab.network_requests()
    assert requests and all("tile.openstreetmap.org" in u for u in requests)
    boxes = control_boxes(tab)
    compact = tab.js(
        "document.querySelector('.leaflet-container').classList.contains('lc-compact')"
    )
    assert compact == (width < 800 or height < 560)
    for i, first in enumerate(CONTROLS):
        for second in CONTROLS[i + 1 :]:
            assert overlap(boxes[first], boxes[second]) == 0, (first, second)
    covered = sum((b[2] - b[0]) * (b[3] - b[1]) for b in boxes.values())
    assert covered / (width * height) < (0.25 if compact else 0.4)
    if compact:
        assert tab.js("document.querySelector('.leaflet-control-layers-list').offsetHeight") == 0
        tab.js("document.querySelector('.leaflet-control-layers-toggle').click()")
        assert tab.js("document.querySelector('.leaflet-control-layers-list').offsetHeight") > 0
        tab.js("document.querySelector('.leaflet-control-layers-toggle').click()")
    time.sleep(0.3)
    tab.screenshot(f"map-{lang}-{width}x{height}.png")
    assert tab.errors() == []


def test_gap_type_selector_shows_one_type(tab: Tab, default_maps: dict[str, Path]):
    tab.open(default_maps["zh"])
    tab.wait_for(READY)
    types = tab.js("window.lifecircle.gapParts.map(l => l.feature.properties.c)")
    first = min(types)
    picked = tab.js(
        f"""(() => {{ const s = document.querySelector('.lc-gap-select');
        s.value = '{first}'; s.dispatchEvent(new Event('change'));
        return document.querySelectorAll('path.lc-gap').length; }})()"""
    )
    assert picked == types.count(first) < len(types)
    tab.screenshot("map-gap-type.png")
    back = tab.js(
        """(() => { const s = document.querySelector('.lc-gap-select');
        s.value = ''; s.dispatchEvent(new Event('change'));
        return document.querySelectorAll('path.lc-gap').length; })()"""
    )
    assert back == len(types)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_report_prints_the_static_map_to_an_a4_pdf(
    tab: Tab, default_maps: dict[str, Path], lang: str
):
    from lifecircle.report import render_report, write_pdf

    out = default_maps[lang].parent
    report = render_report(out, lang=lang, place="示例街道" if lang == "zh" else "Demo town")
    pdf = write_pdf(report, out / f"report_{lang}.pdf")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", data))
    assert 6 <= pages <= 30
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(pdf, ARTIFACTS / f"report-{lang}.pdf")
    pypdf = pytest.importorskip("pypdf", reason="pypdf reads the page size and numbers")
    if pypdf is not None:
        reader = pypdf.PdfReader(str(pdf))
        assert len(reader.pages) == pages
        width, height = (float(v) for v in reader.pages[0].mediabox[2:])
        assert (round(width), round(height)) == (595, 842)  # A4 in points
        first, last = reader.pages[0].extract_text(), reader.pages[-1].extract_text()
        word = "第" if lang == "zh" else "page"
        assert f"{word} 1" in first.replace("  ", " ") and f"{pages}" in last
    set_size(tab, 1100, 1400)
    tab.open(report)
    # 66 compounds, 5 gaps, one path per street class (3), the river and the boundary
    assert tab.js("document.querySelectorAll('svg.static-map path').length") == 66 + 5 + 3 + 2
    assert tab.js("document.querySelectorAll('svg.static-map circle').length") == 3  # sites
    assert tab.js("document.querySelector('svg.static-map').getBoundingClientRect().height") > 300
    tab.js("document.getElementById('static-map').scrollIntoView()")
    tab.screenshot(f"report-{lang}-static-map.png")
    assert tab.network_requests() == [] or all(
        "tile.openstreetmap.org" in u for u in tab.network_requests()
    )


# -------------------------------------------------------------- what-if
@pytest.fixture(scope="module")
def whatif_map(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Any]:
    from lifecircle.maps import render_map, write_whatif
    from lifecircle.siting import recommend_sites, worst_covered_type
    from lifecircle.study import Study

    out = run_demo(tmp_path_factory.mktemp("browser-whatif"))
    study = Study.from_demo()
    siting = recommend_sites(study, worst_covered_type(study), 3)
    write_whatif(study, siting, out)
    return render_map(out, basemap="none"), study, siting


def test_whatif_panel_sums_what_the_python_api_computes(tab: Tab, whatif_map, tmp_path: Path):
    from lifecircle.scenarios import load_scenario, run_scenario

    page, study, siting = whatif_map
    tab.open(page)
    tab.wait_for(READY)
    tab.js("document.querySelector('.lc-whatif-all').open = true")
    sites = json.loads(
        html.unescape(
            re.search(
                r'id="lc-data-whatif">(.*?)</script>', page.read_text(encoding="utf-8"), re.S
            ).group(1)
        )
    )["sites"]
    # the best recommended site and the first candidate that is not recommended
    picks = [0, next(i for i, s in enumerate(sites) if s["rank"] is None)]
    for i in picks:
        tab.js(f"document.querySelector('.lc-whatif input[data-i=\"{i}\"]').click()")
    tab.wait_for("window.lifecircle.whatif && window.lifecircle.whatif.sites.length === 2")
    shown = tab.js("document.querySelector('.lc-whatif-n[data-g=\"0\"]').innerText")
    flips = int(tab.js("document.querySelector('.lc-whatif-c').innerText"))
    assert tab.js("document.querySelectorAll('path.lc-whatif-site').length") == 2
    tab.screenshot("map-whatif.png")
    # the same two sites as a scenario, re-scored by the engine
    lines = ["name: two sites", "add_facilities:"]
    for n, i in enumerate(picks):
        site = sites[i]
        lines.append(
            f"  - {{id: w{n}, type: {siting.target}, lon: {site['lon']}, lat: {site['lat']}}}"
        )
    scenario = tmp_path / "two.yaml"
    scenario.write_text("\n".join(lines) + "\n", encoding="utf-8")
    diff = run_scenario(study, load_scenario(scenario))
    row = diff.coverage[diff.coverage["item"] == siting.target].iloc[0]
    gained = diff.compounds[
        (diff.compounds["item"] == siting.target) & (diff.compounds["change"] == "gained")
    ]
    assert flips == len(gained) > 0
    expected = float(row["population_after"]) - float(row["population_before"])
    assert int(shown.replace(",", "")) == pytest.approx(expected, abs=1.0)
    assert tab.errors() == []


def test_onemap_and_shuttle_layers_show_and_filter_by_category(tab: Tab, outputs: Path):
    tab.open(outputs / "map.html")
    tab.wait_for(READY)
    counts = tab.js("window.lifecircle.counts")
    summary = json.loads((outputs / "summary.json").read_text(encoding="utf-8"))
    assert counts["onemap"] == summary["onemap"]["districts"] == 6
    assert counts["onemap_facilities"] == summary["onemap"]["facilities"]
    assert counts["shuttle"]["stops"] == summary["shuttle"]["stops"]
    assert tab.js("document.querySelectorAll('path.lc-district').length") == 0  # off by default
    labels = tab.js(
        "[...document.querySelectorAll('.leaflet-control-layers-overlays label')]"
        ".map(l => l.innerText.trim())"
    )
    for name in ("一张图：社区", "一张图：设施（按类别）", "老年人接驳车"):
        tab.js(
            "document.querySelectorAll('.leaflet-control-layers-overlays input')"
            f"[{labels.index(name)}].click()"
        )
    tab.wait_for("document.querySelectorAll('path.lc-district').length === 6")
    assert tab.js("document.querySelectorAll('path.lc-shuttle-stop').length") == 10
    assert tab.js("document.querySelectorAll('path.lc-shuttle-route').length") > 0
    transport = summary["onemap"]["by_category"]["transport"]
    shown = tab.js(
        """(() => { const s = document.querySelector('.lc-cat-select');
        s.value = [...s.options].find(o => o.text === '交通').value;
        s.dispatchEvent(new Event('change'));
        return document.querySelectorAll('path.lc-onemap-poi').length; })()"""
    )
    assert shown == transport
    tab.screenshot("map-onemap-shuttle.png")
    assert tab.network_requests() == []
    assert tab.errors() == []
