"""Benchmark (issue 14): the HTTP service under load, next to the bare predictor and PaddleX's service.

Usage: python bench/serve_load.py [--requests 300] [--clients 1,4,16] [--rounds 3] [--workdir /tmp/pxc_serve_bench]
       [--server-args "--max_batch 8"] [--no-paddlex] [--no-rss]

It exports PP-LCNet_x1_0 (224 px, 1000 classes, seeded random init: speed does not depend on the weights) and makes
64 distinct 500x375 JPEGs. The bare predictor (decode, preprocess, run_batch in a loop at batch 1 and 8, same run
mode and threads: the ceiling) runs in a fresh process before the load and after each round. Each service gets the
same request bodies (``{"image": base64, "topk": 5, "visualize": false}``) from N keep-alive connections of a small
asyncio client (light, so that the client on the same 2 cores takes little from the server). The services are
interleaved round by round (the host swings between fast and slow phases) and medians are reported, with the CPU
time each service spends per request (steady even when other work shares the host). When PaddleX's serving venv
exists (~/.cache/peers/pdxserve), stock ``paddlex --serve`` and the Topk workaround ``pdx_serve.py`` get the same
load. Last, 200 requests of a 5 MB JPEG are sent to our service by 16 and by 64 clients (more than --max_queue) and
its peak RSS (VmHWM and 50 ms polls of VmRSS) is reported.
"""
import argparse
import asyncio
import base64
import io
import json
import os
import shlex
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
PEERS = Path.home() / ".cache" / "peers"
PDX_PYTHON = PEERS / "pdxserve" / "bin" / "python"
PDX_WORKAROUND = PEERS / "pdx_serve.py"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
MODEL = "PP-LCNet_x1_0"


# ---- data -------------------------------------------------------------------------------------------------------
def export(model_dir: Path) -> None:
    if (model_dir / "inference.yml").is_file():
        return
    code = ("import paddle, sys; from paddlex_cls.engine.exporter import ExportSpec, export_model; paddle.seed(0); "
            f"export_model(ExportSpec(model_name='{MODEL}', num_classes=1000, weights=None, out_dir=sys.argv[1], "
            "labels=[f'class_{i}' for i in range(1000)]))")
    subprocess.run([sys.executable, "-c", code, str(model_dir)], check=True, cwd=ROOT, capture_output=True)


