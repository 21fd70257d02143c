import Foundation

/// The report as one self-contained HTML page: the table of invariants, each scenario's figures, and inline SVG
/// charts of throughput and latency over time with the fault windows shaded. No scripts, no external assets.
public enum HTMLReport {
    public static func render(_ report: RunReport) -> String {
        let verdict: (String, String) = switch report.outcome {
        case .passed: ("every invariant held", "pass")
        case .failed: ("an invariant broke", "fail")
        case .incomplete: ("incomplete: stopped early or undecided", "warn")
        case .refused: ("refused", "fail")
        case .interrupted: ("interrupted", "warn")
        }
        var html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>Ballast chaos run \(escape(report.seed))</title>
            <style>
            body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1d2330;max-width:1100px}
            h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:28px 0 8px}
            table{border-collapse:collapse;width:100%} th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e2e5ea;vertical-align:top}
            th{background:#f4f6f8} .pass{color:#17803d;font-weight:600} .fail{color:#c62828;font-weight:600} .warn{color:#b26a00;font-weight:600}
            .meta{color:#5b6472} svg{background:#fbfcfd;border:1px solid #e2e5ea} .small{font-size:12px;color:#5b6472}
            </style></head><body>
            <h1>Chaos run: <span class="\(verdict.1)">\(escape(verdict.0))</span></h1>
            <p class="meta">target \(escape(report.target)) (\(escape(report.environment ?? "?")), version \(escape(report.targetVersion ?? "?")))
            · scenario seed \(escape(report.seed)) · concurrency \(report.concurrency) · \(Int(report.durationSeconds)) s · fail rate \(report.failRate)
            · started \(escape(report.startedAt.formatted(.iso8601))) · exit code \(report.exitCode)</p>

            """
        if let message = report.message { html += "<p class=\"warn\">\(escape(message))</p>\n" }
        html += "<h2>Invariants</h2>\n<table><tr><th>scenario</th><th>invariant</th><th>check</th><th>result</th><th>figures</th></tr>\n"
        for check in report.checks {
            let css = check.status == .passed ? "pass" : (check.status == .failed ? "fail" : "warn")
            html += "<tr><td>\(escape(check.scenario))</td><td>\(escape(check.invariant))</td><td>\(escape(check.name))"
            if let detail = check.detail { html += "<div class=\"small\">\(escape(detail))</div>" }
            html += "</td><td class=\"\(css)\">\(check.status.rawValue)</td><td>\(escape(check.figures.map(\.text).joined(separator: ", ")))</td></tr>\n"
        }
        html += "</table>\n<h2>Scenarios</h2>\n<table><tr><th>scenario</th><th>seconds</th><th>requests</th><th>per second</th><th>ok</th><th>refused</th><th>errors</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>faults injected</th><th>notes</th></tr>\n"
        for scenario in report.scenarios where scenario.name != "target" {
            let notes = [scenario.chaos.map { "chaos \($0.scope) at \($0.failRate)" }, scenario.stoppedEarly.map { "stopped early: \($0)" },
                         scenario.error.map { "error: \($0)" }].compactMap { $0 }.joined(separator: "; ")
            let cells = [escape(scenario.name), decimal(scenario.endSecond - scenario.startSecond), "\(scenario.operations)",
                         decimal(scenario.operationsPerSecond, digits: 0), "\(scenario.succeeded)", "\(scenario.refused)", "\(scenario.errors)",
                         decimal(scenario.p50Milliseconds), decimal(scenario.p95Milliseconds), decimal(scenario.p99Milliseconds),
                         "\(scenario.faultsInjected)", escape(notes)]
            html += "<tr>" + cells.map { "<td>\($0)</td>" }.joined() + "</tr>\n"
        }
        html += "</table>\n"
        html += "<h2>Throughput</h2>\n" + chart(report, series: [
            ("requests/s", "#2563eb", { Double($0.operations) }), ("errors/s", "#c62828", { Double($0.errors) }),
            ("faults injected/s", "#b26a00", { Double($0.faults) }),
        ], unit: "/s")
        html += "<h2>Latency</h2>\n" + chart(report, series: [
            ("p50", "#2563eb", { $0.p50Milliseconds }), ("p99", "#7c3aed", { $0.p99Milliseconds }),
        ], unit: "ms")
        html += "<p class=\"small\">Shaded: fault injection on (scope and rate in the label). Dashed lines: a scenario starts. "
            + "Each point is one second of the run.</p>\n</body></html>\n"
        return html
    }

    typealias Series = (name: String, color: String, value: (TimelinePoint) -> Double)

    static func chart(_ report: RunReport, series: [Series], unit: String) -> String {
        let width = 1000.0, height = 240.0, left = 56.0, right = 12.0, top = 22.0, bottom = 28.0
        let points = report.timeline
        let span = max(1.0, Double(points.count), report.scenarios.map(\.endSecond).max() ?? 1)
        let peak = max(1.0, series.flatMap { line in points.map(line.value) }.max() ?? 1)
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        func x(_ second: Double) -> Double { left + second / span * plotWidth }
        func y(_ value: Double) -> Double { top + plotHeight - value / peak * plotHeight }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\">\n"
        for window in report.faultWindows {
            svg += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#f59e0b\" fill-opacity=\"0.15\"/>",
                          x(window.startSecond), top, max(1, x(window.endSecond) - x(window.startSecond)), plotHeight)
            svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" fill=\"#b26a00\">", x(window.startSecond) + 3, top + plotHeight - 4)
                + escape("\(window.scope) \(window.failRate)") + "</text>\n"
        }
        for scenario in report.scenarios where scenario.name != "target" {
            svg += String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#9aa3af\" stroke-dasharray=\"4 3\"/>",
                          x(scenario.startSecond), x(scenario.startSecond), top - 8, top + plotHeight)
            svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" fill=\"#5b6472\">", x(scenario.startSecond) + 3, top - 10 + 8)
                + escape(scenario.name) + "</text>\n"
        }
        for step in 0...4 {
            let value = peak * Double(step) / 4
            svg += String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e2e5ea\"/>", left, width - right, y(value), y(value))
            svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\" fill=\"#5b6472\">%.0f</text>\n", left - 4, y(value) + 3, value)
        }
        svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" fill=\"#5b6472\">0 s</text>", left, height - 8)
        svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\" fill=\"#5b6472\">%.0f s</text>\n", width - right, height - 8, span)
        for (index, line) in series.enumerated() {
            let path = points.map { String(format: "%.1f,%.1f", x(Double($0.second) + 0.5), y(line.value($0))) }.joined(separator: " ")
            if !path.isEmpty {
                svg += "<polyline fill=\"none\" stroke=\"\(line.color)\" stroke-width=\"1.6\" points=\"\(path)\"/>\n"
            }
            svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" ", left + 150 + Double(index) * 130, height - 8)
                + "fill=\"\(line.color)\">" + escape("\(line.name) (\(unit))") + "</text>\n"
        }
        return svg + "</svg>\n"
    }

    static func decimal(_ value: Double, digits: Int = 1) -> String { String(format: "%.\(digits)f", value) }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
