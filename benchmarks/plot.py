"""The throughput plot of ``docs/img/throughput.png`` (drawn by ``run.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

OURS = ("sora_core ChatResponse", "#1f6feb")
THEIRS = ("openai SSEDecoder + model_validate", "#d1242f")


def _size(value: float) -> str:
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if value >= scale:
            return f"{value / scale:g} {unit}"
    return f"{value:g} B"


def _panel(ax: Any, xs: list[float], points: list[dict[str, Any]], xlabel: str) -> None:
    ours = [p["mb_per_s"]["ours"] for p in points]
    theirs = [p["mb_per_s"]["openai"] for p in points]
    ax.plot(xs, ours, "o-", color=OURS[1], label=OURS[0], linewidth=2)
    ax.plot(xs, theirs, "s-", color=THEIRS[1], label=THEIRS[0], linewidth=2)
    for x, a, b in zip(xs, ours, theirs, strict=True):
        ax.annotate(
            f"{a / b:.1f}x",
            (x, a),
            textcoords="offset points",
            xytext=(0, 8),
            ha="center",
            fontsize=8,
            color=OURS[1],
        )
    from matplotlib.ticker import FuncFormatter, LogLocator

    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _size(v)))
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("MB/s of SSE bytes (higher is better)")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_ylim(min(theirs) / 2, max(ours) * 2.5)


def draw(sweep: dict[str, Any], path: Path, info: dict[str, Any]) -> None:
    """Two panels: throughput against the chunk size and against the read size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5), constrained_layout=True)
    by_chunk = sweep["by_chunk_size"]
    _panel(
        left,
        [p["event_size"] for p in by_chunk],
        by_chunk,
        "bytes per chunk event (4 KiB reads)",
    )
    left.set_title("P1 bytes -> typed chunks, by chunk size")
    by_read = sweep["by_read_size"]
    _panel(
        right,
        [p["read_size"] for p in by_read],
        by_read,
        "bytes per read (realistic chat chunks)",
    )
    right.set_title("P1 bytes -> typed chunks, by read size")
    left.legend(loc="upper left")
    v = info["versions"]
    fig.suptitle(
        f"Python {info['python']}, {info['cpu']} ({info['cores']} cores); "
        f"sora-sansio {v.get('sora-sansio', '?')} with orjson {v.get('orjson', '-')}, "
        f"openai {v.get('openai', '?')}, pydantic {v.get('pydantic', '?')}; "
        "labels: ours / openai",
        fontsize=9,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


RATIOS = Path(__file__).resolve().parent.parent / "docs" / "img" / "ratios.png"


def ratio_bars(results: dict[str, Any]) -> list[tuple[str, dict[str, float]]]:
    """(figure, {peer: ratio}) for the ratio plot: the peer's time over ours
    (above 1: we are faster)."""
    out: list[tuple[str, dict[str, float]]] = []
    core = results.get("core")
    if core:
        for stream in ("chat", "tools", "sora"):
            s = core["orjson"]["p1"][stream]["seconds"]
            out.append(
                (
                    f"P1 {stream}",
                    {
                        peer: s[peer] / s["ours"]
                        for peer in ("openai", "openai_json", "httpx_sse", "floor")
                    },
                )
            )
    p2 = results.get("p2")
    if p2:
        for kind in ("requests", "socket", "trio", "asyncio", "httpx"):
            if kind in p2:
                mine = min(p2[kind]["times"])
                out.append(
                    (
                        f"P2 {kind}",
                        {
                            peer: min(p2[peer]["times"]) / mine
                            for peer in ("httpx_sse", "openai")
                            if peer in p2
                        },
                    )
                )
    p4 = results.get("p4")
    if p4:
        for key, r in p4["runs"].items():
            kind, streams = key.split("/")
            peer = p4["runs"].get(f"httpx_sse/{streams}")
            if kind != "httpx_sse" and peer:
                out.append((f"P4 {kind} {streams}", {"httpx_sse": peer["seconds"] / r["seconds"]}))
    return out


PEERS = {
    "openai": ("openai: json.loads + model_validate", "#d1242f"),
    "openai_json": ("openai: model_validate_json", "#fb8500"),
    "httpx_sse": ("httpx + httpx-sse + orjson (dicts)", "#2a9d8f"),
    "floor": ("floor: split + orjson (dicts)", "#6e7781"),
}


def draw_ratios(results: dict[str, Any], path: Path = RATIOS) -> None:
    """One group per figure, one bar per peer: the peer's time over ours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = ratio_bars(results)
    fig, ax = plt.subplots(figsize=(12, 4.8))
    width = 0.2
    for i, (peer, (label, color)) in enumerate(PEERS.items()):
        xs = [x + (i - 1.5) * width for x, (_, r) in enumerate(bars) if peer in r]
        ys = [r[peer] for _, r in bars if peer in r]
        ax.bar(xs, ys, width, label=label, color=color)
        for x, y in zip(xs, ys, strict=True):
            ax.annotate(f"{y:.2f}", (x, y), ha="center", va="bottom", fontsize=7)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(bars)))
    ax.set_xticklabels([name for name, _ in bars], rotation=30, ha="right")
    ax.set_ylabel("peer's time / ours (above 1: we are faster)")
    ax.set_title("sora-sansio against each peer, same bytes, same run")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
