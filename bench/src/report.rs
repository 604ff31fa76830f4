//! The Markdown report: the tables `docs/performance.md` quotes, and how
//! each figure compares with the targets.

use crate::components::ComponentFigures;
use crate::rush::RushResult;
use crate::sse::SseResult;
use crate::throughput::Row;
use std::fmt::Write;

pub struct Report<'a> {
    pub machine: String,
    pub rows: &'a [Row],
    pub sse: Option<&'a SseResult>,
    pub rush: Option<&'a RushResult>,
    pub components: &'a [ComponentFigures],
}

const MIB: f64 = 1024.0 * 1024.0;

impl Report<'_> {
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "## Benchmark results\n\n{}\n", self.machine);
        self.requests(&mut out);
        self.streams(&mut out);
        self.rush(&mut out);
        self.components(&mut out);
        self.targets(&mut out);
        out
    }

    fn requests(&self, out: &mut String) {
        let _ = writeln!(out, "### Requests (closed loop, one keep-alive connection per client)\n");
        let _ = writeln!(
            out,
            "| Scenario | Each iteration | Clients | Requests/s | × no-op | Host CPU µs/request | p50 ms | p99 ms | max ms | Errors |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for row in self.rows {
            let s = &row.stats;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.0} | {:.0} % | {:.0} | {:.2} | {:.2} | {:.1} | {} |",
                row.scenario,
                row.unit,
                s.clients,
                s.rps(),
                row.vs_noop * 100.0,
                s.cpu_us(),
                s.ms(0.5),
                s.ms(0.99),
                s.max_ms(),
                s.errors
            );
        }
        let samples: Vec<_> = self.rows.iter().flat_map(|r| r.stats.samples.iter()).take(3).collect();
        if !samples.is_empty() {
            let _ = writeln!(out, "\nFirst errors: {samples:?}");
        }
        let _ = writeln!(out);
    }

    fn streams(&self, out: &mut String) {
        let Some(sse) = self.sse else { return };
        let _ = writeln!(out, "### Live board (server-sent events)\n");
        let _ = writeln!(out, "| Clients | Changes | Clients that got every change | Events delivered | Delivery p50 ms | p99 ms | max ms | Resumes | Failed connects |");
        let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        let l = &sse.latencies;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} of {} | {:.0} | {:.0} | {:.0} | {} | {} |\n",
            sse.clients,
            sse.changes,
            sse.complete_clients,
            sse.delivered,
            sse.clients * sse.changes,
            l.value_at_quantile(0.5) as f64 / 1000.0,
            l.value_at_quantile(0.99) as f64 / 1000.0,
            l.max() as f64 / 1000.0,
            sse.reconnects,
            sse.connect_failures
        );
    }

    fn rush(&self, out: &mut String) {
        let Some(rush) = self.rush else { return };
        let _ = writeln!(out, "### Conference rush (redeem → submit → claim → complete)\n");
        let _ = writeln!(out, "| Orders completed | Customers at once | Baristas | Wall time s | Orders/s | `shop_full` refusals retried | Errors | Request p50 ms | p99 ms | Host CPU s | Host peak RSS MiB |");
        let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        let l = &rush.latencies;
        let _ = writeln!(
            out,
            "| {} of {} | {} | {} | {:.1} | {:.0} | {} | {} | {:.2} | {:.2} | {:.1} | {:.0} |",
            rush.completed,
            rush.orders,
            rush.customers_at_once,
            rush.baristas,
            rush.wall.as_secs_f64(),
            rush.completed as f64 / rush.wall.as_secs_f64(),
            rush.capacity_refusals,
            rush.errors,
            l.value_at_quantile(0.5) as f64 / 1000.0,
            l.value_at_quantile(0.99) as f64 / 1000.0,
            rush.usage.cpu_seconds,
            rush.usage.peak_rss_mib
        );
        if !rush.samples.is_empty() {
            let _ = writeln!(out, "\nFirst errors: {:?}", rush.samples);
        }
        let _ = writeln!(out);
    }

    fn components(&self, out: &mut String) {
        let _ = writeln!(out, "### Components (release .wasm)\n");
        let _ = writeln!(out, "| Component | Size KiB | Instantiation p50 µs | p99 µs |");
        let _ = writeln!(out, "|---|---:|---:|---:|");
        for c in self.components {
            let _ = writeln!(
                out,
                "| {} | {:.0} | {:.1} | {:.1} |",
                c.id,
                c.wasm_bytes as f64 / 1024.0,
                c.instantiate_p50_us,
                c.instantiate_p99_us
            );
        }
        let _ = writeln!(out);
    }

    fn targets(&self, out: &mut String) {
        let _ = writeln!(out, "### Targets\n");
        let _ = writeln!(out, "| Target | Measured | Met |");
        let _ = writeln!(out, "|---|---|:---:|");
        let mut line = |target: &str, measured: String, met: bool| {
            let _ = writeln!(out, "| {target} | {measured} | {} |", if met { "yes" } else { "**no**" });
        };
        let lowest = |scenario: &str| {
            self.rows
                .iter()
                .filter(|r| r.scenario == scenario)
                .map(|r| (r.vs_noop, r.stats.clients))
                .min_by(|a, b| a.0.total_cmp(&b.0))
        };
        for (scenario, goal) in [("customer flow", 0.30), ("board read", 0.60), ("key-value increment", 0.50)] {
            if let Some((ratio, clients)) = lowest(scenario) {
                line(
                    &format!("{scenario} ≥ {:.0} % of no-op requests/s", goal * 100.0),
                    format!(
                        "lowest {:.0} % (at {clients} client{})",
                        ratio * 100.0,
                        if clients == 1 { "" } else { "s" }
                    ),
                    ratio >= goal,
                );
            }
        }
        let at_16 = self
            .rows
            .iter()
            .filter(|r| r.stats.clients == 16 && r.scenario != "no-op component")
            .map(|r| (r.stats.ms(0.99), r.scenario))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        if let Some((p99, scenario)) = at_16 {
            line("p99 of any API call < 20 ms at 16 clients", format!("worst {p99:.2} ms ({scenario})"), p99 < 20.0);
        }
        if let Some(sse) = self.sse {
            let p99 = sse.latencies.value_at_quantile(0.99) as f64 / 1000.0;
            line(
                &format!("SSE delivery p99 < 500 ms with {} clients, every client gets every event", sse.clients),
                format!("{p99:.0} ms, {} of {} clients complete", sse.complete_clients, sse.clients),
                p99 < 500.0 && sse.complete_clients == sse.clients,
            );
        }
        if let Some(largest) = self.components.iter().max_by_key(|c| c.wasm_bytes) {
            line(
                "each .wasm < 1 MiB",
                format!("largest {:.2} MiB ({})", largest.wasm_bytes as f64 / MIB, largest.id),
                (largest.wasm_bytes as f64) < MIB,
            );
        }
        if let Some(slowest) =
            self.components.iter().max_by(|a, b| a.instantiate_p50_us.total_cmp(&b.instantiate_p50_us))
        {
            line(
                "instantiation < 1 ms",
                format!("slowest p50 {:.1} µs ({})", slowest.instantiate_p50_us, slowest.id),
                slowest.instantiate_p50_us < 1000.0,
            );
        }
        if let Some(rush) = self.rush {
            line(
                &format!("{}-order rush: no errors but retried capacity refusals", rush.orders),
                format!("{} completed, {} errors", rush.completed, rush.errors),
                rush.errors == 0 && rush.completed == rush.orders,
            );
        }
        let _ = writeln!(out);
    }
}
