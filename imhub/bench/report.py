"""One self-contained HTML page from an ``imhub bench`` result (``--report`` after a
run, or ``imhub bench report result.json -o out.html`` later).

Plots are drawn with matplotlib on the Agg canvas (no display, no pyplot state) and
embedded as base64 PNG, so the page is one file to attach or commit. matplotlib is
imported here only, and this module only when a report is asked for: the server and
the load-generator workers never load it. Install it with ``pip install 'imhub[report]'``.

Every plot reads the JSON result only: ``timeline`` (rows of counters and CPU/RSS
every 0.5 s, ``phases``, ``server_procs`` one by one), ``latency`` (log-binned
histograms) and the percentiles in ``send``. Results of older bench versions (fewer
timeline columns, no histograms) get the plots their data allow.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imhub.bench.summary import summary_lines

MiB = 2**20
RATE_WINDOW = 2.0  # seconds: throughput and CPU% are slopes over this window
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
          "#17becf"]


def write_report(result: dict[str, Any], path: Path) -> None:
    path.write_text(render(result), encoding="utf-8")


# --- data ------------------------------------------------------------------------------


def timeline_columns(result: dict[str, Any]) -> dict[str, list[float]]:
    """The timeline as column name -> values (empty when the result has none)."""
    tl = result.get("timeline") or {}
    cols: list[str] = tl.get("columns") or []
    rows: list[list[float]] = tl.get("rows") or []
    out: dict[str, list[float]] = {c: [] for c in cols}
    for row in rows:
        for c, v in zip(cols, row, strict=False):
            out[c].append(float(v))
    return out


def slope(t: Sequence[float], y: Sequence[float], window: float = RATE_WINDOW) -> tuple[list[float], list[float]]:
    """Rate of a cumulative series: (y[i] - y[j]) / (t[i] - t[j]) with t[j] the latest
    sample at least ``window`` seconds before t[i] (smooths the workers' 0.5 s reports)."""
    ts: list[float] = []
    rates: list[float] = []
    j = 0
    for i in range(1, len(t)):
        while j + 1 < i and t[i] - t[j + 1] >= window:
            j += 1
        dt = t[i] - t[j]
        if dt <= 0:
            continue
        ts.append(t[i])
        rates.append(max(0.0, (y[i] - y[j]) / dt))
    return ts, rates


def cdf(hist: dict[str, Any]) -> tuple[list[float], list[float]]:
    """(upper bin edge, fraction of samples at or below it) from a histogram."""
    edges: list[float] = hist.get("edges") or []
    counts: list[int] = hist.get("counts") or []
    total = sum(counts)
    if not total:
        return [], []
    xs: list[float] = []
    ys: list[float] = []
    acc = 0
    for k, c in enumerate(counts):
        acc += c
        if c or (xs and acc < total):
            xs.append(edges[k + 1])
            ys.append(acc / total)
        if acc == total:
            break
    return xs, ys


# --- plots -------------------------------------------------------------------------------


def _figure(rows: int = 1, cols: int = 1, height: float = 3.4) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, height * rows), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.grid(True, alpha=0.3)
    return fig, axes


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _phases(ax: Any, result: dict[str, Any]) -> None:
    """Mark where each phase of the run began (call after plotting: labels that would
    overlap a previous one within 4 % of the x range are left out)."""
    lo, hi = ax.get_xlim()
    last = -float("inf")
    for t, name in (result.get("timeline") or {}).get("phases") or []:
        if name in ("setup", "seeding", "starting server") or not lo <= t <= hi:
            continue
        ax.axvline(t, color="0.6", lw=0.8, ls=":")
        if t - last >= 0.04 * (hi - lo):
            last = t
            ax.text(t, 0.03, f" {name}", transform=ax.get_xaxis_transform(), rotation=90, va="bottom", ha="right",
                    fontsize=7, color="0.4")


def plot_connections(result: dict[str, Any], tl: dict[str, list[float]]) -> bytes | None:
    if not tl.get("connected"):
        return None
    fig, axes = _figure()
    ax = axes[0][0]
    ax.plot(tl["t"], tl["connected"], label="connected", color=COLORS[0])
    for name, color in (("failed", COLORS[3]), ("dropped", COLORS[1])):
        if any(tl.get(name, ())):
            ax.plot(tl["t"], tl[name], label=name, color=color)
    _phases(ax, result)
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("WebSocket connections")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left")
    ax.set_title("Connections online")
    return _png(fig)


