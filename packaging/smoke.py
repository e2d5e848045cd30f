"""Smoke-test a built bundle: it starts offscreen, generates through a loopback service,
saves the image, writes its log and exits 0.

The loopback service speaks the Hugging Face router's text-to-image format (POST →
raw PNG bytes), so the check goes through the bundled app's real provider code.

    python packaging/smoke.py dist/CloudAIArtStudio/CloudAIArtStudio
"""

from __future__ import annotations

import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sprite_png() -> bytes:
    from PIL import Image

    img = Image.new("RGBA", (256, 256), (0, 0, 0, 0))
    for x in range(64, 192):
        for y in range(64, 192):
            img.putpixel((x, y), (106, 190, 48, 255))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


class Handler(BaseHTTPRequestHandler):
    seen: list[dict] = []
    png = b""

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Handler.seen.append({"path": self.path, "auth": self.headers.get("Authorization", ""), "body": body[:500]})
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(Handler.png)))
        self.end_headers()
        self.wfile.write(Handler.png)

    def do_GET(self):
        data = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def shown_ms(cmd: list[str], env: dict, runs: int = 5) -> float:
    vals = []
    for _ in range(runs):
        e = {**env, "STUDIO_BENCH_STARTUP": "1", "BENCH_T0": repr(time.time())}
        out = subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=120)
        for line in out.stdout.splitlines():
            if line.startswith("SHOWN"):
                vals.append(float(line.split()[1]) * 1000)
    return statistics.median(vals) if vals else float("nan")


def main() -> int:
    try:
        import PIL  # noqa: F401
    except ImportError:
        print("smoke.py needs Pillow and the app: run it through `python3 packaging/build.py --smoke` "
              "or with .venv-bundle's python.")
        return 2
    exe = Path(sys.argv[1]).resolve()
    Handler.png = sprite_png()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    ok = True
    with tempfile.TemporaryDirectory(prefix="studio smoke ünï ") as tmp:  # spaces + non-ASCII on purpose
        home = Path(tmp)
        (home / "config").mkdir(parents=True)
        settings = {"first_run_done": True, "selected_service": "huggingface",
                    "providers": {"huggingface": {"endpoint": url}}}
        (home / "config" / "settings.json").write_text(json.dumps(settings))
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HF_TOKEN": "hf_smoketesttoken123"}
        t0 = time.monotonic()
        out = subprocess.run([str(exe), "--data-dir", str(home), "--smoke"], env=env, capture_output=True, text=True, timeout=300)
        took = time.monotonic() - t0
        log_file = home / "logs" / "studio.log"
        log_text = log_file.read_text(errors="replace") if log_file.exists() else ""
        images = sorted((home / "data" / "images").glob("*.png"))
        checks = {
            "exit code 0": out.returncode == 0,
            "one image saved": len(images) == 1,
            "request reached the loopback service": len(Handler.seen) >= 1,
            "token sent as Bearer": bool(Handler.seen) and Handler.seen[0]["auth"] == "Bearer hf_smoketesttoken123",
            "log file written": "smoke:" in log_text and "clean exit" in log_text,
            "token not in log": "hf_smoketesttoken123" not in log_text,
        }
        for name, passed in checks.items():
            print(f"  [{'ok' if passed else 'FAIL'}] {name}")
            ok &= passed
        if not ok:
            print("--- stderr ---\n" + out.stderr[-3000:] + "\n--- log ---\n" + log_text[-3000:])
        print(f"smoke run (start, generate, save, exit): {took:.1f} s")
        if ok and os.environ.get("STUDIO_SMOKE_TIMING", "1") == "1":
            b = shown_ms([str(exe), "--data-dir", str(home), "--quit-after", "0"], env)
            s = shown_ms([sys.executable, str(ROOT / "main.py"), "--data-dir", str(home), "--quit-after", "0"], env)
            print(f"start-up to window shown, median of 5: bundle {b:.0f} ms, source {s:.0f} ms")
    server.shutdown()
    print("SMOKE PASSED" if ok else "SMOKE FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
