"""The human summary of a bench result: printed after a run, shown in its report."""

from __future__ import annotations

from typing import Any


def summary_lines(r: dict[str, Any]) -> list[str]:
    """The human summary of a result (printed after a run, shown in the report)."""
    out: list[str] = []
    m = r.get("machine", {})
    out.append(f"machine: {m.get('cpus')} cpus, load {m.get('loadavg_start')} -> {m.get('loadavg_end')}")
    if "connect" in r:
        c = r["connect"]
        out.append(
            f"connect: {c['connected']}/{c['users']} in {c['seconds']}s ({c['rate_per_s']}/s), "
            f"server CPU {c['server_cpu_per_handshake_us']} us/handshake, "
            f"RSS {c['server_rss_before'] / 2**20:.0f} -> {c['server_rss_after'] / 2**20:.0f} MiB "
            f"({c['server_rss_per_conn_bytes']} B/conn), "
            f"PSS {c.get('server_pss_before', 0) / 2**20:.0f} -> {c.get('server_pss_after', 0) / 2**20:.0f} MiB "
            f"({c.get('server_pss_per_conn_bytes')} B/conn), client CPU {c['client_cpu_s']}s"
        )
    if "hold" in r:
        h = r["hold"]
        out.append(f"hold: {h['seconds']}s, server CPU {h['server_cpu_percent']}%, "
                   f"RSS {h['server_rss_end'] / 2**20:.0f} MiB, PSS {h.get('server_pss_end', 0) / 2**20:.0f} MiB, "
                   f"heartbeats {h['heartbeats_sent']} sent / {h['heartbeats_answered']} answered")
    if "storm" in r:
        st = r["storm"]
        slowest = max((b.get("max", 0) for b in st["back_seconds"] if b), default=0)
        out.append(
            f"storm ({st['mode']}): {st['back']}/{st['lost']} back in {st['all_back_seconds']}s "
            f"({st['rate_per_s']}/s; last one at {slowest}s), {st['attempts']} attempts, "
            f"{st['failed_attempts']} failed {st['failures'] or ''}, "
            f"server CPU {st['server_cpu_per_reconnect_us']} us/reconnect (disconnect included), "
            f"client CPU {st['client_cpu_s']}s"
        )
    if r.get("scenario") == "mixed" and "options" in r and "send" in r:
        op = r["options"]
        kinds = r.get("send", {}).get("by_kind", {})
        one, grp = kinds.get("1:1", {}), kinds.get("group", {})
        out.append(
            f"mix: {op['users']} online, {int(op['users'] * op['chat_fraction']) // 2} pairs at "
            f"{op['chat_rate']}/s ({one.get('acked', 0)} acked, {one.get('deliveries_expected', 0)} deliveries), "
            f"{op['groups']} groups of {op['group_size']} at {op['group_rate']}/s ({grp.get('acked', 0)} acked, "
            f"{grp.get('deliveries_expected', 0)} deliveries), for {op['duration']}s"
        )
    if "send" in r:
        s = r["send"]
        out.append(
            f"send: {s['sent']} in {s['send_seconds']}s ({s['send_rate_per_s']}/s), all acked at "
            f"{s['all_acked_seconds']}s, all delivered at {s['all_delivered_seconds']}s "
            f"({s['delivery_rate_per_s']} deliveries/s)"
        )
        out.append(
            f"server CPU {s['server_cpu_s']}s = {s['server_cpu_per_delivery_us']} us/delivery, "
            f"{s['server_cpu_per_message_us']} us/message; client CPU {s['client_cpu_s']}s"
        )
        out.append(f"ack latency ms {s['ack_latency_ms']}")
        out.append(f"send->receive ms {s['send_to_receive_ms']}")
        if "after_warmup" in s:
            w = s["after_warmup"]
            out.append(f"after the first {w['warmup_seconds']}s: ack latency ms {w['ack_latency_ms']}")
            out.append(f"after the first {w['warmup_seconds']}s: send->receive ms {w['send_to_receive_ms']}")
        if s["error_kinds"]:
            out.append(f"errors: {s['error_kinds']}")
    if r.get("verify", {}).get("examples"):
        out.append(f"examples: {r['verify']['examples']}")
    return out
