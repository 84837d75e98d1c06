"""Benchmark: what checking an evidence picture costs (rights.lifecycle.evidence.check_picture).

Not a test: prints figures. Builds a set of pictures in memory — the outside test's 24 MP PNG
of 2,991 bytes, the same trick at 12 MP, a 12 MP noisy JPEG, a 1280 x 2000 screenshot-like PNG,
a 4000 x 3000 photo-like JPEG and a flat 12 MP PNG (the dearest file the bounds let through) —
then, for each, runs the check in a fresh subprocess and reports its CPU time (user + system,
from resource.getrusage) and its peak memory: the process's peak resident set during the check
(VmHWM, reset just before it through /proc/self/clear_refs; ru_maxrss where that is not
possible) above its resident set after importing everything and reading the picture. Pillow's
pixel buffers are C allocations, which tracemalloc does not see. Each picture is measured once
alone and once as a request of three (check_pictures with three copies), best of --repeat
fresh processes.

    python scripts/bench_pictures.py [--repeat 3] [--compare-original /tmp/evidence_orig.py]
                                     [--pictures bomb-24MP.png,flat-12MP.png]

With --compare-original, the same measurements are made with the module at that path too
(e.g. `git show HEAD:rights/lifecycle/evidence.py > /tmp/evidence_orig.py`), imported by path.
"""

import argparse
import functools
import importlib.util
import io
import json
import random
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image, ImageDraw, ImageFilter  # noqa: E402


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def _scene(size: tuple[int, int], seed: int = 3) -> Image.Image:
    """Something photo-like: smooth gradients, coloured shapes with soft edges."""
    red = Image.linear_gradient("L").resize(size)
    green = Image.linear_gradient("L").transpose(Image.Transpose.ROTATE_90).resize(size)
    blue = Image.radial_gradient("L").resize(size)
    image = Image.merge("RGB", (red, green, blue))
    draw, rnd = ImageDraw.Draw(image), random.Random(seed)
    for _ in range(80):
        x, y, s = rnd.randrange(size[0]), rnd.randrange(size[1]), rnd.randint(40, 700)
        draw.ellipse((x, y, x + s, y + s), fill=tuple(rnd.randrange(256) for _ in range(3)))
    return image.filter(ImageFilter.GaussianBlur(2))


def _with_noise(image: Image.Image, amount: float) -> Image.Image:
    noise = Image.merge("RGB", [Image.effect_noise(image.size, 64) for _ in range(3)])
    return Image.blend(image, noise, amount)


def _screenshot(size=(1280, 2000), lines=12, seed=5) -> Image.Image:
    """A mostly white web page: header bar, a box of text lines, a button, a footer."""
    rnd = random.Random(seed)
    image = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, size[0], 72), fill=(24, 90, 170))
    draw.text((32, 28), "Perks - My orders", fill=(255, 255, 255))
    draw.rectangle((40, 120, size[0] - 40, 400), outline=(210, 210, 210), fill=(248, 248, 250))
    for line in range(lines):
        words = " ".join(
            "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 9)))
            for _ in range(rnd.randint(4, 12))
        )
        draw.text((60, 140 + 20 * line), words, fill=(40, 40, 40))
    draw.rounded_rectangle((60, 420, 260, 460), 8, fill=(24, 90, 170))
    draw.text((90, 432), "Contact support", fill=(255, 255, 255))
    draw.line((0, size[1] - 80, size[0], size[1] - 80), fill=(220, 220, 220))
    draw.text((40, size[1] - 50), "(c) Perks Ltd", fill=(120, 120, 120))
    return image


PICTURES = (
    "bomb-24MP.png",
    "bomb-12MP.png",
    "noisy-12MP.jpg",
    "screenshot-1280x2000.png",
    "photo-4000x3000.jpg",
    "flat-12MP.png",
)