def plot_throughput(result: dict[str, Any], tl: dict[str, list[float]]) -> bytes | None:
    if not tl.get("sent") and not tl.get("connected"):
        return None
    t = tl["t"]
    fig, axes = _figure(2, 1, height=3.0)
    top, bottom = axes[0][0], axes[1][0]
    any_messages = False
    for name, label, color, style in (("sent", "sent/s", COLORS[0], "--"), ("acked", "acked/s", COLORS[2], "-"),
                                      ("received", "delivered/s", COLORS[1], "-")):
        if any(tl.get(name, ())):
            any_messages = True
            top.plot(*slope(t, tl[name]), label=label, color=color, ls=style, zorder=3 if style == "--" else 2)
    top.set_ylabel("messages per second")
    top.set_title(f"Throughput (slope of the cumulative counts over {RATE_WINDOW:.0f} s)")
    if any_messages:
        top.legend(loc="upper right")
    else:
        top.text(0.5, 0.5, "no messages in this scenario", transform=top.transAxes, ha="center", color="0.5")
    _phases(top, result)
    if tl.get("connected"):
        # Net new connections per second (handshakes minus drops), heartbeats answered.
        bottom.plot(*slope(t, tl["connected"]), label="connections/s (net)", color=COLORS[4])
    if any(tl.get("hb_replies", ())):
        bottom.plot(*slope(t, tl["hb_replies"]), label="heartbeats answered/s", color=COLORS[7])
    bottom.set_ylabel("per second")
    bottom.set_xlabel("seconds since start")
    bottom.legend(loc="upper right")
    _phases(bottom, result)
    return _png(fig)


def plot_latency(result: dict[str, Any]) -> bytes | None:
    send = result.get("send") or {}
    series = [("ack", send.get("ack_latency_ms") or {}, (result.get("latency") or {}).get("ack_ms") or {}),
              ("send→receive", send.get("send_to_receive_ms") or {},
               (result.get("latency") or {}).get("send_to_receive_ms") or {})]
    if not any(p for _, p, _ in series):
        return None
    fig, axes = _figure(1, 2, height=3.6)
    bars, dist = axes[0][0], axes[0][1]
    keys = ["p50", "p90", "p99", "p999", "max"]
    width = 0.38
    for k, (name, pct, _) in enumerate(series):
        if not pct:
            continue
        xs = [i + (k - 0.5) * width for i in range(len(keys))]
        values = [max(1e-3, float(pct.get(key, 0))) for key in keys]
        rects = bars.bar(xs, values, width, label=f"{name} (n={pct.get('n', 0):,})", color=COLORS[k])
        bars.bar_label(rects, labels=[_ms(v) for v in values], fontsize=7, rotation=90, padding=2)
    bars.set_xticks(range(len(keys)), ["p50", "p90", "p99", "p99.9", "max"])
    bars.set_yscale("log")
    lo, hi = bars.get_ylim()
    bars.set_ylim(lo, hi * 4)  # room for the value labels
    from matplotlib.ticker import FuncFormatter

    bars.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _ms(v)))
    bars.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    bars.set_ylabel("milliseconds")
    bars.set_title("Latency percentiles")
    bars.legend(loc="upper left", fontsize=8)
    drawn = False
    for k, (name, _, hist) in enumerate(series):
        xs, ys = cdf(hist)
        if xs:
            drawn = True
            dist.step(xs, ys, where="post", label=name, color=COLORS[k])
    if drawn:
        dist.set_xscale("log")
        dist.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _ms(v)))
        for q in (0.5, 0.99):
            dist.axhline(q, color="0.7", lw=0.8, ls="--")
        dist.legend(loc="lower right", fontsize=8)
    else:
        dist.text(0.5, 0.5, "no histogram in this result", transform=dist.transAxes, ha="center", color="0.5")
    dist.set_ylim(0, 1.01)
    dist.set_xlabel("milliseconds (log)")
    dist.set_ylabel("fraction of messages")
    dist.set_title("Latency CDF")
    return _png(fig)


def _procs(result: dict[str, Any]) -> list[tuple[str, list[list[float]]]]:
    procs = (result.get("timeline") or {}).get("server_procs") or {}
    out = [(str(e.get("label", pid)), e.get("rows") or []) for pid, e in procs.items()]
    return sorted((p for p in out if len(p[1]) > 1), key=lambda p: p[0])


def plot_server_cpu(result: dict[str, Any], tl: dict[str, list[float]]) -> bytes | None:
    if len(tl.get("t", ())) < 2:
        return None
    fig, axes = _figure(height=3.8)
    ax = axes[0][0]
    for k, (label, rows) in enumerate(_procs(result)):
        ax.plot(*slope([r[0] for r in rows], [r[1] * 100 for r in rows], 1.0), label=label,
                color=COLORS[k % len(COLORS)], lw=2)
    ax.plot(*slope(tl["t"], [v * 100 for v in tl["server_cpu_s"]], 1.0), label="server total", color="black", lw=1)
    if tl.get("client_cpu_s"):
        ax.plot(*slope(tl["t"], [v * 100 for v in tl["client_cpu_s"]], 1.0), label="load generator total",
                color="0.5", lw=1, ls="--")
    cpus = (result.get("machine") or {}).get("cpus")
    if cpus:
        ax.axhline(cpus * 100, color="0.7", lw=0.8)
    _phases(ax, result)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("% of one core")
    ax.set_title("Server CPU per process")
    ax.legend(loc="upper left", fontsize=7, ncols=2)
    return _png(fig)


