#!/usr/bin/env python3
"""Render the sample replay report with headless Chromium and check the
picture is a page of charts, not a blank or an error page.

test_report (the cmocka test of analysis/mg_report.c) writes its sample
report to MG_REPORT_OUT; this test
- checks the HTML's structure: every element closed in order, every inline
  <svg> well-formed XML;
- renders it with Debian's chromium (headless, no network, a fresh
  profile) at 1280x2400 into a PNG;
- decodes the PNG itself (zlib and the five PNG row filters; 8-bit RGB or
  RGBA, not interlaced) and checks its size, that >= 5% of its pixels are
  not white, that it has >= 20 distinct colours, and that the solid fills
  of three charts (decision bars allow and deny, signal bars) are there.
The HTML and PNG stay in the build directory for people to look at.

Chromium missing is a failure, not a skip: deploy/install-deps.sh installs
it.

Then the same for the report of a real replay: `mintgate simulate` (3
days, 150 identities) replayed with --labels and --report.

Usage: test_report_render.py /path/to/mintgate; MG_BINARY_DIR names the
build directory.
"""
import html.parser
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zlib

from mgtest import check, failures

WIDTH, HEIGHT = 1280, 2400
# Solid fills that only a rendered chart produces (mg_report.c's palette):
# allow and deny bars of the decision mix, the per-signal bars.
CHART_COLOURS = {"allow bars": (0x9a, 0xc4, 0x8a),
                 "deny bars": (0xe0, 0x2f, 0x44),
                 "signal bars": (0x57, 0x94, 0xf2)}
# Elements without a closing tag in HTML.
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link",
        "meta", "source", "track", "wbr"}


class Structure(html.parser.HTMLParser):
    """Checks that elements close in the order they opened."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []
        self.errors = []

    def handle_starttag(self, tag, attrs):
        if tag not in VOID:
            self.stack.append((tag, self.getpos()))

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1][0] != tag:
            self.errors.append("</%s> at line %d closes %s" % (
                tag, self.getpos()[0],
                self.stack[-1] if self.stack else "nothing"))
            return
        self.stack.pop()


def check_html(text):
    parser = Structure()
    parser.feed(text)
    parser.close()
    check(not parser.errors, "HTML elements nest: %s" % parser.errors[:3])
    check(not parser.stack, "every element closed: %s" % parser.stack[:3])
    svgs = 0
    start = text.find("<svg")
    while start >= 0:
        end = text.index("</svg>", start) + len("</svg>")
        try:
            ET.fromstring(text[start:end])
        except ET.ParseError as e:
            check(False, "inline SVG #%d is well-formed XML: %s" % (svgs, e))
        svgs += 1
        start = text.find("<svg", end)
    check(svgs >= 4, "the sample has its charts (%d <svg>)" % svgs)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode_png(data):
    """(width, height, channels, rows of bytes) of an 8-bit RGB/RGBA PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG signature")
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if ihdr is None:
        raise ValueError("no IHDR chunk")
    width, height, depth, colour, _, _, interlace = ihdr
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError("unsupported PNG: depth %d colour type %d "
                         "interlace %d" % (depth, colour, interlace))
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    rows, prev, pos = [], bytearray(stride), 0
    for _ in range(height):
        ftype, line = raw[pos], bytearray(raw[pos + 1:pos + 1 + stride])
        pos += 1 + stride
        if ftype == 1:    # Sub
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xff
        elif ftype == 2:  # Up
            line = bytearray((x + y) & 0xff for x, y in zip(line, prev))
        elif ftype == 3:  # Average
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xff
        elif ftype == 4:  # Paeth
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                up_left = prev[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + paeth(left, prev[i], up_left)) & 0xff
        elif ftype != 0:
            raise ValueError("bad filter type %d" % ftype)
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def check_png(path):
    with open(path, "rb") as f:
        width, height, bpp, rows = decode_png(f.read())
    check((width, height) == (WIDTH, HEIGHT),
          "screenshot is %dx%d (got %dx%d)" % (WIDTH, HEIGHT, width, height))
    counts = {}
    for row in rows:
        for i in range(0, len(row), bpp):
            px = row[i:i + 3]
            counts[px] = counts.get(px, 0) + 1
    total = width * height
    white = counts.get(b"\xff\xff\xff", 0)
    share = 1 - white / total
    print("screenshot: %dx%d, %.1f%% not white, %d colours" % (
        width, height, 100 * share, len(counts)))
    check(share >= 0.05, ">= 5%% of pixels not white (%.1f%%)" % (100 * share))
    check(len(counts) >= 20, ">= 20 distinct colours (%d)" % len(counts))
    for what, rgb in CHART_COLOURS.items():
        n = counts.get(bytes(rgb), 0)
        check(n >= 200, "%s drawn (%d pixels of #%02x%02x%02x)" % (
            (what, n) + rgb))