def pictures(names=PICTURES) -> dict[str, bytes]:
    """The pictures called ``names``, made in memory (only those: the 12 MP scene alone
    takes seconds to draw)."""
    scene = functools.cache(lambda: _scene((4000, 3000)))
    makers = {
        "bomb-24MP.png": lambda: _encode(Image.new("1", (6000, 4000)), "PNG", optimize=True),
        "bomb-12MP.png": lambda: _encode(Image.new("1", (4000, 3000)), "PNG", optimize=True),
        "noisy-12MP.jpg": lambda: _encode(_with_noise(scene(), 0.2), "JPEG", quality=85),
        "screenshot-1280x2000.png": lambda: _encode(_screenshot(), "PNG", optimize=True),
        "photo-4000x3000.jpg": lambda: _encode(_with_noise(scene(), 0.05), "JPEG", quality=90),
        # The dearest picture the bounds still let through: 12 MP, as few bytes as RGB allows.
        "flat-12MP.png": lambda: _encode(Image.new("RGB", (4000, 3000), (250, 250, 250)), "PNG"),
    }
    return {name: makers[name]() for name in names}


def _load_module(path: str | None):
    if path is None:
        from rights.lifecycle import evidence

        return evidence
    spec = importlib.util.spec_from_file_location("evidence_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_peak() -> bool:
    """Start the peak resident set afresh (Linux 4.0+); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
        return True
    except OSError:
        return False


def child(module_path: str | None, picture: str, copies: int) -> None:
    """One measurement, in a process of its own; prints a JSON line."""
    from PIL import Image

    from rights.errors import Invalid

    evidence = _load_module(module_path)
    Image.init()  # every format plugin imported before the baseline
    data = Path(picture).read_bytes()
    name = Path(picture).name
    exact = _reset_peak()
    resident = _status_kib("VmRSS") if exact else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    before = resource.getrusage(resource.RUSAGE_SELF)
    try:
        if copies == 1:
            checked = [evidence.check_picture(name, data)]
        else:
            checked = evidence.check_pictures([(name, data)] * copies)
        with Image.open(io.BytesIO(checked[0].content)) as image:
            outcome = f"accepted, stored {image.size[0]}x{image.size[1]}"
    except Invalid as exc:
        outcome = "refused: " + "; ".join(exc.fields.get("pictures", [exc.message]))[:70]
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    highest = _status_kib("VmHWM") if exact else after.ru_maxrss  # KiB, on Linux
    peak = max(0, highest - resident) / 1024
    print(json.dumps({"cpu": cpu, "peak_mib": peak, "outcome": outcome}))


def measure(module_path: str | None, picture: Path, copies: int, repeat: int) -> dict:
    runs = []
    for _ in range(repeat):
        argv = [sys.executable, __file__, "--child", str(picture), "--copies", str(copies)]
        if module_path:
            argv += ["--module", module_path]
        done = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=ROOT)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {
        "cpu": min(r["cpu"] for r in runs),
        "peak_mib": min(r["peak_mib"] for r in runs),
        "outcome": runs[0]["outcome"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes per figure")
    parser.add_argument("--compare-original", metavar="PATH", help="evidence.py to compare")
    parser.add_argument(
        "--pictures",
        default=",".join(PICTURES),
        help=f"comma-separated, of {', '.join(PICTURES)} (default: all)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--copies", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--module", help=argparse.SUPPRESS)
    args = parser.parse_args()
    names = [name.strip() for name in args.pictures.split(",") if name.strip()]
    if unknown := sorted(set(names) - set(PICTURES)):
        parser.error(f"unknown pictures: {', '.join(unknown)}")
    if args.child:
        child(args.module, args.child, args.copies)
        return
    versions = [("current", None)]
    if args.compare_original:
        versions.insert(0, ("original", str(Path(args.compare_original).resolve())))
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for name, data in pictures(names).items():
            path = Path(tmp) / name
            path.write_bytes(data)
            files.append(path)
            with Image.open(io.BytesIO(data)) as image:
                megapixels = image.size[0] * image.size[1] / 1e6
            print(
                f"{name:<26} {len(data):>10,} bytes  {megapixels:5.1f} MP  "
                f"{megapixels * 1e6 / len(data):8.1f} pixels/byte"
            )
        print()
        header = f"{'picture':<26} {'code':<9} {'one: CPU s':>10} {'peak MiB':>9}"
        print(f"{header}   {'three: CPU s':>12} {'peak MiB':>9}   outcome")
        for path in files:
            for label, module_path in versions:
                one = measure(module_path, path, 1, args.repeat)
                three = measure(module_path, path, 3, args.repeat)
                print(
                    f"{path.name:<26} {label:<9} {one['cpu']:10.3f} {one['peak_mib']:9.1f}   "
                    f"{three['cpu']:12.3f} {three['peak_mib']:9.1f}   {one['outcome']}"
                )


if __name__ == "__main__":
    main()