def photo_like(rng: np.random.Generator, width: int, height: int, grain: float) -> np.ndarray:
    """Smooth colour fields plus grain: compresses like a photo (a pure-noise image would be far larger)."""
    small = rng.random((height // 25 + 2, width // 25 + 2, 3)).astype(np.float32) * 255
    img = np.asarray(Image.fromarray(small.astype(np.uint8)).resize((width, height), Image.BICUBIC), np.float32)
    img += rng.normal(0, grain, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def jpeg(arr: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def images(n: int) -> List[bytes]:
    rng = np.random.default_rng(0)
    return [jpeg(photo_like(rng, 500, 375, 6), 90) for _ in range(n)]


def big_image(target_mb: float) -> bytes:
    """A JPEG of about ``target_mb`` MB (a 12 MP photo-like image at high quality, grain tuned to the size)."""
    rng = np.random.default_rng(1)
    data = b""
    for grain in (8, 12, 16, 20, 25, 30, 40):
        data = jpeg(photo_like(rng, 4000, 3000, grain), 95)
        if len(data) >= target_mb * 1e6:
            break
    return data


def request_body(data: bytes) -> bytes:
    return json.dumps({"image": base64.b64encode(data).decode(), "topk": 5, "visualize": False}).encode()


# ---- bare predictor ---------------------------------------------------------------------------------------------
def bare_throughput(model_dir: str, files: List[str], count: int, batch: int) -> Tuple[float, float]:
    """(images/s, CPU ms per image) of decode + preprocess + run_batch in one loop (runs in a child process)."""
    from paddlex_cls.inference.predictor import Predictor
    from paddlex_cls.preprocess.image_io import load_image
    from paddlex_cls.runtime import available_cores

    datas = [Path(f).read_bytes() for f in files]
    pred = Predictor(model_dir, run_mode="mkldnn", num_threads=available_cores())
    for n in (1, batch):
        pred.run_batch(np.zeros((n, 3, 224, 224), np.float32))
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(0, count, batch):
        chunk = [datas[(i + j) % len(datas)] for j in range(batch)]
        probs = pred.run_batch(np.stack([pred.transform(load_image(d)) for d in chunk]))
        np.argsort(-probs, axis=1)[:, :5]
    return count / (time.perf_counter() - start), 1000 * (time.process_time() - cpu) / count


def run_bare(model_dir: Path, image_dir: Path, count: int, batch: int, env: Dict[str, str]) -> Tuple[float, float]:
    files = sorted(str(p) for p in image_dir.glob("*.jpg"))
    code = (f"import sys, json; sys.path.insert(0, {str(ROOT)!r}); sys.argv = ['x']; import importlib.util; "
            f"spec = importlib.util.spec_from_file_location('b', {str(Path(__file__).resolve())!r}); "
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
            f"print(*m.bare_throughput({str(model_dir)!r}, {files!r}, {count}, {batch}))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env)
    ips, cpu_ms = out.stdout.strip().splitlines()[-1].split()
    return float(ips), float(cpu_ms)


# ---- servers ----------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A service process on 127.0.0.1; ``ready()`` waits for /health."""

    def __init__(self, name: str, cmd: List[str], port: int, env: Dict[str, str], log: Path) -> None:
        self.name, self.port = name, port
        self.log = open(log, "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd="/tmp")

    def ready(self, timeout: float = 180) -> bool:
        end = time.time() + timeout
        while time.time() < end and self.proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        return True
            except OSError:
                pass
            time.sleep(0.5)
        return False

    def reset_peak(self) -> None:
        with open(f"/proc/{self.proc.pid}/clear_refs", "w") as f:  # "5" resets the peak RSS (VmHWM)
            f.write("5")

    def rss_mib(self, key: str = "VmHWM") -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far (all its threads)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> Optional[int]:
        self.proc.terminate()
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            self.log.close()


# ---- load -------------------------------------------------------------------------------------------------------
async def _read_response(reader: asyncio.StreamReader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(int(v) for k, _, v in (ln.partition(":") for ln in lines[1:]) if k.lower() == "content-length")
    body = await reader.readexactly(length)
    closing = any(ln.lower().startswith("connection: close") for ln in lines)
    return status, body, closing


async def _client(port: int, bodies: List[bytes], todo: List[int], out: Dict[str, list]) -> None:
    reader = writer = None
    while todo:
        i = todo.pop()
        body = bodies[i % len(bodies)]
        head = (f"POST /image-classification HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        start = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(head + body)
            await writer.drain()
            status, answer, closing = await _read_response(reader)
            ok = status == 200 and json.loads(answer)["errorCode"] == 0
            out["status"].append(status)
            if closing:
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError, ValueError):
            ok = False
            out["status"].append(-1)
            writer = None
        out["latency"].append(time.perf_counter() - start)
        out["ok"].append(ok)
    if writer is not None:
        writer.close()


def drive(port: int, bodies: List[bytes], clients: int, count: int, server: Optional[Server] = None) -> dict:
    """Send ``count`` requests over ``clients`` connections; throughput, latency percentiles, errors, peak RSS."""
    out: Dict[str, list] = {"latency": [], "ok": [], "status": []}
    todo = list(range(count))[::-1]
    peak = [0.0]

    async def main() -> None:
        async def watch() -> None:
            while True:
                peak[0] = max(peak[0], server.rss_mib("VmRSS"))
                await asyncio.sleep(0.05)

        watcher = asyncio.ensure_future(watch()) if server else None
        await asyncio.gather(*(_client(port, bodies, todo, out) for _ in range(clients)))
        if watcher:
            watcher.cancel()

    if server:
        server.reset_peak()
        cpu = server.cpu_seconds()
    start = time.perf_counter()
    asyncio.run(main())
    wall = time.perf_counter() - start
    cpu_ms = 1000 * (server.cpu_seconds() - cpu) / count if server else float("nan")
    lat = sorted(out["latency"])
    statuses = sorted(set(out["status"]))
    return {"ips": count / wall, "p50": 1000 * lat[len(lat) // 2], "p99": 1000 * lat[min(len(lat) - 1,
            int(len(lat) * 0.99))], "errors": out["ok"].count(False), "statuses": statuses,
            "rss": max(peak[0], server.rss_mib()) if server else float("nan"), "cpu_ms": cpu_ms}


# ---- main -------------------------------------------------------------------------------------------------------
def start_servers(args, work: Path, model_dir: Path, env: Dict[str, str]) -> List[Server]:
    ours_yaml = work / "ours.yaml"
    ours_yaml.write_text(json.dumps({"pipeline_name": "image_classification", "SubModules": {"ImageClassification": {
        "module_name": "image_classification", "model_name": MODEL, "model_dir": str(model_dir), "batch_size": 1,
        "topk": 5}}, "Serving": {"visualize": False}}))
    port = free_port()
    servers = [Server("ours", [sys.executable, str(ROOT / "main.py"), "--serve", "--pipeline", str(ours_yaml),
                               "--device", "cpu", "--host", "127.0.0.1", "--port", str(port),
                               *shlex.split(args.server_args)], port, env, work / "ours.log")]
    if not args.no_paddlex and PDX_PYTHON.is_file():
        pdx_env = dict(env, PADDLE_PDX_CPU_NUM_THREADS=env["OMP_NUM_THREADS"], PADDLE_PDX_LOCAL_FONT_FILE_PATH=FONT,
                       PADDLE_PDX_CACHE_HOME=str(PEERS / "pdxcache"))
        for name, entry in (("paddlex stock", ["-m", "paddlex"]), ("paddlex pdx_serve.py", [str(PDX_WORKAROUND)])):
            port = free_port()
            cmd = [str(PDX_PYTHON), *entry, "--serve", "--pipeline", str(ours_yaml), "--device", "cpu", "--host",
                   "127.0.0.1", "--port", str(port)]
            servers.append(Server(name, cmd, port, pdx_env, work / f"{name.replace(' ', '_')}.log"))
    return [s for s in servers if s.ready() or print(f"{s.name}: did not start, see {s.log.name}")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=300, help="requests per setting")
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved repetitions; medians are reported")
    ap.add_argument("--workdir", default="/tmp/pxc_serve_bench")
    ap.add_argument("--server-args", default="", help="extra options for our service, e.g. \"--max_batch 1\"")
    ap.add_argument("--no-paddlex", action="store_true")
    ap.add_argument("--no-rss", action="store_true")
    ap.add_argument("--big-requests", type=int, default=200)
    args = ap.parse_args()
    work = Path(args.workdir)
    (work / "images").mkdir(parents=True, exist_ok=True)
    model_dir = work / "PP-LCNet_x1_0_224"
    export(model_dir)
    datas = images(64)
    for i, d in enumerate(datas):
        (work / "images" / f"{i:02d}.jpg").write_bytes(d)
    bodies = [request_body(d) for d in datas]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", str(len(os.sched_getaffinity(0)))),
               PYTHONPATH=str(ROOT))
    clients = [int(c) for c in args.clients.split(",")]
    print(f"{MODEL} 224 px, {len(datas)} JPEGs 500x375 (~{np.mean([len(d) for d in datas]) / 1e3:.0f} kB), "
          f"{args.requests} requests per setting, {args.rounds} round(s), OMP_NUM_THREADS={env['OMP_NUM_THREADS']}, "
          f"load {os.getloadavg()[0]:.1f}", flush=True)
    bare: Dict[int, List[Tuple[float, float]]] = {1: [], 8: []}

    def measure_bare() -> None:  # the servers sit idle meanwhile (no requests: no CPU)
        for n in bare:
            bare[n].append(run_bare(model_dir, work / "images", args.requests, n, env))

    measure_bare()
    servers = start_servers(args, work, model_dir, env)
    results: Dict[tuple, List[dict]] = {}
    for _ in range(args.rounds):
        for c in clients:
            for s in servers:
                drive(s.port, bodies, c, min(2 * c, 16))  # warm the connections and the server
                results.setdefault((s.name, c), []).append(drive(s.port, bodies, c, args.requests, s))
        measure_bare()
    print(f"load average at the end {os.getloadavg()[0]:.1f}\n")
    report(results, bare, servers, clients)
    ours = servers[0]
    if not args.no_rss:
        big = big_image(5.0)
        print(f"\nRSS of our service while {args.big_requests} requests of a {len(big) / 1e6:.1f} MB JPEG (4000x3000, "
              f"{len(request_body(big)) / 1e6:.1f} MB body) arrive:")
        for c in (16, 64):  # 64 > --max_queue (32): the extra ones get 503 and take no memory
            r = drive(ours.port, [request_body(big)], c, args.big_requests, ours)
            print(f"  {c} clients: peak RSS {r['rss']:.0f} MiB, statuses {r['statuses']}, "
                  f"{r['errors']} not 200, {r['ips']:.1f} req/s, p50 {r['p50']:.0f} ms")
    for s in servers:
        print(f"{s.name}: exit code {s.stop()} after SIGTERM")


def report(results: Dict[tuple, List[dict]], bare: Dict[int, List[Tuple[float, float]]], servers: List[Server],
           clients: List[int]) -> None:
    """Medians over rounds. CPU ms per request (the server process's user + system time) hardly depends on what
    else runs on the host, unlike req/s: on a shared machine it is the steadier measure of the same work."""
    b = {n: (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)) for n, runs in bare.items()}
    for n, (ips, cpu) in b.items():
        print(f"bare predictor, batch {n} (decode + preprocess + run_batch): {ips:.1f} img/s, {cpu:.1f} CPU ms/img  "
              f"(runs: {', '.join(f'{r[0]:.1f}' for r in bare[n])} img/s)")
    print(f"{'service':22} {'clients':>7} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'peak RSS':>9} "
          f"{'CPU ms':>7} {'ips/bare1':>9} {'cpu:bare1':>9}  statuses")
    summary: Dict[tuple, Tuple[float, float]] = {}
    for s in servers:
        for c in clients:
            runs = results[(s.name, c)]
            ips = statistics.median(r["ips"] for r in runs)
            cpu = statistics.median(r["cpu_ms"] for r in runs)
            summary[(s.name, c)] = (ips, cpu)
            print(f"{s.name:22} {c:7d} {ips:7.1f} {statistics.median(r['p50'] for r in runs):8.1f} "
                  f"{statistics.median(r['p99'] for r in runs):8.1f} {sum(r['errors'] for r in runs):6d} "
                  f"{max(r['rss'] for r in runs):7.0f}Mi {cpu:7.1f} {ips / b[1][0]:9.2f} {b[1][1] / cpu:9.2f}  "
                  f"{sorted({st for r in runs for st in r['statuses']})}  "
                  f"(runs: {', '.join(format(r['ips'], '.1f') for r in runs)} req/s)")
    print("ips/bare1: throughput over the bare predictor's at batch 1; cpu:bare1: its CPU ms per image over the "
          "service's per request (above 1: the service spends less CPU per image than the bare loop)")
    if any(s.name == "paddlex pdx_serve.py" for s in servers):
        for c in clients:
            (ips, cpu), (pips, pcpu) = summary[("ours", c)], summary[("paddlex pdx_serve.py", c)]
            print(f"ours / paddlex pdx_serve.py at {c:2d} clients: throughput {ips / pips:.2f}x, CPU per request "
                  f"{cpu / pcpu:.2f}x")


if __name__ == "__main__":
    main()