def plot_server_rss(result: dict[str, Any], tl: dict[str, list[float]]) -> bytes | None:
    if not tl.get("server_rss"):
        return None
    fig, axes = _figure(height=3.8)
    ax = axes[0][0]
    for k, (label, rows) in enumerate(_procs(result)):
        ax.plot([r[0] for r in rows], [r[2] / MiB for r in rows], label=label, color=COLORS[k % len(COLORS)], lw=2)
    ax.plot(tl["t"], [v / MiB for v in tl["server_rss"]], label="server total", color="black", lw=1)
    _phases(ax, result)
    ax.set_ylim(0, max(tl["server_rss"]) / MiB * 1.35 or 1)  # room for the legend
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("RSS, MiB")
    ax.set_title("Server memory per process (VmRSS)")
    ax.legend(loc="upper left", fontsize=7, ncols=2)
    return _png(fig)


def plots(result: dict[str, Any]) -> list[tuple[str, bytes]]:
    """(title, PNG) of every plot this result has data for."""
    tl = timeline_columns(result)
    made: list[tuple[str, bytes | None]] = [
        ("Connections over time", plot_connections(result, tl)),
        ("Throughput", plot_throughput(result, tl)),
        ("Latency", plot_latency(result)),
        ("Server CPU per process", plot_server_cpu(result, tl)),
        ("Server RSS per process", plot_server_rss(result, tl)),
    ]
    return [(title, png) for title, png in made if png is not None]


# --- page ------------------------------------------------------------------------------


def _ms(v: float) -> str:
    return f"{v:.3g}" if v < 100 else f"{v:,.0f}"


def _table(rows: Sequence[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}".rstrip("0").rstrip(".")
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items())
    return "" if v is None else str(v)


STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1040px; color: #222; }
h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
.verdict { font: 600 15px ui-monospace, monospace; padding: .6em .8em; border-radius: 4px; }
.ok { background: #e6f4ea; color: #1e6b30; } .bad { background: #fce8e6; color: #a50e0e; }
pre { background: #f6f8fa; padding: .8em; overflow-x: auto; font-size: 12.5px; }
table { border-collapse: collapse; margin: .4em 0; } th, td { padding: .15em .8em .15em 0; text-align: left;
vertical-align: top; } th { font-weight: 600; white-space: nowrap; }
figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: .9em; }
.grid { display: flex; gap: 3em; flex-wrap: wrap; }
"""


def render(result: dict[str, Any]) -> str:

    scenario = str(result.get("scenario", "?"))
    code = result.get("exit_code")
    verdict = str(result.get("report", ""))
    ok = code == 0
    machine = result.get("machine") or {}
    server = result.get("server") or {}
    clients = result.get("clients") or {}
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>imhub bench {html.escape(scenario)} — {html.escape(str(result.get('started', '')))}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>imhub bench {html.escape(scenario)}</h1>",
        f"<p>started {html.escape(str(result.get('started', '')))}, exit code {html.escape(str(code))}</p>",
        f"<p class='verdict {'ok' if ok else 'bad'}'>{html.escape(verdict)}</p>",
    ]
    if "error" in result:
        parts.append(f"<p class='verdict bad'>error: {html.escape(str(result['error']))}</p>")
    parts.append("<h2>Summary</h2><pre>" + html.escape("\n".join(summary_lines(result))) + "</pre>")
    mem = machine.get("mem_bytes") or 0
    parts.append("<div class='grid'><div><h2>Machine</h2>" + _table([
        ("host", machine.get("host")), ("kernel", machine.get("kernel")), ("python", machine.get("python")),
        ("cpus", machine.get("cpus")), ("memory", f"{mem / 2**30:.1f} GiB" if mem else ""),
        ("load average at start", machine.get("loadavg_start")), ("load average at end", machine.get("loadavg_end")),
    ]) + "</div><div><h2>Server and clients</h2>" + _table([
        ("server", server.get("url")), ("spawned", server.get("spawned")), ("server workers", server.get("workers")),
        ("server pids", server.get("pids")), ("seed seconds", server.get("seed_seconds")),
        ("client processes", clients.get("workers")), ("client source addresses", clients.get("source_ips") or "-"),
    ]) + "</div></div>")
    parts.append("<h2>Plots</h2>")
    for title, png in plots(result):
        data = base64.b64encode(png).decode()
        parts.append(f"<figure><img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>"
                     f"<figcaption>{html.escape(title)}</figcaption></figure>")
    if "verify" in result:
        parts.append("<h2>Verification</h2>" + _table(list(result["verify"].items())))
    if "send" in result:
        send = {k: v for k, v in result["send"].items()}
        parts.append("<h2>Sending</h2>" + _table(list(send.items())))
    for key in ("connect", "hold", "close"):
        if key in result:
            section = {k: v for k, v in result[key].items() if k != "handshake_ms"}
            parts.append(f"<h2>{key.capitalize()}</h2>" + _table(list(section.items())))
    parts.append("<details><summary>Options</summary>"
                 + _table(sorted((result.get("options") or {}).items())) + "</details>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