def render(chromium, html_path, png_path):
    """Screenshot html_path with headless Chromium into png_path; check it."""
    profile = tempfile.mkdtemp(prefix="mg_report_render_")
    try:
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-quic", "--no-first-run",
               "--disable-background-networking",
               "--disable-component-update", "--disable-sync",
               "--user-data-dir=" + profile, "--hide-scrollbars",
               "--window-size=%d,%d" % (WIDTH, HEIGHT),
               "--screenshot=" + png_path, "file://" + html_path]
        # Its own session, so a hung browser goes with all its children.
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            _, err = proc.communicate(timeout=180)
            ok = proc.returncode == 0 and os.path.exists(png_path)
            check(ok, "chromium rendered a screenshot (exit %d)" %
                  proc.returncode)
            if not ok:
                print(err[-3000:])
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            check(False, "chromium finished within 180 s")
    finally:
        shutil.rmtree(profile, ignore_errors=True)

    if os.path.exists(png_path):
        check_png(png_path)
        print("rendered report: %s (from %s)" % (png_path, html_path))


def replay_report(mintgate, bindir, html_path):
    """A real report: `mintgate simulate` (3 days, 150 identities, many
    attacks) replayed with the simulated population's policy."""
    src = os.environ.get("MG_SOURCE_DIR", os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    tmp = tempfile.mkdtemp(prefix="mg_report_replay_")
    events = os.path.join(tmp, "events.jsonl")
    labels = os.path.join(tmp, "labels.jsonl")
    try:
        p = subprocess.run([mintgate, "simulate", "--seed", "5", "--days",
                            "3", "--identities", "150", "--attack-rate",
                            "0.2", "--labels", labels, "-o", events],
                           capture_output=True, text=True, timeout=300)
        if not check(p.returncode == 0, "simulate: " + p.stderr[-500:]):
            return False
        p = subprocess.run([mintgate, "replay", events, "--policy",
                            os.path.join(src, "deploy",
                                         "policy-simulated.yaml"),
                            "--labels", labels, "--report", html_path],
                           capture_output=True, text=True, timeout=300)
        return check(p.returncode == 0 and os.path.exists(html_path),
                     "replay --report: " + p.stdout[-300:] + p.stderr[-500:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    bindir = os.environ.get("MG_BINARY_DIR")
    if not bindir:
        print("test_report_render: MG_BINARY_DIR is not set")
        sys.exit(1)
    chromium = shutil.which("chromium")
    if not chromium:
        print("test_report_render: chromium not found on PATH "
              "(deploy/install-deps.sh installs Debian's chromium)")
        sys.exit(1)
    html_path = os.path.join(bindir, "report-sample.html")
    png_path = os.path.join(bindir, "report-sample.png")
    for p in (html_path, png_path):
        if os.path.exists(p):
            os.unlink(p)

    env = dict(os.environ, MG_REPORT_OUT=html_path)
    p = subprocess.run([os.path.join(bindir, "tests", "test_report")],
                       env=env, capture_output=True, text=True, timeout=300)
    if not check(p.returncode == 0 and os.path.exists(html_path),
                 "test_report wrote the sample (exit %d)" % p.returncode):
        print(p.stdout[-3000:], p.stderr[-3000:])
        sys.exit(1)
    with open(html_path, encoding="utf-8") as f:
        check_html(f.read())

    render(chromium, html_path, png_path)

    # The report of a real replay, drawn the same way.
    mintgate = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        bindir, "mintgate")
    replay_html = os.path.join(bindir, "report-replay.html")
    replay_png = os.path.join(bindir, "report-replay.png")
    for p in (replay_html, replay_png):
        if os.path.exists(p):
            os.unlink(p)
    if replay_report(mintgate, bindir, replay_html):
        with open(replay_html, encoding="utf-8") as f:
            check_html(f.read())
        render(chromium, replay_html, replay_png)

    if failures:
        print("test_report_render: %d failure(s)" % len(failures))
        sys.exit(1)
    print("test_report_render: all checks passed")


if __name__ == "__main__":
    main()
